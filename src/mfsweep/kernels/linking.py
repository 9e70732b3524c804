"""Make every compiled kernel call its own copies of the functions it calls.

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

``install`` renames, in each module numba finalizes, the functions linked in from
other modules once the module is optimized (the code is left as it is): the names are
unique to the module, so its calls always reach its own copies, whether the module was
compiled in this process or loaded from the cache, and whatever else was loaded before.
"""

from __future__ import annotations

import hashlib

import llvmlite.binding as ll
from numba.core import codegen

#: Linkages under which a function defined in two modules resolves to one of them.
SHARED_LINKAGES = (ll.Linkage.linkonce_any, ll.Linkage.linkonce_odr, ll.Linkage.weak_any, ll.Linkage.weak_odr)


def linked_names(library) -> set[str]:
    """Names of the functions defined in the modules linked into ``library``."""
    names: set[str] = set()
    for other in library._linking_libraries:
        names |= {fn.name for fn in other._get_module_for_linking().functions if not fn.is_declaration}
    return names


def rename_linked_copies(module, names: set[str]) -> None:
    """Give the shared definitions of ``names`` in ``module`` names unique to it."""
    suffix = hashlib.sha1(module.as_bitcode()).hexdigest()[:16]
    for fn in module.functions:
        if fn.is_declaration or fn.name not in names or fn.linkage not in SHARED_LINKAGES:
            continue
        fn.name = f"{fn.name}.local.{suffix}"


def _optimize_then_rename(library, optimize=codegen.CPUCodeLibrary._optimize_final_module):
    names = linked_names(library)
    optimize(library)
    if names:
        rename_linked_copies(library._final_module, names)


def install() -> None:
    """Rename the linked copies in every module numba optimizes from now on (idempotent)."""
    if not hasattr(codegen.CPUCodeLibrary, "_optimize_final_module"):
        import numba

        raise ImportError(f"mfsweep's kernels need numba 0.68 (found {numba.__version__}): its results would "
                          "depend on numba's cache; pip install 'numba>=0.68,<0.69'")
    if getattr(codegen.CPUCodeLibrary._optimize_final_module, "renames_linked_copies", False):
        return
    _optimize_then_rename.renames_linked_copies = True
    codegen.CPUCodeLibrary._optimize_final_module = _optimize_then_rename
