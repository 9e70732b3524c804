"""Synthetic ratings: latent structure, power-law item popularity, any size.

Each user rates a number of distinct items drawn by Zipf-like popularity weights
(user activity is log-normal); the rating is mean + user bias + item bias + p_u.q_i
+ Gaussian noise, rounded to half stars and clipped to 0.5..5. The random streams
are keyed by (seed, user) and (seed, row), so the result does not depend on the
number of threads.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numba import njit, prange

from mfsweep.data.common import DataError
from mfsweep.kernels.rng import stream, uniform

START = 946684800  # 2000-01-01, when the synthetic timestamps begin
SPAN = 20 * 365 * 86400  # they spread over about twenty years
MEAN_RATING = 3.5
BIAS_STD = 0.4
DOT_STD = 0.7


def synthetic(
    users: int,
    items: int,
    ratings: int,
    seed: int = 7,
    factors: int = 8,
    popularity_exponent: float = 1.0,
    activity_sigma: float = 1.2,
    noise: float = 0.5,
) -> pd.DataFrame:
    """A ratings frame (user, item int32; rating float32; timestamp int64) with exactly
    ``ratings`` rows of distinct (user, item) pairs, in increasing timestamp order.

    Item ``i`` of popularity rank ``r`` is drawn with weight ``r ** -popularity_exponent``
    (0: uniform); which id gets which rank is shuffled. User activity is log-normal with
    ``activity_sigma``. Every user appears when ``ratings >= users`` and every item when
    ``ratings >= items`` (a few draws are moved onto items that the power law missed);
    with fewer ratings some ids are absent.
    """
    _check(users, items, ratings, factors, popularity_exponent, activity_sigma, noise)
    rng = np.random.default_rng(seed)
    streams = rng.integers(0, 2**63, size=3, dtype=np.uint64)

    rank = np.arange(1, items + 1, dtype=np.float64) ** -float(popularity_exponent)
    weights = np.empty(items, np.float64)
    weights[rng.permutation(items)] = rank / rank.sum()
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]

    activity = rng.lognormal(0.0, activity_sigma, users)
    counts = allocate(ratings, activity, 1 if ratings >= users else 0, items)
    offsets = np.zeros(users + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    item_col = np.empty(ratings, np.int32)
    _sample_items(counts, offsets, cdf, weights, streams[0], min(users, 1024), item_col)
    _cover_items(item_col, items, streams[1])
    user_col = np.repeat(np.arange(users, dtype=np.int32), counts)

    scale = math.sqrt(DOT_STD / math.sqrt(factors))
    user_factors = (rng.standard_normal((users, factors), np.float32) * scale).astype(np.float32)
    item_factors = (rng.standard_normal((items, factors), np.float32) * scale).astype(np.float32)
    user_bias = (rng.standard_normal(users, np.float32) * BIAS_STD).astype(np.float32)
    item_bias = (rng.standard_normal(items, np.float32) * BIAS_STD).astype(np.float32)

    order = rng.permutation(ratings)
    user_col, item_col = user_col[order], item_col[order]
    del order
    rating_col = np.empty(ratings, np.float32)
    _ratings(user_col, item_col, user_factors, item_factors, user_bias, item_bias,
             MEAN_RATING, float(noise), streams[2], rating_col)
    gap = max(1, SPAN // ratings)
    timestamps = rng.integers(1, 2 * gap, size=ratings, dtype=np.int64, endpoint=True)
    np.cumsum(timestamps, out=timestamps)
    timestamps += START
    return pd.DataFrame({"user": user_col, "item": item_col, "rating": rating_col, "timestamp": timestamps})


def _check(users, items, ratings, factors, popularity_exponent, activity_sigma, noise) -> None:
    for name, value in (("users", users), ("items", items), ("ratings", ratings), ("factors", factors)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise DataError(f"synthetic: {name} must be a positive integer, not {value!r}")
    if ratings > users * items:
        raise DataError(f"synthetic: ratings ({ratings}) exceeds users x items ({users * items})")
    for name, value in (("popularity_exponent", popularity_exponent), ("activity_sigma", activity_sigma),
                        ("noise", noise)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise DataError(f"synthetic: {name} must be a number >= 0, not {value!r}")


def allocate(total: int, weights: np.ndarray, low: int, high: int) -> np.ndarray:
    """Integer counts in [low, high] summing to ``total``, as near as possible to
    proportional with ``weights`` above ``low`` (water-filling, then largest remainders)."""
    n = len(weights)
    capped = np.zeros(n, np.bool_)
    while True:
        free_weight = weights[~capped].sum()
        scale = (total - low * n - (high - low) * capped.sum()) / free_weight if free_weight > 0 else 0.0
        target = np.where(capped, float(high), low + scale * weights)
        over = (target > high) & ~capped
        if not over.any():
            break
        capped |= over
    counts = np.floor(target).astype(np.int64)
    short = int(total - counts.sum())
    if short > 0:
        fraction = np.where(counts < high, target - counts, -1.0)
        counts[np.argsort(-fraction, kind="stable")[:short]] += 1
    return counts


def _cover_items(item_col: np.ndarray, items: int, seed: np.uint64) -> None:
    """Move draws of items drawn more than once onto items never drawn, while any spare."""
    counts = np.bincount(item_col, minlength=items).astype(np.int64)
    uncovered = np.flatnonzero(counts == 0).astype(np.int32)
    todo = min(len(uncovered), int(np.maximum(counts - 1, 0).sum()))
    if todo:
        _move_draws(item_col, counts, uncovered[:todo], seed)


# ----- numba kernels -----------------------------------------------------------------------
@njit(parallel=True, cache=True)
def _sample_items(counts, offsets, cdf, weights, seed, blocks, out):
    """Each user's ``counts[u]`` distinct items by weight into ``out[offsets[u]:...]``:
    draws with rejection of repeats, then, for users who have taken most of the weight,
    Efraimidis-Spirakis keys over the items not yet taken."""
    n_users = counts.shape[0]
    n_items = cdf.shape[0]
    size = (n_users + blocks - 1) // blocks
    for block in prange(blocks):
        taken = np.zeros(n_items, np.bool_)
        for user in range(block * size, min(n_users, (block + 1) * size)):
            state = stream(seed, user)
            need = counts[user]
            start = offsets[user]
            got = 0
            tries = 0
            limit = 4 * need + 64
            while got < need and tries < limit:
                state, x = uniform(state)
                item = min(np.searchsorted(cdf, x, side="right"), n_items - 1)
                tries += 1
                if not taken[item]:
                    taken[item] = True
                    out[start + got] = item
                    got += 1
            if got < need:
                keys = np.empty(n_items, np.float64)
                for item in range(n_items):
                    if taken[item]:
                        keys[item] = np.inf
                    else:
                        state, x = uniform(state)
                        keys[item] = -math.log(1.0 - x) / weights[item]
                best = np.argsort(keys)
                for j in range(need - got):
                    out[start + got + j] = best[j]
            for j in range(start, start + need):
                taken[out[j]] = False


@njit(cache=True)
def _move_draws(item_col, counts, uncovered, seed):
    state = stream(seed, 0)
    n = item_col.shape[0]
    j = 0
    while j < uncovered.shape[0]:
        state, x = uniform(state)
        row = min(int(x * n), n - 1)
        old = item_col[row]
        if counts[old] > 1:
            counts[old] -= 1
            item_col[row] = uncovered[j]
            counts[uncovered[j]] += 1
            j += 1


@njit(parallel=True, cache=True)
def _ratings(users, items, user_factors, item_factors, user_bias, item_bias, mean, noise, seed, out):
    k = user_factors.shape[1]
    for row in prange(users.shape[0]):
        u = users[row]
        i = items[row]
        value = mean + user_bias[u] + item_bias[i]
        for f in range(k):
            value += user_factors[u, f] * item_factors[i, f]
        if noise > 0:
            state = stream(seed, row)
            state, a = uniform(state)
            state, b = uniform(state)
            value += noise * math.sqrt(-2.0 * math.log(1.0 - a)) * math.cos(2.0 * math.pi * b)
        out[row] = min(5.0, max(0.5, math.floor(value * 2.0 + 0.5) / 2.0))
