"""Ratings as compressed sparse rows (by user) and columns (by item)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp


@dataclass(frozen=True)
class RatingMatrix:
    """A ratings table in CSR (users x items) and CSC (items x users) form.

    ``indptr``/``indices``/``data`` are the user-major arrays: the ratings of
    user ``u`` are ``data[indptr[u]:indptr[u+1]]`` for the items
    ``indices[indptr[u]:indptr[u+1]]`` (sorted). ``t_*`` are the item-major
    arrays. Item ids are int32, pointers int64, ratings float32.
    """

    n_users: int
    n_items: int
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    t_indptr: np.ndarray
    t_indices: np.ndarray
    t_data: np.ndarray

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, n_users: int | None = None, n_items: int | None = None
    ) -> "RatingMatrix":
        users = frame["user"].to_numpy(np.int64)
        items = frame["item"].to_numpy(np.int64)
        ratings = frame["rating"].to_numpy(np.float32) if "rating" in frame else np.ones(len(frame), np.float32)
        n_users = int(users.max() + 1 if len(users) else 0) if n_users is None else int(n_users)
        n_items = int(items.max() + 1 if len(items) else 0) if n_items is None else int(n_items)
        if len(users) and (users.max() >= n_users or items.max() >= n_items):
            raise ValueError(f"ids exceed the matrix shape ({n_users} users, {n_items} items)")
        coo = sp.coo_matrix((ratings, (users, items)), shape=(n_users, n_items))
        csr = coo.tocsr()
        csr.sum_duplicates()
        csr.sort_indices()
        csc = csr.tocsc()
        csc.sort_indices()
        return cls(
            n_users, n_items,
            csr.indptr.astype(np.int64), csr.indices.astype(np.int32), csr.data.astype(np.float32),
            csc.indptr.astype(np.int64), csc.indices.astype(np.int32), csc.data.astype(np.float32),
        )

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def user_counts(self) -> np.ndarray:
        return np.diff(self.indptr)

    def item_counts(self) -> np.ndarray:
        return np.diff(self.t_indptr)

    def coo(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(users int32, items int32, ratings float32) in user-major order."""
        users = np.repeat(np.arange(self.n_users, dtype=np.int32), self.user_counts())
        return users, self.indices, self.data

    def to_scipy(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=(self.n_users, self.n_items))


def as_matrix(train, n_users: int | None = None, n_items: int | None = None) -> RatingMatrix:
    """Accept a RatingMatrix or a frame with user, item, rating columns."""
    if isinstance(train, RatingMatrix):
        return train
    return RatingMatrix.from_frame(train, n_users, n_items)
