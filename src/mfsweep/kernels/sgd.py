"""numba kernels of the SGD family: per-rating SGD (plain, biased, Gramian), minibatch AdamW, objectives.

The epoch kernels walk the training triples in array order; the models shuffle those arrays
in place before each epoch (``shuffle``), so the kernels read them sequentially. Factors and biases are float32 and updated in place; factor matrices
may carry zero padding columns (they stay zero). The sequential kernels are deterministic;
the ``*_hogwild`` kernels cut the ratings into contiguous chunks that run in parallel
without locks (Hogwild), so their result depends on thread timing.

Arguments come bundled in named tuples (numba takes them like tuples; the kernels unpack
them in field order):

- ``triples``: the training ratings, a ``contexts.Triples`` (int32, int32, float32);
- ``model``: a ``contexts.Model``, the global mean (float32), user and item factors and
  user and item biases (zeros for the unbiased kinds);
- ``reg``: a ``contexts.UserItem``, the L2 weights of user and item factors (float32);
- the hyper-parameters of each kind as one of the named tuples below (``Rates``,
  ``Gravity``, ``Schedule``, ``AdamW``, ``Moments``, ``AdamState``).

fastmath (``mfsweep.kernels.FASTMATH``) leaves out ``nnan`` and ``ninf``: a diverging run
must yield inf/nan, which the models detect after the epoch. ``error_model="numpy"`` makes a division by zero give
inf/nan instead of raising.

A kernel that calls another runs its own compiled copy of it, whether it was compiled
in this process or loaded from numba's cache (``mfsweep.kernels.linking``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils, types
from numba.extending import intrinsic

from mfsweep.kernels import FASTMATH
from mfsweep.kernels.rng import GOLDEN, below, splitmix64

OPTS = dict(cache=True, fastmath=FASTMATH, error_model="numpy")

#: Number of chunks of the objective sums: fixed, so the loss does not depend on thread scheduling
#: (the serial and parallel kernels may still differ in the last bits: compiled separately).
LOSS_CHUNKS = 64

#: Ratings ahead whose factor rows are prefetched: the rows are gathered at random and
#: miss the L2 cache on ML-100K-sized problems (a quarter of the time of a pass otherwise).
PREFETCH_AHEAD = 4


class Rates(NamedTuple):
    """``sgd_epoch``'s float32 learning rates of factors and biases and L2 weights of user
    and item factors and biases."""

    lr: np.float32
    lr_bias: np.float32
    reg_u: np.float32
    reg_i: np.float32
    reg_bu: np.float32
    reg_bi: np.float32


class Gravity(NamedTuple):
    """``gramian_epoch``'s Gramians (k x k float32, recomputed in place per batch) and the
    per-user and per-item weights of the gravity gradient."""

    Gu: np.ndarray
    Gv: np.ndarray
    wu: np.ndarray
    wi: np.ndarray


class Schedule(NamedTuple):
    """``gramian_epoch``'s learning rate lr0 * (1 - decay_pct) ** (step // period), per batch of ``batch_size``."""

    lr0: float
    decay_pct: float
    period: int
    batch_size: int


class AdamW(NamedTuple):
    """``adamw_update``'s hyper-parameters (PyTorch's names); ``decoupled`` False: Adam."""

    lr: float
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    decoupled: bool


class Moments(NamedTuple):
    """One parameter's gradient and first and second moments, each shaped as the parameter."""

    gradient: np.ndarray
    first: np.ndarray
    second: np.ndarray


class AdamState(NamedTuple):
    """The ``Moments`` of each parameter of a ``contexts.Model``."""

    user_factors: Moments
    item_factors: Moments
    user_bias: Moments
    item_bias: Moments


# ----- shuffling and prefetching -----------------------------------------------------------------
@njit(cache=True)
def shuffle(triples, seed):
    """Shuffle the triples (users[j], items[j], ratings[j]) in place: Fisher-Yates driven by
    splitmix64 (``mfsweep.kernels.rng``).

    The pick for slot j is ``below(bits, j + 1)``. About 1 ns a slot, ten times faster
    than numpy's permutation.
    """
    users, items, ratings = triples
    state = np.uint64(seed)
    for j in range(users.shape[0] - 1, 0, -1):
        state += GOLDEN
        pick = below(splitmix64(state), j + 1)
        users[j], users[pick] = users[pick], users[j]
        items[j], items[pick] = items[pick], items[j]
        ratings[j], ratings[pick] = ratings[pick], ratings[j]


@intrinsic
def _prefetch(typingctx, X, row, col):
    """Hint the CPU to fetch the cache line of X[row, col] for writing (llvm.prefetch)."""
    def codegen(context, builder, signature, args):
        xty, rty, cty = signature.args
        x, r, c = args
        array = context.make_array(xty)(context, builder, x)
        index = [context.cast(builder, r, rty, types.intp), context.cast(builder, c, cty, types.intp)]
        ptr = cgutils.get_item_pointer(context, builder, xty, array, index, wraparound=False)
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        # write access, high temporal locality, data cache
        builder.call(fn, [builder.bitcast(ptr, byte_ptr), ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(X, row, col), codegen


@njit(**OPTS)
def _prefetch_row(X, r):
    """Prefetch every cache line of row r of a float32 matrix (16 values a line)."""
    k = X.shape[1]
    for f in range(0, k, 16):
        _prefetch(X, r, f)
    _prefetch(X, r, k - 1)


# ----- plain and biased SGD (FunkSVD, Surprise's SVD) --------------------------------------------
@njit(**OPTS)
def _sgd_range(triples, start, end, model, rates, biased):
    """Ratings start..end-1 one by one (the body is written out: a call per rating is 2x slower).

    Per rating, Surprise's order: the error at the old parameters, the biases, then both
    factor rows from their old values. ``rates``: see ``sgd_epoch``.
    """
    users, items, ratings = triples
    mu, P, Q, bu, bi = model
    lr, lr_bias, reg_u, reg_i, reg_bu, reg_bi = rates
    k = P.shape[1]
    for j in range(start, end):
        if j + PREFETCH_AHEAD < end:
            _prefetch_row(P, users[j + PREFETCH_AHEAD])
            _prefetch_row(Q, items[j + PREFETCH_AHEAD])
        u = users[j]
        i = items[j]
        dot = np.float32(0.0)
        for f in range(k):
            dot += P[u, f] * Q[i, f]
        if biased:
            err = ratings[j] - (mu + bu[u] + bi[i] + dot)
            bu[u] += lr_bias * (err - reg_bu * bu[u])
            bi[i] += lr_bias * (err - reg_bi * bi[i])
        else:
            err = ratings[j] - dot
        for f in range(k):
            p = P[u, f]
            q = Q[i, f]
            P[u, f] = p + lr * (err * q - reg_u * p)
            Q[i, f] = q + lr * (err * p - reg_i * q)


@njit(**OPTS)
def sgd_epoch(triples, model, rates, biased):
    """One sequential pass over the ratings; the biases are updated only if ``biased``.

    ``rates``: a ``Rates``.
    """
    _sgd_range(triples, 0, triples[0].shape[0], model, rates, biased)


@njit(parallel=True, **OPTS)
def sgd_epoch_hogwild(triples, model, rates, biased, n_chunks):
    """``sgd_epoch`` with the ratings cut into ``n_chunks`` chunks run in parallel, lock-free."""
    n = triples[0].shape[0]
    for c in prange(n_chunks):
        _sgd_range(triples, c * n // n_chunks, (c + 1) * n // n_chunks, model, rates, biased)


# ----- SGD with the Gramian (gravity) regularizer -----------------------------------------------
@njit(parallel=True, **OPTS)
def gramian(X, out):
    """out = X^T X / n_rows (accumulated in float64, stored in out's dtype)."""
    n, k = X.shape
    scale = 1.0 / max(n, 1)
    for a in prange(k):
        acc = np.zeros(k, np.float64)
        for r in range(n):
            xa = np.float64(X[r, a])
            if xa != 0.0:
                for b in range(k):
                    acc[b] += xa * X[r, b]
        for b in range(k):
            out[a, b] = acc[b] * scale


@njit(**OPTS)
def _gramian_range(triples, start, end, factors, gravity, lr, reg):
    """Ratings start..end-1: data and L2 gradient plus the row's share of the gravity gradient.

    ``factors``: ``(P, Q)``; ``gravity``: a ``Gravity`` (see ``gramian_epoch``).
    """
    users, items, ratings = triples
    P, Q = factors
    Gu, Gv, wu, wi = gravity
    reg_u, reg_i = reg
    k = P.shape[1]
    gp = np.empty(k, np.float32)
    gq = np.empty(k, np.float32)
    for j in range(start, end):
        u = users[j]
        i = items[j]
        dot = np.float32(0.0)
        for f in range(k):
            dot += P[u, f] * Q[i, f]
        err = ratings[j] - dot
        for a in range(k):
            s = np.float32(0.0)
            t = np.float32(0.0)
            for b in range(k):
                s += Gv[a, b] * P[u, b]
                t += Gu[a, b] * Q[i, b]
            gp[a] = s
            gq[a] = t
        cu = wu[u]
        ci = wi[i]
        for f in range(k):
            p = P[u, f]
            q = Q[i, f]
            P[u, f] = p + lr * (err * q - reg_u * p - cu * gp[f])
            Q[i, f] = q + lr * (err * p - reg_i * q - ci * gq[f])


@njit(parallel=True, **OPTS)
def _gramian_range_hogwild(triples, start, end, factors, gravity, lr, reg, n_chunks):
    n = end - start
    for c in prange(n_chunks):
        _gramian_range(triples, start + c * n // n_chunks, start + (c + 1) * n // n_chunks,
                       factors, gravity, lr, reg)


@njit(**OPTS)
def gramian_epoch(triples, factors, gravity, schedule, reg, step, hogwild, n_chunks):
    """One pass in batches of ``batch_size`` ratings; returns the step count after it.

    ``factors``: ``contexts.UserItem(P, Q)``; ``gravity``: a ``Gravity``; ``schedule``: a
    ``Schedule``. A step is one batch: before it the Gramians
    Gu = P^T P / n_users and Gv = Q^T Q / n_items are recomputed (in place) and the learning
    rate is set to lr0 * (1 - decay_pct) ** (step // period); both stay fixed within the
    batch. ``wu[u]`` / ``wi[i]`` weigh the gravity gradient so that the ratings of a user
    (item) together apply it once per epoch (see models.sgd.GramianSGD).
    """
    P, Q = factors
    Gu, Gv = gravity[0], gravity[1]
    lr0, decay_pct, period, batch_size = schedule
    n = triples[0].shape[0]
    for start in range(0, n, batch_size):
        end = min(start + batch_size, n)
        gramian(P, Gu)
        gramian(Q, Gv)
        lr = np.float32(lr0 * (1.0 - decay_pct) ** (step // period))
        if hogwild:
            _gramian_range_hogwild(triples, start, end, factors, gravity, lr, reg, n_chunks)
        else:
            _gramian_range(triples, start, end, factors, gravity, lr, reg)
        step += 1
    return step


# ----- minibatch AdamW ----------------------------------------------------------------------------
@njit(parallel=True, **OPTS)
def adamw_update(X, state, optimizer, bias_correction1, bias_correction2):
    """PyTorch's AdamW step on every row of X (2-D), then the gradient is zeroed for the next batch.

    ``state``: the ``Moments`` (gradient, first and second moments) of X, or a tuple of them;
    ``optimizer``: an ``AdamW``. With ``decoupled``
    False the step is PyTorch Adam's instead: weight_decay * X is added to the gradient
    and the factors are not shrunk.
    """
    G, M, V = state
    lr, beta1, beta2, eps, weight_decay, decoupled = optimizer
    step_size = lr / bias_correction1
    root2 = np.sqrt(bias_correction2)
    decay = 1.0 - lr * weight_decay if decoupled else 1.0
    coupled = 0.0 if decoupled else weight_decay
    for r in prange(X.shape[0]):
        for f in range(X.shape[1]):
            g = G[r, f] + coupled * X[r, f]
            m = beta1 * M[r, f] + (1.0 - beta1) * g
            v = beta2 * V[r, f] + (1.0 - beta2) * g * g
            M[r, f] = m
            V[r, f] = v
            X[r, f] = X[r, f] * decay - step_size * m / (np.sqrt(v) / root2 + eps)
            G[r, f] = 0.0


@njit(**OPTS)
def _adam_gradient(triples, start, end, model, gradient, reg):
    """Gradient of mean_batch[(r - rhat)^2 + reg_u |p_u|^2 + reg_i |q_i|^2], accumulated into
    ``gradient`` = ``(gP, gQ, gbu, gbi)``."""
    users, items, ratings = triples
    mu, P, Q, bu, bi = model
    gP, gQ, gbu, gbi = gradient
    reg_u, reg_i = reg
    k = P.shape[1]
    scale = np.float32(2.0 / (end - start))
    for j in range(start, end):
        u = users[j]
        i = items[j]
        dot = np.float32(0.0)
        for f in range(k):
            dot += P[u, f] * Q[i, f]
        err = ratings[j] - (mu + bu[u] + bi[i] + dot)
        gbu[u] -= scale * err
        gbi[i] -= scale * err
        for f in range(k):
            p = P[u, f]
            q = Q[i, f]
            gP[u, f] += scale * (reg_u * p - err * q)
            gQ[i, f] += scale * (reg_i * q - err * p)


@njit(**OPTS)
def _column(x):
    """A 1-D array as an (n, 1) view."""
    return x.reshape((x.shape[0], 1))


@njit(**OPTS)
def adam_epoch(triples, model, state, optimizer, reg, batch_size, step, biased):
    """One pass in minibatches; every batch is one AdamW step on all parameters. Returns the step count.

    ``state``: an ``AdamState``; ``optimizer``: an ``AdamW``. Biases are 1-D arrays; they are updated through
    (n, 1) views, and only when ``biased`` (otherwise they stay 0).
    """
    _, P, Q, bu, bi = model
    sP, sQ, sbu, sbi = state
    gradient = (sP[0], sQ[0], sbu[0], sbi[0])
    column_bu = (_column(sbu[0]), _column(sbu[1]), _column(sbu[2]))
    column_bi = (_column(sbi[0]), _column(sbi[1]), _column(sbi[2]))
    beta1, beta2 = optimizer[1], optimizer[2]
    n = triples[0].shape[0]
    for start in range(0, n, batch_size):
        end = min(start + batch_size, n)
        _adam_gradient(triples, start, end, model, gradient, reg)
        step += 1
        c1 = 1.0 - beta1 ** step
        c2 = 1.0 - beta2 ** step
        adamw_update(P, sP, optimizer, c1, c2)
        adamw_update(Q, sQ, optimizer, c1, c2)
        if biased:
            adamw_update(_column(bu), column_bu, optimizer, c1, c2)
            adamw_update(_column(bi), column_bi, optimizer, c1, c2)
        else:
            gradient[2][:] = 0.0
            gradient[3][:] = 0.0
    return step


# ----- objectives ---------------------------------------------------------------------------------
@njit(**OPTS)
def _squared_error_range(triples, start, end, model, biased):
    """Sum of the squared errors of ratings start..end-1: float32 dot products, float64 errors and sum."""
    users, items, ratings = triples
    mu, P, Q, bu, bi = model
    k = P.shape[1]
    total = 0.0
    for x in range(start, end):
        u = users[x]
        i = items[x]
        dot = np.float32(0.0)
        for f in range(k):
            dot += P[u, f] * Q[i, f]
        pred = np.float64(dot)
        if biased:
            pred += np.float64(mu) + np.float64(bu[u]) + np.float64(bi[i])
        err = np.float64(ratings[x]) - pred
        total += err * err
    return total


@njit(parallel=True, **OPTS)
def squared_error(triples, model, biased):
    """Sum over the ratings of (r - mu - b_u - b_i - p_u . q_i)^2 (biases only if ``biased``).

    Summed in LOSS_CHUNKS fixed chunks, so the result does not depend on thread scheduling.
    """
    n = triples[2].shape[0]
    parts = np.zeros(LOSS_CHUNKS, np.float64)
    for c in prange(LOSS_CHUNKS):
        parts[c] = _squared_error_range(triples, c * n // LOSS_CHUNKS, (c + 1) * n // LOSS_CHUNKS, model, biased)
    return parts.sum()


@njit(**OPTS)
def squared_error_serial(triples, model, biased):
    """``squared_error`` on one thread, without the cost of starting a parallel region (same sum to rounding)."""
    n = triples[2].shape[0]
    parts = np.zeros(LOSS_CHUNKS, np.float64)
    for c in range(LOSS_CHUNKS):
        parts[c] = _squared_error_range(triples, c * n // LOSS_CHUNKS, (c + 1) * n // LOSS_CHUNKS, model, biased)
    return parts.sum()


@njit(**OPTS)
def weighted_squares(X, weights):
    """sum_r weights[r] * |X[r]|^2 in float64 (X 1-D or 2-D)."""
    Y = X.reshape((X.shape[0], -1))
    total = 0.0
    for r in range(Y.shape[0]):
        row = 0.0
        for f in range(Y.shape[1]):
            row += np.float64(Y[r, f]) * np.float64(Y[r, f])
        total += weights[r] * row
    return total


@njit(**OPTS)
def gravity_term(P, Q):
    """sum of the element-wise product of P^T P / n_users and Q^T Q / n_items, in float64."""
    k = P.shape[1]
    Gu = np.empty((k, k), np.float64)
    Gv = np.empty((k, k), np.float64)
    gramian(P, Gu)
    gramian(Q, Gv)
    total = 0.0
    for a in range(k):
        for b in range(k):
            total += Gu[a, b] * Gv[a, b]
    return total
