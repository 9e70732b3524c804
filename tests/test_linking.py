"""The renaming of linked copies (``mfsweep.kernels.linking``) applies to the package's code only."""

import numpy as np
from numba import njit

import mfsweep.kernels  # noqa: F401  (installs the hook)
from mfsweep.kernels import linking

RENAMED = ".local."


#: A helper too long for LLVM to inline into four call sites, so its linked copy stays in
#: the caller's module: a forward and a backward substitution on a lower-triangular system.
SOURCE = """
@njit(fastmath=True)
def helper(A, b, x):
    n = b.shape[0]
    for i in range(n):
        s = b[i]
        for m in range(i):
            s -= A[i, m] * x[m]
        x[i] = s / A[i, i]
    for i in range(n - 1, -1, -1):
        s = x[i]
        for m in range(i + 1, n):
            s -= A[m, i] * x[m]
        x[i] = s / A[i, i]
    return x.sum()


@njit(fastmath=True)
def caller(A, b, x):
    return helper(A, b, x) + helper(A, 2.0 * b, x) + helper(A, 3.0 * b, x) + helper(A, 4.0 * b, x)
"""


def _jit_in_module(module: str):
    """``caller`` and ``helper`` of SOURCE, defined in a module named ``module``."""
    namespace = {"__name__": module, "njit": njit}
    exec(SOURCE, namespace)
    caller = namespace["caller"]
    A = np.eye(3) * 2.0
    b = np.ones(3)
    assert caller(A, b, np.zeros(3)) == 7.5   # x = b / 4 per solve: 0.75 * (1 + 2 + 3 + 4)
    return caller


def _final_names(dispatcher) -> list[str]:
    (library,) = [cres.library for cres in dispatcher.overloads.values()]
    return [fn.name for fn in library._final_module.functions if not fn.is_declaration]


def test_hook_installed():
    from numba.core import codegen

    assert codegen.CPUCodeLibrary._optimize_final_module.renames_linked_copies


def test_function_outside_the_package_keeps_its_names():
    caller = _jit_in_module("elsewhere")
    names = _final_names(caller)
    assert any("helper" in name for name in names), names
    assert not any(RENAMED in name for name in names), names


def test_function_of_the_package_gets_its_own_copies():
    caller = _jit_in_module(f"{linking.PACKAGE}.probe")
    names = _final_names(caller)
    assert any("helper" in name and RENAMED in name for name in names), names
    assert not any("helper" in name and RENAMED not in name for name in names), names


def test_owned_reads_the_mangled_module_path():
    (library,) = [cres.library for cres in _jit_in_module(f"{linking.PACKAGE}.probe").overloads.values()]
    assert linking.owned(library._final_module)
    (library,) = [cres.library for cres in _jit_in_module("elsewhere").overloads.values()]
    assert not linking.owned(library._final_module)
