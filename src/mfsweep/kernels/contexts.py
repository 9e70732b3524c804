"""The named tuples the kernels take their arguments in, shared by every kernel module.

numba compiles a ``typing.NamedTuple`` like a tuple (a field is read by name at no cost,
and a field that is None is a type of its own, so a kernel's branch on it is resolved
when the kernel is compiled). A kernel module defines the tuples of its own parameters
next to its kernels; the ones here travel between modules:

- ``Csr``: one side of the rating matrix in CSR form (the user side; the item side is
  the matrix's CSC form, ``RatingMatrix.t_*``);
- ``Triples``: ratings as parallel arrays, in the order a kernel walks them;
- ``Model``: the factors and biases of a model (biases never None: zeros for a model
  without them);
- ``UserItem``: one value for the user side and one for the item side (regularization).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np


class Csr(NamedTuple):
    """Row ``u``'s entries are ``indices[indptr[u]:indptr[u + 1]]`` with ``values`` at the same positions."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray


class Triples(NamedTuple):
    """Rating ``j`` is ``ratings[j]`` by ``users[j]`` of ``items[j]`` (int32, int32, float32)."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray


class Model(NamedTuple):
    """``global_bias + user_bias[u] + item_bias[i] + user_factors[u] . item_factors[i]``."""

    global_bias: Any
    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray


class UserItem(NamedTuple):
    """A value for each side: ``user``, ``item``."""

    user: Any
    item: Any
