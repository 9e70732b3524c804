"""Rating and ranking metrics of a model against held-out ratings (DESIGN.md, Metrics).

A model is anything with ``user_factors``, ``item_factors`` (n x k arrays), ``user_bias``,
``item_bias`` (arrays or None for zeros) and ``global_bias``. Its score for (u, i) is
``global_bias + user_bias[u] + item_bias[i] + user_factors[u] . item_factors[i]``.

Rating metrics use every truth row: RMSE and MAE over all rows, RMSE_user and MAE_user
as the mean over truth users of each user's RMSE / MAE.

Ranking metrics, per user, rank every item of the catalog (the model's items) that the
user did not rate in training (the candidates) by ``item_bias[i] + user_factors[u] .
item_factors[i]`` in float32 (the other terms are constant per user). Conventions:

* Ties: equal scores rank by lower item id first. A NaN score ranks last.
* Relevant items: the user's truth items (with ``rating >= relevance_threshold`` when
  set). A truth item the user also rated in training is not a candidate, so it is not
  relevant either.
* A user with no relevant item left (including a user who rated every item in training
  and so has no candidate) is skipped and counted in ``n_skipped``.
* NDCG: binary gain 1/log2(rank+1) over the whole ranked candidate list, divided by the
  ideal DCG of min(#relevant, list length) relevant items; NDCG@k truncates both at k.
* RBP: patience 0.85, unnormalized, (1-p) * sum of p^(rank-1) over relevant ranks.
* RecipRank: 1 / rank of the first relevant item in the full list.
* Precision@k = hits in the top k / k, even when the user has fewer than k candidates
  (as LensKit and trec_eval do); Recall@k = hits / #relevant; HitRate@k = 1 if any hit.
* Coverage@k: distinct items in any ranked user's top k / number of items in the catalog.
* Each metric is the mean over ranked users; with no ranked user they are NaN and
  coverage is 0.

The rank of a relevant item is found by counting the candidates that beat it, and the
top-k lists by a heap over one pass of the scores: nothing sorts a whole catalog.
Scores are float32, computed eight users at a time in each thread and ranked right away,
so memory stays bounded (an 8 x items buffer per thread) for any number of users.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mfsweep.kernels.contexts import Model
from mfsweep.kernels.ranking import mark_coverage, pair_scores, rank_users, user_metrics
from mfsweep.matrix import RatingMatrix, as_matrix
from mfsweep.trials import check_cutoffs, metric_names

PATIENCE = 0.85
#: Users ranked per kernel call: bounds the top-k buffer (the scores take 8 x items per thread).
BLOCK_USERS = 8192


class _Scores:
    """A model's factors and biases as the kernels take them (float32, biases never None)."""

    def __init__(self, model) -> None:
        if model.user_factors is None or model.item_factors is None:
            raise ValueError("model has no factors: fit it first")
        self.user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self.n_users, self.n_items = self.user_factors.shape[0], self.item_factors.shape[0]
        self.item_bias = _bias(model.item_bias, self.n_items, "item_bias")
        self.user_bias = _bias(model.user_bias, self.n_users, "user_bias")
        self.global_bias = float(model.global_bias or 0.0)

    def check(self, n_users: int, n_items: int, what: str) -> None:
        """Raise when ids up to n_users - 1 / n_items - 1 do not fit the model."""
        if n_users > self.n_users:
            raise ValueError(f"{what}: user ids go up to {n_users - 1}, but the model has {self.n_users} users")
        if n_items > self.n_items:
            raise ValueError(f"{what}: item ids go up to {n_items - 1}, but the model has {self.n_items} items")

    def pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.empty(len(users), dtype=np.float64)
        pair_scores(self.model(), users, items, out)
        return out

    def model(self) -> Model:
        """The kernels' ``Model`` (global bias float64)."""
        return Model(self.global_bias, self.user_factors, self.item_factors, self.user_bias, self.item_bias)


def _bias(bias, n: int, name: str) -> np.ndarray:
    if bias is None:
        return np.zeros(n, dtype=np.float32)
    bias = np.ascontiguousarray(bias, dtype=np.float32)
    if bias.shape != (n,):
        raise ValueError(f"model {name} has shape {bias.shape}, expected ({n},)")
    return bias


def _max_item(matrix: RatingMatrix) -> int:
    return int(matrix.indices.max()) if matrix.nnz else -1


def _exclusion(matrix: RatingMatrix | None, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR pointers covering users 0..n_users-1 (users past the matrix have no items)."""
    if matrix is None:
        return np.zeros(n_users + 1, dtype=np.int64), np.zeros(0, dtype=np.int32)
    indptr = matrix.indptr.astype(np.int64)
    if len(indptr) < n_users + 1:
        indptr = np.concatenate([indptr, np.full(n_users + 1 - len(indptr), indptr[-1], np.int64)])
    return indptr, matrix.indices.astype(np.int32)


def _ranked_blocks(scores: _Scores, users, excluded, relevant, ranks, n):
    """Rank ``users`` a block at a time; yields (start, stop, top block (rows x n int32)).

    ``excluded``: (ex_indptr, ex_indices) over user ids; ``relevant``: (rel_ptr, rel_items)
    over the positions of ``users`` (see ``rank_users``).
    """
    rel_ptr, rel_items = relevant
    top = np.empty((min(BLOCK_USERS, len(users)), n), dtype=np.int32)
    for start in range(0, len(users), BLOCK_USERS):
        stop = min(start + BLOCK_USERS, len(users))
        block_ptr = rel_ptr[start:stop + 1]
        block_top = top[: stop - start]
        block_relevant = (block_ptr - block_ptr[0], rel_items[block_ptr[0]:block_ptr[-1]])
        rank_users(scores.model(), users[start:stop], excluded, block_relevant,
                   ranks[block_ptr[0]:block_ptr[-1]], block_top)
        yield start, stop, block_top


def top_items(model, users, n: int, exclude=None) -> np.ndarray:
    """The ``n`` best items per user, best first, as a (len(users), n) int64 array.

    Items of ``exclude`` (a RatingMatrix or frame, usually training) are left out for their
    user; slots past the user's last candidate hold -1. Ties go to the lower item id.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    scores = _Scores(model)
    users = np.asarray(users, dtype=np.int64).reshape(-1)
    if len(users) and (users.min() < 0 or users.max() >= scores.n_users):
        raise ValueError(f"users: ids must be in 0..{scores.n_users - 1}")
    out = np.full((len(users), int(n)), -1, dtype=np.int64)
    if len(users) == 0 or n == 0:
        return out
    exclude = None if exclude is None else as_matrix(exclude)
    if exclude is not None:
        scores.check(1, _max_item(exclude) + 1, "exclude")
    excluded = _exclusion(exclude, scores.n_users)
    no_relevant = (np.zeros(len(users) + 1, dtype=np.int64), np.zeros(0, dtype=np.int32))
    no_ranks = np.zeros(0, dtype=np.int64)
    for start, stop, top in _ranked_blocks(scores, users, excluded, no_relevant, no_ranks, int(n)):
        out[start:stop] = top
    return out


class Evaluator:
    """Every metric of a model against fixed truth; build once per trial, call per epoch.

    ``train`` (RatingMatrix or frame) gives the items excluded from each user's ranking;
    ``truth`` is a frame with user, item, rating. With ``max_users`` set and more users
    with a relevant item than that, the ranking metrics use a fixed sample of that many of
    them (drawn with ``seed``); rating metrics always use every truth row. ``n_users`` is
    the number of ranked users, ``n_skipped`` the truth users without a relevant item.
    """

    def __init__(self, train, truth: pd.DataFrame, cutoffs=(10, 100), relevance_threshold=None,
                 max_users: int | None = None, seed: int = 0) -> None:
        self.cutoffs = np.asarray(check_cutoffs(cutoffs), dtype=np.int64)
        self.names = metric_names(self.cutoffs.tolist())
        missing = [c for c in ("user", "item", "rating") if c not in truth.columns]
        if missing:
            raise ValueError(f"truth: missing column(s) {', '.join(missing)}")
        if len(truth) == 0:
            raise ValueError("truth: no rows to evaluate")
        if max_users is not None and (isinstance(max_users, bool) or int(max_users) < 1):
            raise ValueError(f"max_users must be an integer >= 1 or None, got {max_users!r}")
        self.train = as_matrix(train)
        self.users_in = truth["user"].to_numpy(np.int64)
        self.items_in = truth["item"].to_numpy(np.int64)
        self.ratings = truth["rating"].to_numpy(np.float64)
        if self.users_in.min() < 0 or self.items_in.min() < 0:
            raise ValueError("truth: user and item ids must be >= 0")
        self.n_users_needed = int(self.users_in.max() + 1)
        self.n_items_needed = int(max(self.items_in.max(), _max_item(self.train)) + 1)
        truth_users, self.user_index = np.unique(self.users_in, return_inverse=True)
        self.user_rows = np.bincount(self.user_index).astype(np.float64)
        self.ex_indptr, self.ex_indices = _exclusion(self.train, self.n_users_needed)
        users, self.rel_ptr, self.rel_items = self._relevant(relevance_threshold)
        self.n_skipped = len(truth_users) - len(users)
        if max_users is not None and len(users) > int(max_users):
            pick = np.sort(np.random.default_rng(seed).choice(len(users), int(max_users), replace=False))
            counts = np.diff(self.rel_ptr)[pick]
            starts = self.rel_ptr[pick]
            self.rel_items = np.concatenate([self.rel_items[s:s + c] for s, c in zip(starts, counts)])
            self.rel_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            users = users[pick]
        self.users = users
        self.n_users = len(users)

    def _relevant(self, threshold) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Users with a relevant candidate, CSR pointers and their relevant items (sorted)."""
        keep = np.ones(len(self.ratings), dtype=bool) if threshold is None else self.ratings >= float(threshold)
        n_items = np.int64(self.n_items_needed)
        keys = np.unique(self.users_in[keep] * n_items + self.items_in[keep])
        train_users = np.repeat(np.arange(self.train.n_users, dtype=np.int64), np.diff(self.train.indptr))
        train_keys = train_users * n_items + self.train.indices.astype(np.int64)   # sorted: CSR order
        pos = np.searchsorted(train_keys, keys)
        in_train = (pos < len(train_keys)) & (train_keys[np.minimum(pos, len(train_keys) - 1)] == keys) \
            if len(train_keys) else np.zeros(len(keys), dtype=bool)
        keys = keys[~in_train]
        users, counts = np.unique(keys // n_items, return_counts=True)
        rel_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return users.astype(np.int64), rel_ptr, (keys % n_items).astype(np.int32)

    def __call__(self, model) -> dict[str, float]:
        scores = _Scores(model)
        scores.check(self.n_users_needed, self.n_items_needed, "train / truth")
        result = self._rating(scores)
        result.update(self._ranking(scores))
        return {name: result[name] for name in self.names}

    def _rating(self, scores: _Scores) -> dict[str, float]:
        error = scores.pairs(self.users_in, self.items_in) - self.ratings
        squared = np.bincount(self.user_index, error * error) / self.user_rows
        absolute = np.bincount(self.user_index, np.abs(error)) / self.user_rows
        return {
            "RMSE": float(np.sqrt(np.mean(error * error))),
            "MAE": float(np.mean(np.abs(error))),
            "RMSE_user": float(np.mean(np.sqrt(squared))),
            "MAE_user": float(np.mean(absolute)),
        }

    def _ranking(self, scores: _Scores) -> dict[str, float]:
        depth = int(self.cutoffs.max())
        first_position = np.full(scores.n_items, depth, dtype=np.int64)
        ranks = np.empty(len(self.rel_items), dtype=np.int64)
        excluded = (self.ex_indptr, self.ex_indices)
        relevant = (self.rel_ptr, self.rel_items)
        for _, _, top in _ranked_blocks(scores, self.users, excluded, relevant, ranks, depth):
            mark_coverage(top, first_position)
        per_user = np.empty((self.n_users, 3 + 4 * len(self.cutoffs)), dtype=np.float64)
        user_metrics(self.rel_ptr, ranks, self.cutoffs, PATIENCE, per_user)
        means = per_user.mean(axis=0) if self.n_users else np.full(per_user.shape[1], np.nan)
        result = {"NDCG": means[0], "RBP": means[1], "RecipRank": means[2]}
        for q, k in enumerate(self.cutoffs.tolist()):
            col = 3 + 4 * q
            result[f"NDCG@{k}"] = means[col]
            result[f"Precision@{k}"] = means[col + 1]
            result[f"Recall@{k}"] = means[col + 2]
            result[f"HitRate@{k}"] = means[col + 3]
            result[f"Coverage@{k}"] = np.count_nonzero(first_position < k) / max(1, scores.n_items)
        return {name: float(value) for name, value in result.items()}


def evaluate(model, train, test: pd.DataFrame, cutoffs=(10, 100), relevance_threshold=None) -> dict[str, float]:
    """Every metric of ``model`` on ``test``, ranking every test user (see Evaluator)."""
    return Evaluator(train, test, cutoffs, relevance_threshold)(model)
