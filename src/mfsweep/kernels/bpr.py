"""numba kernels of ``bpr``: SGD on the BPR pairwise loss with sampled negatives.

The epoch kernels walk the training pairs (user, item) in array order (the model
shuffles them before each epoch with ``mfsweep.kernels.sgd.shuffle``). For the pair at
position j and each s in 0..negatives-1, the triple t = j * negatives + s draws its
negative item from its own random stream, seeded by the epoch's seed and t alone
(``negative``), so the negatives of an epoch do not depend on how the pairs are cut into
chunks: the sequential and the Hogwild kernels draw the same ones.

Arguments come bundled in tuples (numba takes tuples of arrays and scalars):

- ``pairs``: ``(users, items)`` (int32), the training pairs in this epoch's order;
- ``rated``: ``(indptr, indices)``, the training matrix's rows by user (int64 pointers,
  sorted int32 items), against which the negatives are checked;
- ``model``: ``(P, Q, b)``, user and item factors (float32, possibly zero-padded) and the
  item bias (float32; left alone unless ``biased``);
- ``rates``: ``(lr, reg_u, reg_i, reg_b)`` (float32), the learning rate and the L2
  weights of user factors, item factors and item biases.

Flags and the linking of called functions are those of ``mfsweep.kernels.sgd``; the
random numbers are ``mfsweep.kernels.rng``'s.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from mfsweep.kernels.rng import GOLDEN, below, splitmix64, stream
from mfsweep.kernels.sgd import OPTS, PREFETCH_AHEAD, _prefetch_row


@njit(**OPTS)
def is_rated(indices, lo, hi, item):
    """Whether ``item`` is among the sorted ``indices[lo:hi]`` (binary search)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        value = indices[mid]
        if value == item:
            return True
        if value < item:
            lo = mid + 1
        else:
            hi = mid
    return False


@njit(**OPTS)
def negative(seed, t, indices, lo, hi, n_items, popular):
    """The negative item of triple ``t`` for the user whose row is ``indices[lo:hi]``, or -1.

    Draw a of triple t takes the bits ``splitmix64(stream(seed, t) + GOLDEN * (a + 1))``
    (``mfsweep.kernels.rng``: the triple's own stream). Uniform: a candidate is
    ``below(bits, n_items)``, and the first the user did not rate is taken (rejection
    sampling; the caller makes sure one exists). ``popular``: one draw, the item of the training pair ``below(bits, nnz)`` (an item in
    proportion to its ratings), and -1 if the user rated it: ``implicit``'s sampling, whose
    triple is then skipped.
    """
    state = stream(seed, t) + GOLDEN
    if popular:
        item = indices[below(splitmix64(state), indices.shape[0])]
        return -1 if is_rated(indices, lo, hi, item) else item
    while True:
        item = below(splitmix64(state), n_items)
        if not is_rated(indices, lo, hi, item):
            return item
        state += GOLDEN


@njit(**OPTS)
def minus_log_sigmoid(x, e):
    """-log sigmoid(x) = log(1 + exp(-x)) in float64, given e = exp(x) (possibly inf): one
    log1p of a number in [0, 1], so neither overflow nor cancellation."""
    if x > 0.0:
        return np.log1p(1.0 / np.float64(e))
    return np.log1p(np.float64(e)) - np.float64(x)


@njit(**OPTS)
def _draw_pair(j, pairs, rated, settings, n_items, out):
    """The negatives of pair j (``negative``, -1 where none) into ``out`` (``negatives`` slots)."""
    indptr, indices = rated
    negatives, seed, _, popular = settings
    u = pairs[0][j]
    lo = indptr[u]
    hi = indptr[u + 1]
    for s in range(negatives):
        if hi - lo >= n_items:
            out[s] = -1
        else:
            out[s] = negative(seed, j * negatives + s, indices, lo, hi, n_items, popular)


@njit(**OPTS)
def _bpr_range(pairs, start, end, rated, model, rates, settings, steps):
    """Pairs start..end-1, ``negatives`` triples each; returns the sum of -log sigmoid(x_uij).

    ``settings``: ``(negatives, seed, biased, popular)`` (``popular`` as in ``negative``).
    Per triple (u, i, j), with x = p_u . (q_i - q_j) + b_i - b_j and z = sigmoid(-x) =
    1 - sigmoid(x), every row moves along the gradient of log sigmoid(x) - reg_u |p_u|^2 / 2
    - reg_i (|q_i|^2 + |q_j|^2) / 2 - reg_b (b_i^2 + b_j^2) / 2, from the old values
    (implicit's update): p_u += lr (z (q_i - q_j) - reg_u p_u); q_i += lr (z p_u - reg_i q_i);
    q_j += lr (-z p_u - reg_i q_j); b_i += lr (z - reg_b b_i); b_j += lr (-z - reg_b b_j).
    ``steps`` = ``(user_steps, item_steps)`` (int64) count the steps that moved each row.
    A pair whose user rated every item, and a triple without a negative, make no step.

    The negatives do not depend on the factors, so they are drawn PREFETCH_AHEAD pairs
    ahead (into a ring of PREFETCH_AHEAD + 1 pairs), and the rows of that pair are
    prefetched: the rows are gathered at random and would miss the cache.
    """
    users, items = pairs
    P, Q, b = model
    lr, reg_u, reg_i, reg_b = rates
    negatives, _, biased, _ = settings
    user_steps, item_steps = steps
    k = P.shape[1]
    n_items = Q.shape[0]
    slots = PREFETCH_AHEAD + 1
    ring = np.empty(slots * negatives, np.int64)
    for j in range(start, min(start + PREFETCH_AHEAD, end)):
        _draw_pair(j, pairs, rated, settings, n_items, ring[(j % slots) * negatives:(j % slots + 1) * negatives])
    total = 0.0
    for j in range(start, end):
        ahead = j + PREFETCH_AHEAD
        if ahead < end:
            slot = (ahead % slots) * negatives
            _draw_pair(ahead, pairs, rated, settings, n_items, ring[slot:slot + negatives])
            _prefetch_row(P, users[ahead])
            _prefetch_row(Q, items[ahead])
            for s in range(negatives):
                if ring[slot + s] >= 0:
                    _prefetch_row(Q, ring[slot + s])
        u = users[j]
        i = items[j]
        slot = (j % slots) * negatives
        for s in range(negatives):
            n = ring[slot + s]
            if n < 0:
                continue
            user_steps[u] += 1
            item_steps[i] += 1
            item_steps[n] += 1
            x = np.float32(0.0)
            for f in range(k):
                x += P[u, f] * (Q[i, f] - Q[n, f])
            if biased:
                x += b[i] - b[n]
            e = np.exp(x)
            z = np.float32(1.0) / (np.float32(1.0) + e)
            total += minus_log_sigmoid(x, e)
            for f in range(k):
                p = P[u, f]
                qi = Q[i, f]
                qn = Q[n, f]
                P[u, f] = p + lr * (z * (qi - qn) - reg_u * p)
                Q[i, f] = qi + lr * (z * p - reg_i * qi)
                Q[n, f] = qn - lr * (z * p + reg_i * qn)
            if biased:
                b[i] += lr * (z - reg_b * b[i])
                b[n] -= lr * (z + reg_b * b[n])
    return total


@njit(**OPTS)
def bpr_epoch(pairs, rated, model, rates, settings, steps):
    """One sequential pass; returns the sum of -log sigmoid(x_uij), each at its step.

    ``settings``: see ``_bpr_range``; ``steps`` = ``(user_steps, item_steps)`` are zeroed,
    then count the steps that moved each row (their sum over users is the number of steps).
    """
    steps[0][:] = 0
    steps[1][:] = 0
    return _bpr_range(pairs, 0, pairs[0].shape[0], rated, model, rates, settings, steps)


@njit(parallel=True, **OPTS)
def bpr_epoch_hogwild(pairs, rated, model, rates, settings, steps, n_chunks):
    """``bpr_epoch`` with the pairs cut into ``n_chunks`` chunks run in parallel, lock-free.

    The negatives are those of ``bpr_epoch`` (drawn by position), the steps are counted per
    chunk and then added up; the updates race, so the factors and the loss depend on timing.
    """
    n = pairs[0].shape[0]
    totals = np.zeros(n_chunks, np.float64)
    chunk_users = np.zeros((n_chunks, steps[0].shape[0]), np.int64)
    chunk_items = np.zeros((n_chunks, steps[1].shape[0]), np.int64)
    for c in prange(n_chunks):
        totals[c] = _bpr_range(pairs, c * n // n_chunks, (c + 1) * n // n_chunks, rated, model, rates,
                               settings, (chunk_users[c], chunk_items[c]))
    steps[0][:] = 0
    steps[1][:] = 0
    for c in range(n_chunks):
        steps[0][:] += chunk_users[c]
        steps[1][:] += chunk_items[c]
    return totals.sum()
