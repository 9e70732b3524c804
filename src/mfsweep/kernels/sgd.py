"""numba kernels of the SGD family: per-rating SGD (plain, biased, Gramian), minibatch AdamW, objectives.

Every epoch kernel walks the ratings in ``order`` (a permutation drawn by the model each
epoch). Factors and biases are float32 and updated in place. The sequential kernels are
deterministic; the ``*_hogwild`` kernels split ``order`` into contiguous chunks that run
in parallel without locks (Hogwild), so their result depends on thread timing.

fastmath leaves out ``nnan`` and ``ninf``: a diverging run must yield inf/nan, which the
models detect after the epoch. ``error_model="numpy"`` makes a division by zero give
inf/nan instead of raising.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}
OPTS = dict(cache=True, fastmath=FAST, error_model="numpy")

#: Number of chunks of the objective sums: fixed, so the loss does not depend on the thread count.
LOSS_CHUNKS = 64


# ----- plain and biased SGD (FunkSVD, Surprise's SVD) --------------------------------------------
@njit(**OPTS)
def _sgd_step(u, i, r, mu, P, Q, bu, bi, lr, lr_bias, reg_u, reg_i, reg_bu, reg_bi, biased):
    """One rating: the error at the old parameters, then biases and factors (Surprise's order)."""
    k = P.shape[1]
    dot = np.float32(0.0)
    for f in range(k):
        dot += P[u, f] * Q[i, f]
    if biased:
        err = r - (mu + bu[u] + bi[i] + dot)
        bu[u] += lr_bias * (err - reg_bu * bu[u])
        bi[i] += lr_bias * (err - reg_bi * bi[i])
    else:
        err = r - dot
    for f in range(k):
        p = P[u, f]
        q = Q[i, f]
        P[u, f] = p + lr * (err * q - reg_u * p)
        Q[i, f] = q + lr * (err * p - reg_i * q)


@njit(**OPTS)
def sgd_epoch(users, items, ratings, order, mu, P, Q, bu, bi, lr, lr_bias, reg_u, reg_i, reg_bu, reg_bi, biased):
    """One sequential pass over the ratings in ``order``."""
    for j in range(order.shape[0]):
        x = order[j]
        _sgd_step(users[x], items[x], ratings[x], mu, P, Q, bu, bi,
                  lr, lr_bias, reg_u, reg_i, reg_bu, reg_bi, biased)


@njit(parallel=True, **OPTS)
def sgd_epoch_hogwild(users, items, ratings, order, mu, P, Q, bu, bi, lr, lr_bias,
                      reg_u, reg_i, reg_bu, reg_bi, biased, n_chunks):
    """``sgd_epoch`` with ``order`` cut into ``n_chunks`` chunks run in parallel, lock-free."""
    n = order.shape[0]
    for c in prange(n_chunks):
        for j in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            x = order[j]
            _sgd_step(users[x], items[x], ratings[x], mu, P, Q, bu, bi,
                      lr, lr_bias, reg_u, reg_i, reg_bu, reg_bi, biased)


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
            for b in range(k):
                acc[b] += xa * X[r, b]
        for b in range(k):
            out[a, b] = acc[b] * scale


@njit(**OPTS)
def _gramian_step(u, i, r, P, Q, Gu, Gv, wu, wi, lr, reg_u, reg_i, gp, gq):
    """One rating: data and L2 gradient plus the user's / item's share of the gravity gradient."""
    k = P.shape[1]
    dot = np.float32(0.0)
    for f in range(k):
        dot += P[u, f] * Q[i, f]
    err = r - dot
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


@njit(**OPTS)
def _gramian_batch(users, items, ratings, order, start, end, P, Q, Gu, Gv, wu, wi, lr, reg_u, reg_i):
    k = P.shape[1]
    gp = np.empty(k, np.float32)
    gq = np.empty(k, np.float32)
    for j in range(start, end):
        x = order[j]
        _gramian_step(users[x], items[x], ratings[x], P, Q, Gu, Gv, wu, wi, lr, reg_u, reg_i, gp, gq)


@njit(parallel=True, **OPTS)
def _gramian_batch_hogwild(users, items, ratings, order, start, end, P, Q, Gu, Gv, wu, wi, lr,
                           reg_u, reg_i, n_chunks):
    n = end - start
    for c in prange(n_chunks):
        _gramian_batch(users, items, ratings, order, start + c * n // n_chunks, start + (c + 1) * n // n_chunks,
                       P, Q, Gu, Gv, wu, wi, lr, reg_u, reg_i)


@njit(**OPTS)
def gramian_epoch(users, items, ratings, order, P, Q, Gu, Gv, wu, wi, lr0, decay_pct, period, step,
                  batch_size, reg_u, reg_i, hogwild, n_chunks):
    """One pass in batches of ``batch_size`` ratings; returns the step count after it.

    A step is one batch: before it the Gramians Gu = P^T P / n_users and Gv = Q^T Q / n_items
    are recomputed and the learning rate is set to lr0 * (1 - decay_pct) ** (step // period);
    both stay fixed within the batch. ``wu[u]`` / ``wi[i]`` weigh the gravity gradient so that
    the ratings of a user (item) together apply it once per epoch (see models.sgd.GramianSGD).
    """
    n = order.shape[0]
    for start in range(0, n, batch_size):
        end = min(start + batch_size, n)
        gramian(P, Gu)
        gramian(Q, Gv)
        lr = np.float32(lr0 * (1.0 - decay_pct) ** (step // period))
        if hogwild:
            _gramian_batch_hogwild(users, items, ratings, order, start, end, P, Q, Gu, Gv, wu, wi, lr,
                                   reg_u, reg_i, n_chunks)
        else:
            _gramian_batch(users, items, ratings, order, start, end, P, Q, Gu, Gv, wu, wi, lr, reg_u, reg_i)
        step += 1
    return step


# ----- minibatch AdamW ----------------------------------------------------------------------------
@njit(parallel=True, **OPTS)
def adamw_update(X, G, M, V, lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2):
    """PyTorch's AdamW step on every row of X (2-D), then G is zeroed for the next batch."""
    step_size = lr / bias_correction1
    root2 = np.sqrt(bias_correction2)
    decay = 1.0 - lr * weight_decay
    for r in prange(X.shape[0]):
        for f in range(X.shape[1]):
            g = G[r, f]
            m = beta1 * M[r, f] + (1.0 - beta1) * g
            v = beta2 * V[r, f] + (1.0 - beta2) * g * g
            M[r, f] = m
            V[r, f] = v
            X[r, f] = X[r, f] * decay - step_size * m / (np.sqrt(v) / root2 + eps)
            G[r, f] = 0.0


@njit(**OPTS)
def _adam_gradient(users, items, ratings, order, start, end, mu, P, Q, bu, bi, gP, gQ, gbu, gbi,
                   reg_u, reg_i):
    """Gradient of mean_batch[(r - rhat)^2 + reg_u |p_u|^2 + reg_i |q_i|^2], accumulated into g*."""
    k = P.shape[1]
    scale = np.float32(2.0 / (end - start))
    for j in range(start, end):
        x = order[j]
        u = users[x]
        i = items[x]
        dot = np.float32(0.0)
        for f in range(k):
            dot += P[u, f] * Q[i, f]
        err = ratings[x] - (mu + bu[u] + bi[i] + dot)
        gbu[u] -= scale * err
        gbi[i] -= scale * err
        for f in range(k):
            p = P[u, f]
            q = Q[i, f]
            gP[u, f] += scale * (reg_u * p - err * q)
            gQ[i, f] += scale * (reg_i * q - err * p)


@njit(**OPTS)
def adam_epoch(users, items, ratings, order, mu, P, Q, bu, bi, gP, gQ, gbu, gbi, mP, vP, mQ, vQ,
               mbu, vbu, mbi, vbi, lr, beta1, beta2, eps, weight_decay, reg_u, reg_i, batch_size, step):
    """One pass in minibatches; every batch is one AdamW step on all parameters. Returns the step count.

    Biases are 1-D arrays; they are updated through (n, 1) views.
    """
    n = order.shape[0]
    nu = bu.shape[0]
    ni = bi.shape[0]
    for start in range(0, n, batch_size):
        end = min(start + batch_size, n)
        _adam_gradient(users, items, ratings, order, start, end, mu, P, Q, bu, bi, gP, gQ, gbu, gbi,
                       reg_u, reg_i)
        step += 1
        c1 = 1.0 - beta1 ** step
        c2 = 1.0 - beta2 ** step
        adamw_update(P, gP, mP, vP, lr, beta1, beta2, eps, weight_decay, c1, c2)
        adamw_update(Q, gQ, mQ, vQ, lr, beta1, beta2, eps, weight_decay, c1, c2)
        adamw_update(bu.reshape((nu, 1)), gbu.reshape((nu, 1)), mbu.reshape((nu, 1)), vbu.reshape((nu, 1)),
                     lr, beta1, beta2, eps, weight_decay, c1, c2)
        adamw_update(bi.reshape((ni, 1)), gbi.reshape((ni, 1)), mbi.reshape((ni, 1)), vbi.reshape((ni, 1)),
                     lr, beta1, beta2, eps, weight_decay, c1, c2)
    return step


# ----- objectives ---------------------------------------------------------------------------------
@njit(parallel=True, **OPTS)
def squared_error(users, items, ratings, mu, P, Q, bu, bi, biased):
    """Sum over the ratings of (r - mu - b_u - b_i - p_u . q_i)^2 in float64 (biases only if ``biased``)."""
    n = ratings.shape[0]
    k = P.shape[1]
    parts = np.zeros(LOSS_CHUNKS, np.float64)
    for c in prange(LOSS_CHUNKS):
        total = 0.0
        for x in range(c * n // LOSS_CHUNKS, (c + 1) * n // LOSS_CHUNKS):
            u = users[x]
            i = items[x]
            dot = 0.0
            for f in range(k):
                dot += np.float64(P[u, f]) * np.float64(Q[i, f])
            pred = dot + mu + bu[u] + bi[i] if biased else dot
            err = ratings[x] - pred
            total += err * err
        parts[c] = total
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
