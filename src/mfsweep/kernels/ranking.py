"""numba kernels of evaluation: pair scores, ranks of relevant items, top-k lists, per-user metrics.

Order of items for a user: higher score first; equal scores by lower item id first.
Inside a score row, NaN marks an item that is not a candidate (rated in training);
a NaN the model itself produced is turned into -inf first, so it ranks last.

A kernel that calls another runs its own compiled copy of it, whether it was compiled
in this process or loaded from numba's cache (``mfsweep.kernels.linking``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from mfsweep.kernels import RANKING_FASTMATH

#: Users scored together by score_group (it is written out for eight).
GROUP = 8
#: Users per parallel task of rank_users, and items per vectorized skip test of top_k_row.
CHUNK = 32
SKIP = 32


@njit(cache=True, parallel=True)
def pair_scores(model, users, items, out):
    """out[p] = global_bias + user_bias[u] + item_bias[i] + user_factors[u] . item_factors[i], in float64.

    ``model``: a ``contexts.Model``.
    """
    user_factors = model.user_factors
    item_factors = model.item_factors
    user_bias = model.user_bias
    item_bias = model.item_bias
    global_bias = model.global_bias
    k = user_factors.shape[1]
    for p in prange(users.shape[0]):
        u = users[p]
        i = items[p]
        dot = 0.0
        for f in range(k):
            dot += np.float64(user_factors[u, f]) * np.float64(item_factors[i, f])
        out[p] = global_bias + np.float64(user_bias[u]) + np.float64(item_bias[i]) + dot


@njit(cache=True)
def _prepare_row(row, excluded):
    """Turn the model's NaN scores into -inf, then mark the excluded items with NaN."""
    ninf = np.float32(-np.inf)
    for c in range(row.shape[0]):
        if row[c] != row[c]:
            row[c] = ninf
    for c in excluded:
        row[c] = np.nan


@njit(cache=True)
def _count_above(values, threshold):
    """How many values are > threshold (NaN never is). Loops over whole slices vectorize."""
    count = 0
    for c in range(values.shape[0]):
        count += values[c] > threshold
    return count


@njit(cache=True)
def _count_at_least(values, threshold):
    count = 0
    for c in range(values.shape[0]):
        count += values[c] >= threshold
    return count


@njit(cache=True)
def rank_of(row, item):
    """1-based rank of ``item`` among the candidates of ``row``: one count, no sort.

    Candidates before it are those scoring higher, or equal with a lower id.
    """
    t = row[item]
    return _count_at_least(row[:item], t) + _count_above(row[item + 1:], t) + 1


@njit(cache=True)
def _worse(row, a, b):
    """Whether item ``a`` ranks below item ``b``."""
    return row[a] < row[b] or (row[a] == row[b] and a > b)


@njit(cache=True)
def _sift_up(row, heap, pos):
    while pos > 0:
        parent = (pos - 1) // 2
        if not _worse(row, heap[pos], heap[parent]):
            break
        heap[pos], heap[parent] = heap[parent], heap[pos]
        pos = parent


@njit(cache=True)
def _sift_down(row, heap, pos, size):
    while True:
        worst = pos
        left = 2 * pos + 1
        right = left + 1
        if left < size and _worse(row, heap[left], heap[worst]):
            worst = left
        if right < size and _worse(row, heap[right], heap[worst]):
            worst = right
        if worst == pos:
            return
        heap[pos], heap[worst] = heap[worst], heap[pos]
        pos = worst


@njit(cache=True)
def _floor(row, k):
    """A score that at least k candidates beat (checked by a count), or -inf when none is found.

    The 16th best of a sample of every (k/8)-th item is beaten by about 2k candidates
    (fewer than k about 1% of the time); top_k_row then heaps only those. Used for
    k >= 16 and catalogs of at least 32k items, where it saves most heap work.
    """
    none = np.float32(-np.inf)
    q = 16
    stride = k // 8
    if stride < 2 or row.shape[0] < 32 * k:
        return none
    best = np.empty(q, dtype=np.int64)
    size = 0
    for c in range(0, row.shape[0], stride):
        if row[c] != row[c]:
            continue
        if size < q:
            best[size] = c
            _sift_up(row, best, size)
            size += 1
        elif row[c] > row[best[0]]:
            best[0] = c
            _sift_down(row, best, 0, q)
    if size < q:
        return none
    floor = row[best[0]]
    return floor if _count_above(row, floor) >= k else none


@njit(cache=True)
def top_k_row(row, out):
    """Fill ``out`` with the best candidates of ``row``, best first; -1 past the last candidate.

    A min-heap (worst kept item at the root) over one pass of the row. Items come in
    increasing id, so a newcomer enters only with a strictly higher score than the root;
    a vectorized count skips the stretches of SKIP items where none does. When _floor
    finds a score that k candidates beat, only those are considered at all.
    """
    k = out.shape[0]
    n = row.shape[0]
    floor = _floor(row, k)
    filtered = floor > np.float32(-np.inf)
    size = 0
    c = 0
    while c < n and size < k:
        if filtered and c % SKIP == 0 and c + SKIP <= n and _count_above(row[c:c + SKIP], floor) == 0:
            c += SKIP
            continue
        if (row[c] > floor) if filtered else (row[c] == row[c]):
            out[size] = c
            _sift_up(row, out, size)
            size += 1
        c += 1
    if size == k and k > 0:
        root = row[out[0]]
        while c < n:
            stop = min(c + SKIP, n)
            if _count_above(row[c:stop], root) > 0:
                for d in range(c, stop):
                    if row[d] > root:
                        out[0] = d
                        _sift_down(row, out, 0, k)
                        root = row[out[0]]
            c = stop
    for end in range(size - 1, 0, -1):   # pop the worst to the back: the best ends first
        out[0], out[end] = out[end], out[0]
        _sift_down(row, out, 0, end)
    for p in range(size, k):
        out[p] = -1


@njit(cache=True, fastmath=RANKING_FASTMATH)
def score_group(user_factors, item_factors, item_bias, users, out):
    """out[j] = item_bias + item_factors . user_factors[users[j]] for GROUP (8) users at once.

    One pass over the items serves the eight users. Reassociation lets each dot product
    vectorize; the eight sums run the same code, so a user's scores do not depend on the
    other users of its group.
    """
    u0 = user_factors[users[0]]
    u1 = user_factors[users[1]]
    u2 = user_factors[users[2]]
    u3 = user_factors[users[3]]
    u4 = user_factors[users[4]]
    u5 = user_factors[users[5]]
    u6 = user_factors[users[6]]
    u7 = user_factors[users[7]]
    k = item_factors.shape[1]
    for i in range(item_factors.shape[0]):
        v = item_factors[i]
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = np.float32(0.0)
        for f in range(k):
            x = v[f]
            a0 += u0[f] * x
            a1 += u1[f] * x
            a2 += u2[f] * x
            a3 += u3[f] * x
            a4 += u4[f] * x
            a5 += u5[f] * x
            a6 += u6[f] * x
            a7 += u7[f] * x
        b = item_bias[i]
        out[0, i] = a0 + b
        out[1, i] = a1 + b
        out[2, i] = a2 + b
        out[3, i] = a3 + b
        out[4, i] = a4 + b
        out[5, i] = a5 + b
        out[6, i] = a6 + b
        out[7, i] = a7 + b


@njit(cache=True)
def rank_row(row, excluded, relevant, ranks, top):
    """Everything about one user's score row (overwritten): ranks of ``relevant``, best items."""
    _prepare_row(row, excluded)
    for p in range(relevant.shape[0]):
        ranks[p] = rank_of(row, relevant[p])
    top_k_row(row, top)


@njit(cache=True, parallel=True)
def rank_users(scorer, users, excluded, relevant, ranks, top):
    """Score and rank ``users``, in parallel over chunks of CHUNK users.

    ``scorer``: a ``contexts.Model`` (its factors and item bias); ``excluded``: ``(ex_indptr,
    ex_indices)``, CSR over user ids; ``relevant``: ``(rel_ptr, rel_items)``, CSR over the
    positions j of ``users``. User ``users[j]`` has the training items
    ``ex_indices[ex_indptr[u]:ex_indptr[u+1]]`` (not candidates) and the relevant items
    ``rel_items[rel_ptr[j]:rel_ptr[j+1]]``, whose ranks go to the same positions of
    ``ranks``; ``top[j]`` gets its best items. Memory: one GROUP x items float32 buffer
    per running chunk.
    """
    user_factors = scorer.user_factors
    item_factors = scorer.item_factors
    item_bias = scorer.item_bias
    ex_indptr, ex_indices = excluded
    rel_ptr, rel_items = relevant
    n = users.shape[0]
    for chunk in prange((n + CHUNK - 1) // CHUNK):
        scores = np.empty((GROUP, item_factors.shape[0]), dtype=np.float32)
        group = np.empty(GROUP, dtype=np.int64)
        stop = min(n, (chunk + 1) * CHUNK)
        for start in range(chunk * CHUNK, stop, GROUP):
            for g in range(GROUP):             # a short last group repeats its last user
                group[g] = users[min(start + g, stop - 1)]
            score_group(user_factors, item_factors, item_bias, group, scores)
            for g in range(min(GROUP, stop - start)):
                j = start + g
                u = users[j]
                rank_row(scores[g], ex_indices[ex_indptr[u]:ex_indptr[u + 1]],
                         rel_items[rel_ptr[j]:rel_ptr[j + 1]], ranks[rel_ptr[j]:rel_ptr[j + 1]], top[j])


@njit(cache=True)
def mark_coverage(top, first_position):
    """first_position[i] = the best (lowest) list position at which item i appeared so far."""
    for j in range(top.shape[0]):
        for p in range(top.shape[1]):
            item = top[j, p]
            if item >= 0 and p < first_position[item]:
                first_position[item] = p


@njit(cache=True)
def _ideal_dcg(n):
    total = 0.0
    for r in range(1, n + 1):
        total += 1.0 / math.log2(r + 1.0)
    return total


@njit(cache=True, parallel=True)
def user_metrics(rel_ptr, ranks, cutoffs, patience, out):
    """Per-user ranking metrics from the ranks of the user's relevant items.

    Columns of ``out``: NDCG, RBP, RecipRank, then for each cutoff k:
    NDCG@k, Precision@k, Recall@k, HitRate@k. Every user has at least one relevant item.
    """
    n_cut = cutoffs.shape[0]
    for u in prange(rel_ptr.shape[0] - 1):
        start = rel_ptr[u]
        m = rel_ptr[u + 1] - start
        dcg = 0.0
        rbp = 0.0
        first = ranks[start]
        hits = np.zeros(n_cut)
        dcg_at = np.zeros(n_cut)
        for p in range(start, start + m):
            r = ranks[p]
            gain = 1.0 / math.log2(r + 1.0)
            dcg += gain
            rbp += patience ** (r - 1)
            first = min(first, r)
            for q in range(n_cut):
                if r <= cutoffs[q]:
                    hits[q] += 1.0
                    dcg_at[q] += gain
        out[u, 0] = dcg / _ideal_dcg(m)
        out[u, 1] = (1.0 - patience) * rbp
        out[u, 2] = 1.0 / first
        for q in range(n_cut):
            k = cutoffs[q]
            col = 3 + 4 * q
            out[u, col] = dcg_at[q] / _ideal_dcg(min(m, k))
            out[u, col + 1] = hits[q] / k
            out[u, col + 2] = hits[q] / m
            out[u, col + 3] = 1.0 if hits[q] > 0 else 0.0
