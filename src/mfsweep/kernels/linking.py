"""Make every compiled kernel of mfsweep call its own copies of the functions it calls.

numba compiles a kernel that calls another jitted function (or a parallel loop's body,
which it compiles as a function of its own) into one LLVM module: the callee's optimized
code is linked into the caller's module as a weak (``linkonce_odr``) copy and
optimized again there. With the fast-math flags of the kernels, that second
optimization may reorder floating-point arithmetic, so the copy can round differently
from the callee compiled on its own. Which of the two runs is decided when the code is
loaded: a weak symbol resolves to a definition of the same name already loaded in the
process. A kernel compiled in this process therefore ran the callee compiled on its
own, and the same kernel loaded from numba's on-disk cache (``cache=True``) ran its
copy, so a trial's numbers depended on whether the cache was warm.

``install`` renames, in each module numba finalizes that holds code of the ``mfsweep``
package (``owned``), the functions linked in from other modules once the module is
optimized (the code is left as it is): the names are unique to the module, so its calls
always reach its own copies, whether the module was compiled in this process or loaded
from the cache, and whatever else was loaded before. Modules without mfsweep code (the
user's own jitted functions, numba's internal ones) are optimized as numba does.

numba offers no public hook after a module is optimized, so this wraps a private
method, ``numba.core.codegen.CPUCodeLibrary._optimize_final_module``, and reads the
private ``_linking_libraries`` and ``_get_module_for_linking`` of a library. Checked on
numba 0.68 (0.68.1), the release pyproject.toml pins; ``install`` raises ImportError on
a numba whose ``CPUCodeLibrary`` lacks these methods.
"""

from __future__ import annotations

import hashlib

import llvmlite.binding as ll
from numba.core import codegen

#: Linkages under which a function defined in two modules resolves to one of them.
SHARED_LINKAGES = (ll.Linkage.linkonce_any, ll.Linkage.linkonce_odr, ll.Linkage.weak_any, ll.Linkage.weak_odr)

#: The package whose code gets its own copies.
PACKAGE = __name__.split(".")[0]

#: How numba's mangled names of the package's functions begin (``_ZN7mfsweep7kernels3als...``);
#: the wrappers numba adds prefix them (``cfunc._ZN7mfsweep...``).
MANGLED_PREFIX = f"_ZN{len(PACKAGE)}{PACKAGE}"

#: The private methods of ``CPUCodeLibrary`` this module relies on.
REQUIRED = ("_optimize_final_module", "_get_module_for_linking")


def linked_names(library) -> set[str]:
    """Names of the functions defined in the modules linked into ``library``."""
    names: set[str] = set()
    for other in library._linking_libraries:
        names |= {fn.name for fn in other._get_module_for_linking().functions if not fn.is_declaration}
    return names


def owned(module) -> bool:
    """Whether ``module`` defines a function of the package (its own, or a linked copy): a
    kernel, or the body of a kernel's parallel loop that calls one of the package's functions."""
    return any(not fn.is_declaration and MANGLED_PREFIX in fn.name for fn in module.functions)


def rename_linked_copies(module, names: set[str]) -> None:
    """Give the shared definitions of ``names`` in ``module`` names unique to it."""
    suffix = hashlib.sha1(module.as_bitcode()).hexdigest()[:16]
    for fn in module.functions:
        if fn.is_declaration or fn.name not in names or fn.linkage not in SHARED_LINKAGES:
            continue
        fn.name = f"{fn.name}.local.{suffix}"


def _optimize_then_rename(library, optimize=codegen.CPUCodeLibrary._optimize_final_module):
    if not owned(library._final_module):
        optimize(library)
        return
    names = linked_names(library)
    optimize(library)
    if names:
        rename_linked_copies(library._final_module, names)


def install() -> None:
    """Rename the linked copies in every module of the package's code that numba optimizes
    from now on (idempotent)."""
    missing = [name for name in REQUIRED if not hasattr(codegen.CPUCodeLibrary, name)]
    if missing:
        import numba

        raise ImportError(f"mfsweep's kernels need numba 0.68 (found {numba.__version__}, whose CPUCodeLibrary "
                          f"lacks {', '.join(missing)}): its results would depend on numba's cache; "
                          "pip install 'numba>=0.68,<0.69'")
    if getattr(codegen.CPUCodeLibrary._optimize_final_module, "renames_linked_copies", False):
        return
    _optimize_then_rename.renames_linked_copies = True
    codegen.CPUCodeLibrary._optimize_final_module = _optimize_then_rename
