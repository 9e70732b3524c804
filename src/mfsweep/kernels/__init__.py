"""numba kernels (compiled code only; the Python API lives in the modules above).

The fast-math flag sets of every kernel are defined here, once. Importing the package
installs ``linking``, which makes every kernel of the package run its own copies of
the functions it calls, so the numbers do not depend on whether numba's cache was warm
(numba code outside the package is left as numba compiles it).
"""

from mfsweep.kernels import linking

linking.install()

#: Flags of the training kernels: vectorized reductions and fused multiply-adds, but NaN
#: and infinity keep their meaning (no ``nnan``, ``ninf``), so a diverged model still
#: shows a non-finite loss. A ``set``: numba accepts no other collection.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

#: Flags of the ranking scores: only what their dot products need to vectorize, so the
#: scores that order the items take as few liberties with the arithmetic as possible.
RANKING_FASTMATH = {"reassoc", "contract"}
