"""numba kernels of the ALS family: per-row ridge solves, Gram matrices and objectives.

A half-step updates every row of ``this`` from the fixed ``other`` factors and the
sparse ratings of that row: ``rows``, one side of the rating matrix as a ``contexts.Csr``
(for weighted ALS the values are the confidences). Rows
are independent, so they run in parallel; each row's arithmetic does not depend on
the thread that runs it, so the factors are the same for any thread count.

Arguments travel in the named tuples defined here (``Ridge``, ``ExplicitLosses``,
``WeightedRidge``) and in ``mfsweep.kernels.contexts``; an argument or field that is None
(no targets, one regularization for every row, no errors wanted) is resolved when the
kernel is compiled. A model keeps what each side's half-step reads in a ``Side``. numba
0.68 passes a named tuple into a parallel loop only when it is an argument of the kernel
(or built there), not when it is read from another tuple, so ``Side`` is not itself an
argument of a parallel kernel.

Each of ``n_threads`` threads (callers pass ``numba.get_num_threads()``) allocates
its workspace once, then claims blocks of ``BLOCK`` rows from a shared atomic
counter until none is left, taking the rows in the given ``order`` (the models pass
the most-rated rows first). This dynamic schedule keeps both threads busy when row
costs are skewed or when another process takes a core for a while, where a static
split leaves one thread idle at the end.

A kernel that calls another runs its own compiled copy of it, whether it was compiled
in this process or loaded from numba's cache (``mfsweep.kernels.linking``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from mfsweep.kernels import FASTMATH
from mfsweep.kernels.contexts import Csr

#: Rows a thread claims at a time.
BLOCK = 4


class Side(NamedTuple):
    """What a half-step reads of the side it updates (the arguments of the same names):
    its ratings ``rows``, the rows in claim ``order`` (``heavy_first``), the targets of
    its rated pairs in the order of ``rows`` (weighted ALS; None: preference 1), and each
    row's regularization (weighted ALS, float32; None: the same for every row)."""

    rows: Csr
    order: np.ndarray
    targets: np.ndarray | None = None
    row_regs: np.ndarray | None = None


class Ridge(NamedTuple):
    """Explicit ALS's regularization of a side: ``reg``, times each row's rating count when ``scaled``."""

    reg: float
    scaled: bool


class ExplicitLosses(NamedTuple):
    """Per row, written by ``explicit_half_step``: the squared error (float64; None: not
    computed) and the count-scaled squared norm of the new factors (float64)."""

    errors: np.ndarray | None
    penalty: np.ndarray


class WeightedRidge(NamedTuple):
    """Weighted ALS's parameters of a half-step: the regularization ``reg`` (of every row
    when the side has no ``row_regs``), the weight ``w0`` of unrated pairs, and the
    conjugate-gradient iterations per row (``implicit_half_cg``; the Cholesky solver is exact)."""

    reg: float
    w0: float
    cg_steps: int


@intrinsic
def _claim(typingctx, counter, step):
    """Atomically add ``step`` to ``counter[0]`` (an int64 array) and return the old value."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64 and counter.ndim == 1):
        return None
    sig = types.int64(counter, types.int64)

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        pointer = cgutils.get_item_pointer(context, builder, array_type, array, [zero])
        return builder.atomic_rmw("add", pointer, args[1], "monotonic")

    return sig, codegen


def heavy_first(indptr: np.ndarray) -> np.ndarray:
    """Row numbers by decreasing number of entries (ties by row number): the claim order."""
    return np.argsort(-np.diff(indptr), kind="stable").astype(np.int64)


# ----- dense helpers (one row, called inside the parallel loops) ---------------------------
#: Rows of ``other`` gathered per Gram update (``_add_rows_lower`` is written for 8).
GATHER = 8


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _add_rows_lower(A, M, w, k):
    """A += sum_r w[r] M[r]^T M[r] over the 8 rows of M, on the lower triangle of A.

    A and M have kp columns (kp: k rounded up to a multiple of 16; M is zero past
    column k) and A has at least k + 1 rows. Rows a and a + 1 of A are updated in one
    pass, which shares the loads of M, up to the next multiple of 16 columns, so the
    inner loop has a length the compiler vectorizes (8 or 16 lanes) without a scalar
    tail; the entries this writes above the diagonal (and in row k) are never read:
    the solvers read the lower triangle only.
    """
    m0, m1, m2, m3, m4, m5, m6, m7 = M[0], M[1], M[2], M[3], M[4], M[5], M[6], M[7]
    w0, w1, w2, w3, w4, w5, w6, w7 = w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]
    for a in range(0, k, 2):
        c = a + 1
        a0, a1, a2, a3 = w0 * m0[a], w1 * m1[a], w2 * m2[a], w3 * m3[a]
        a4, a5, a6, a7 = w4 * m4[a], w5 * m5[a], w6 * m6[a], w7 * m7[a]
        c0, c1, c2, c3 = w0 * m0[c], w1 * m1[c], w2 * m2[c], w3 * m3[c]
        c4, c5, c6, c7 = w4 * m4[c], w5 * m5[c], w6 * m6[c], w7 * m7[c]
        Aa = A[a]
        Ac = A[c]
        for col in range(((c >> 4) + 1) << 4):
            v0, v1, v2, v3 = m0[col], m1[col], m2[col], m3[col]
            v4, v5, v6, v7 = m4[col], m5[col], m6[col], m7[col]
            Aa[col] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3 + a4 * v4 + a5 * v5 + a6 * v6 + a7 * v7
            Ac[col] += c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3 + c4 * v4 + c5 * v5 + c6 * v6 + c7 * v7


@njit(cache=True, fastmath=FASTMATH)
def _target(targets, pos):
    """The target of entry ``pos``: ``targets[pos]``, or 1 (a preference) when ``targets``
    is None (the branch is resolved when the kernel is compiled)."""
    if targets is None:
        return np.float32(1.0)
    return targets[pos]


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _gather_rows(M, b, w, other, rows, targets, scale, offset, pos, end, k):
    """Copy the rows other[indices[pos:pos+8]] into M, add values[p] * target[p] * row to b
    (``_target``) and set the weights w[r] = scale * values[p] + offset; past ``end`` the
    weight is 0 (M keeps finite old rows)."""
    _, indices, values = rows
    for r in range(GATHER):
        p = pos + r
        if p < end:
            y = other[indices[p]]
            v = values[p]
            bv = v * _target(targets, p)
            Mr = M[r]
            for a in range(k):
                Mr[a] = y[a]
                b[a] += bv * y[a]
            w[r] = scale * v + offset
        else:
            w[r] = 0.0


@njit(cache=True, fastmath=FASTMATH)
def cholesky_solve(A, b, x, k):
    """Solve A x = b for symmetric positive definite A (k x k), reading its lower triangle.

    A is overwritten by its Cholesky factor L (lower) and b by the forward solution.
    Column j of L is computed for four rows at a time, which shares the loads of row
    j and gives the CPU four independent sums (2 to 3 times faster than one row at a
    time for k = 50). A pivot that is not positive (a singular system: no
    regularization and fewer ratings than factors) is replaced by a tiny positive
    value, which gives a finite least-squares solution instead of NaN.
    """
    for j in range(k):
        Aj = A[j]
        s = Aj[j]
        for m in range(j):
            s -= Aj[m] * Aj[m]
        floor = 1e-12 * (1.0 + abs(Aj[j]))
        pivot = np.sqrt(s) if s > floor else np.float32(np.sqrt(floor))
        Aj[j] = pivot
        inv = np.float32(1.0) / pivot
        i = j + 1
        while i + 3 < k:
            r0 = A[i]
            r1 = A[i + 1]
            r2 = A[i + 2]
            r3 = A[i + 3]
            s0, s1, s2, s3 = r0[j], r1[j], r2[j], r3[j]
            for m in range(j):
                v = Aj[m]
                s0 -= r0[m] * v
                s1 -= r1[m] * v
                s2 -= r2[m] * v
                s3 -= r3[m] * v
            r0[j] = s0 * inv
            r1[j] = s1 * inv
            r2[j] = s2 * inv
            r3[j] = s3 * inv
            i += 4
        while i < k:
            r0 = A[i]
            s0 = r0[j]
            for m in range(j):
                s0 -= r0[m] * Aj[m]
            r0[j] = s0 * inv
            i += 1
    # forward: L z = b (z stored in b)
    for i in range(k):
        s = b[i]
        for m in range(i):
            s -= A[i, m] * b[m]
        b[i] = s / A[i, i]
    # backward: L^T x = z, column by column so the inner loop reads a row of L
    for i in range(k):
        x[i] = b[i]
    for i in range(k - 1, -1, -1):
        xi = x[i] / A[i, i]
        x[i] = xi
        for m in range(i):
            x[m] -= xi * A[i, m]


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _dot(u, v, k):
    s = np.float32(0.0)
    for a in range(k):
        s += u[a] * v[a]
    return s


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _dot64(u, v, k):
    s = 0.0
    for a in range(k):
        s += np.float64(u[a]) * np.float64(v[a])
    return s


# ----- explicit ALS (als, als-biased) --------------------------------------------------------
@njit(cache=True, fastmath=FASTMATH)
def _explicit_row(rows, other, lam, row, work, k):
    """x = (Y_u^T Y_u + lam I)^-1 Y_u^T r for the row's ratings r (primal form).

    ``work``: the thread's workspace ``(A, M, Y, w, b, alpha, x)`` (see ``explicit_half_step``).
    """
    A, M, _, w, b, _, x = work
    indptr = rows.indptr
    start, end = indptr[row], indptr[row + 1]
    A[:, :] = 0.0
    b[:] = 0.0
    for pos in range(start, end, GATHER):
        _gather_rows(M, b, w, other, rows, None, np.float32(0.0), np.float32(1.0), pos, end, k)
        _add_rows_lower(A, M, w, k)
    for a in range(k):
        A[a, a] += lam
    cholesky_solve(A, b, x, k)


@njit(cache=True, fastmath=FASTMATH)
def _explicit_row_dual(rows, other, lam, row, work, k):
    """The same solve for a row with n < k ratings, through the n x n dual system:
    ``x = Y_u^T (Y_u Y_u^T + lam I)^-1 r`` equals ``(Y_u^T Y_u + lam I)^-1 Y_u^T r``
    for lam > 0, at O(n^2 k + n^3) instead of O(n k^2 + k^3); with lam = 0 (no
    regularization) it is the minimum-norm solution, where the primal system is
    singular.

    The row's factors are copied into Y (k x kp, zero past column k), so the dot
    products of the dual Gram matrix run over whole multiples of 16, four at a time.
    """
    A, _, Y, _, b, alpha, x = work
    indptr, indices, values = rows
    start, end = indptr[row], indptr[row + 1]
    n = end - start
    kp = Y.shape[1]
    for i in range(n):
        y = other[indices[start + i]]
        Yi = Y[i]
        for a in range(k):
            Yi[a] = y[a]
    for i in range(n):
        Yi = Y[i]
        j = 0
        while j + 3 <= i:
            Y0, Y1, Y2, Y3 = Y[j], Y[j + 1], Y[j + 2], Y[j + 3]
            s0 = s1 = s2 = s3 = np.float32(0.0)
            for a in range(kp):
                v = Yi[a]
                s0 += v * Y0[a]
                s1 += v * Y1[a]
                s2 += v * Y2[a]
                s3 += v * Y3[a]
            A[i, j] = s0
            A[i, j + 1] = s1
            A[i, j + 2] = s2
            A[i, j + 3] = s3
            j += 4
        while j <= i:
            A[i, j] = _dot(Yi, Y[j], kp)
            j += 1
        A[i, i] += lam
        b[i] = values[start + i]
    cholesky_solve(A, b, alpha, n)
    x[:] = 0.0
    for i in range(n):
        Yi = Y[i]
        ai = alpha[i]
        for a in range(k):
            x[a] += ai * Yi[a]


@njit(cache=True, fastmath=FASTMATH)
def _store_error(errors, rows, other, x, row, k):
    """errors[row] = |r - Y_u x|^2 over the row's ratings (0 for none), in float64;
    nothing when ``errors`` is None (the branch is resolved when the kernel is compiled)."""
    if errors is None:
        return
    indptr, indices, values = rows
    err = 0.0
    for pos in range(indptr[row], indptr[row + 1]):
        d = np.float64(values[pos]) - _dot64(x, other[indices[pos]], k)
        err += d * d
    errors[row] = err


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def explicit_half_step(rows, this, other, ridge, order, n_threads, losses):
    """Explicit ALS half-step, with count-scaled regularization (LensKit's BiasedMF) or a plain one.

    ``rows``: a ``Csr``; ``order``: the claim order; ``ridge``: a ``Ridge``. For each row
    u with n_u ratings r over the columns Y_u of ``other``:
    ``this[u] = (Y_u^T Y_u + reg * s_u * I)^-1 Y_u^T r`` with s_u = n_u when ``scaled``,
    else 1 (through the dual system when the row has fewer ratings than factors); a row
    with no ratings becomes zero. Also writes into ``losses`` (``ExplicitLosses``), per
    row and with the new factors, the squared error ``errors[u] = |r - Y_u this[u]|^2``
    (skipped when ``errors`` is None) and ``penalty[u] = s_u |this[u]|^2`` (float64), so
    the objective after an item step costs no extra pass.
    """
    indptr = rows.indptr
    reg = ridge.reg
    scaled = ridge.scaled
    errors = losses.errors
    penalty = losses.penalty
    n, k = this.shape
    counter = np.zeros(1, dtype=np.int64)
    kp = (k + 15) // 16 * 16
    for t in prange(n_threads):
        A = np.zeros((kp, kp), dtype=np.float32)
        M = np.zeros((GATHER, kp), dtype=np.float32)
        Y = np.zeros((k, kp), dtype=np.float32)
        w = np.zeros(GATHER, dtype=np.float32)
        b = np.empty(k, dtype=np.float32)
        alpha = np.empty(k, dtype=np.float32)
        x = np.empty(k, dtype=np.float32)
        work = (A, M, Y, w, b, alpha, x)
        while True:
            first = _claim(counter, BLOCK)
            if first >= n:
                break
            for q in range(first, min(first + BLOCK, n)):
                row = order[q]
                start, end = indptr[row], indptr[row + 1]
                if start == end:
                    this[row, :] = 0.0
                    _store_error(errors, rows, other, x, row, k)
                    penalty[row] = 0.0
                    continue
                count = end - start if scaled else 1
                lam = np.float32(reg * count)
                if end - start < k:
                    _explicit_row_dual(rows, other, lam, row, work, k)
                else:
                    _explicit_row(rows, other, lam, row, work, k)
                this[row, :] = x
                _store_error(errors, rows, other, x, row, k)
                penalty[row] = count * _dot64(x, x, k)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def explicit_row_errors(rows, this, other):
    """Per row: the sum of squared errors (r - this[u] . other[i])^2, float64."""
    indptr, indices, values = rows
    n, k = this.shape
    out = np.zeros(n, dtype=np.float64)
    for row in prange(n):
        s = 0.0
        for pos in range(indptr[row], indptr[row + 1]):
            err = np.float64(values[pos]) - _dot64(this[row], other[indices[pos]], k)
            s += err * err
        out[row] = s
    return out


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def row_sq_norms(X):
    """Per row: |X[u]|^2 in float64."""
    n, k = X.shape
    out = np.zeros(n, dtype=np.float64)
    for row in prange(n):
        s = 0.0
        for a in range(k):
            s += np.float64(X[row, a]) * X[row, a]
        out[row] = s
    return out


def explicit_objective(rows, t_indptr, P, Q, reg, scaled=True) -> float:
    """sum (r - p_u . q_i)^2 + reg_user * sum n_u |p_u|^2 + reg_item * sum n_i |q_i|^2
    (without the counts n_u, n_i when not ``scaled``).

    ``rows``: the user side (``Csr``); ``t_indptr``: the item side's row pointers; ``reg``:
    a ``contexts.UserItem``.
    """
    errors = explicit_row_errors(rows, P, Q)
    user_pen = row_sq_norms(P) * (np.diff(rows.indptr) if scaled else 1)
    item_pen = row_sq_norms(Q) * (np.diff(t_indptr) if scaled else 1)
    return float(np.sum(errors) + reg.user * np.sum(user_pen) + reg.item * np.sum(item_pen))


# ----- implicit (weighted) ALS -----------------------------------------------------------------
@njit(cache=True, parallel=True, fastmath=FASTMATH)
def gram(Y):
    """Y^T Y in float64 (the same result for any thread count)."""
    n, k = Y.shape
    Yt = np.ascontiguousarray(Y.T)
    G = np.empty((k, k), dtype=np.float64)
    for a in prange(k):
        for b in range(a + 1):
            s = 0.0
            for i in range(n):
                s += np.float64(Yt[a, i]) * Yt[b, i]
            G[a, b] = s
            G[b, a] = s
    return G


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _observed_loss(rows, targets, other, row, x, w0, k):
    """sum over the row's rated pairs of c (t - d)^2 - w0 d^2 = (c - w0) d^2 - 2 c t d + c t^2
    with d = x . y and t the target (``_target``), float64: the rated pairs' share of the
    weighted loss beyond w0 * x^T G x."""
    indptr, indices, conf = rows
    s = 0.0
    for pos in range(indptr[row], indptr[row + 1]):
        c = np.float64(conf[pos])
        t = np.float64(_target(targets, pos))
        d = _dot64(x, other[indices[pos]], k)
        s += (c - w0) * d * d - 2.0 * c * t * d + c * t * t
    return s


@njit(cache=True, fastmath=FASTMATH)
def _row_reg(reg, row_regs, row):
    """The regularization of ``row``: ``row_regs[row]``, or ``reg`` for every row when
    ``row_regs`` is None (the branch is resolved when the kernel is compiled)."""
    if row_regs is None:
        return reg
    return row_regs[row]


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def implicit_half_cholesky(rows, targets, this, other, G, params, order, n_threads, losses, row_regs):
    """Weighted ALS half-step, exact: this[u] = A_u^-1 b_u with
    ``A_u = w0 G + reg_u I + sum_i (c_ui - w0) y_i y_i^T`` and ``b_u = sum_i c_ui t_ui y_i``
    (G = other^T other as float32; target t_ui on rated pairs, 0 elsewhere). Rows
    with no ratings become zero, like ``implicit``. ``losses[u]`` gets the rated
    pairs' share of the weighted loss with the new factors (``_observed_loss``).
    ``rows`` (a ``Csr``) holds the weights c_ui, ``targets`` the t_ui (None: preference 1)
    and ``row_regs`` reg_u (None: ``params.reg`` on every row), as in a ``Side``; ``params``:
    a ``WeightedRidge`` (its ``cg_steps`` unused).
    """
    indptr = rows.indptr
    reg = params.reg
    w0 = params.w0
    n, k = this.shape
    regf = np.float32(reg)
    w0f = np.float32(w0)
    kp = (k + 15) // 16 * 16
    counter = np.zeros(1, dtype=np.int64)
    for t in prange(n_threads):
        A = np.zeros((kp, kp), dtype=np.float32)
        M = np.zeros((GATHER, kp), dtype=np.float32)
        w = np.zeros(GATHER, dtype=np.float32)
        b = np.empty(k, dtype=np.float32)
        x = np.empty(k, dtype=np.float32)
        while True:
            first = _claim(counter, BLOCK)
            if first >= n:
                break
            for q in range(first, min(first + BLOCK, n)):
                row = order[q]
                start, end = indptr[row], indptr[row + 1]
                if start == end:
                    this[row, :] = 0.0
                    losses[row] = 0.0
                    continue
                lam = _row_reg(regf, row_regs, row)
                for a in range(k):
                    for c in range(a + 1):
                        A[a, c] = w0f * G[a, c]
                    A[a, a] += lam
                    b[a] = 0.0
                for pos in range(start, end, GATHER):
                    _gather_rows(M, b, w, other, rows, targets, np.float32(1.0), -w0f, pos, end, k)
                    _add_rows_lower(A, M, w, k)
                cholesky_solve(A, b, x, k)
                this[row, :] = x
                losses[row] = _observed_loss(rows, targets, other, row, x, w0, k)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def implicit_half_cg(rows, targets, this, other, G, params, order, n_threads, losses, row_regs):
    """Weighted ALS half-step by ``steps`` conjugate-gradient iterations per row, warm
    started from the current row (``implicit``'s CPU solver, generalized to an
    unobserved weight w0): A_u p is w0 G p + reg_u p + sum_i (c_ui - w0)(y_i . p) y_i,
    so A_u is never formed. ``params``: a ``WeightedRidge`` (``cg_steps`` iterations);
    the other arguments as in ``implicit_half_cholesky`` (a shared reg is folded into w0 G
    once; a per-row one is added in each product).
    """
    indptr = rows.indptr
    reg = params.reg
    w0 = params.w0
    steps = params.cg_steps
    n, k = this.shape
    regf = np.float32(reg)
    w0f = np.float32(w0)
    Gw = np.empty((k, k), dtype=np.float32)
    for a in range(k):
        for c in range(k):
            Gw[a, c] = w0f * G[a, c]
        if row_regs is None:
            Gw[a, a] += regf
    counter = np.zeros(1, dtype=np.int64)
    for t in prange(n_threads):
        r = np.empty(k, dtype=np.float32)
        p = np.empty(k, dtype=np.float32)
        Ap = np.empty(k, dtype=np.float32)
        x = np.empty(k, dtype=np.float32)
        work = (r, p, Ap)
        while True:
            first = _claim(counter, BLOCK)
            if first >= n:
                break
            for q in range(first, min(first + BLOCK, n)):
                row = order[q]
                start, end = indptr[row], indptr[row + 1]
                if start == end:
                    this[row, :] = 0.0
                    losses[row] = 0.0
                    continue
                for a in range(k):
                    x[a] = this[row, a]
                _cg_solve(rows, targets, other, Gw, w0f, steps, row, x, work, k, row_regs)
                this[row, :] = x
                losses[row] = _observed_loss(rows, targets, other, row, x, w0, k)


@njit(cache=True, fastmath=FASTMATH)
def _cg_solve(rows, targets, other, Gw, w0f, steps, row, x, work, k, row_regs):
    """``steps`` CG iterations on A_u x = b_u from the given x (updated in place);
    ``work``: the thread's vectors ``(r, p, Ap)``; ``row_regs``: None when Gw holds the
    regularization, else reg_u per row. The thresholds on |r|^2 are implicit's."""
    indptr, indices, conf = rows
    r, p, Ap = work
    start, end = indptr[row], indptr[row + 1]
    # r = b - A x
    for a in range(k):
        r[a] = -_dot(Gw[a], x, k)
    if row_regs is not None:
        lam = row_regs[row]
        for a in range(k):
            r[a] -= lam * x[a]
    for pos in range(start, end):
        y = other[indices[pos]]
        c = conf[pos]
        coef = c * _target(targets, pos) - (c - w0f) * _dot(y, x, k)
        for a in range(k):
            r[a] += coef * y[a]
    for a in range(k):
        p[a] = r[a]
    rs_old = _dot(r, r, k)
    if rs_old < 1e-20:
        return
    for _ in range(steps):
        for a in range(k):
            Ap[a] = _dot(Gw[a], p, k)
        if row_regs is not None:
            for a in range(k):
                Ap[a] += row_regs[row] * p[a]
        for pos in range(start, end):
            y = other[indices[pos]]
            coef = (conf[pos] - w0f) * _dot(y, p, k)
            for a in range(k):
                Ap[a] += coef * y[a]
        step = rs_old / _dot(p, Ap, k)
        for a in range(k):
            x[a] += step * p[a]
            r[a] -= step * Ap[a]
        rs_new = _dot(r, r, k)
        if rs_new < 1e-20:
            return
        beta = rs_new / rs_old
        for a in range(k):
            p[a] = r[a] + beta * p[a]
        rs_old = rs_new


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def implicit_row_losses(rows, targets, X, Y, w0):
    """Per row of X: the rated pairs' share of the weighted loss (``_observed_loss``)."""
    n, k = X.shape
    out = np.zeros(n, dtype=np.float64)
    for row in prange(n):
        out[row] = _observed_loss(rows, targets, Y, row, X[row], w0, k)
    return out


def implicit_penalty(X, gram_x, reg, row_regs=None) -> float:
    """The penalty of one side: ``reg |X|^2`` (the trace of its Gram matrix), or
    ``sum_u row_regs[u] |X[u]|^2`` with a regularization per row."""
    if row_regs is None:
        return reg * float(np.trace(gram_x))
    return float(np.dot(row_regs.astype(np.float64), row_sq_norms(X)))


def implicit_loss(observed, gram_x, gram_y, penalty, w0, total_weight) -> float:
    """``implicit``'s training loss from its parts: the weighted squared error over every
    pair, ``w0 <X^T X, Y^T Y> + sum(observed)``, plus the penalty of both sides
    (``implicit_penalty``), divided by the total weight
    ``sum c_ui + w0 * (n_users * n_items - nnz)``."""
    error = _implicit_error(observed, gram_x, gram_y, w0)
    return (error + penalty) / total_weight if total_weight > 0 else float("nan")


def implicit_loss_parts(observed, gram_x, gram_y, penalty, w0, total_weight) -> tuple[float, float]:
    """The two parts of ``implicit_loss``, on its scale: (weighted squared error, penalty)."""
    if total_weight <= 0:
        return float("nan"), float("nan")
    return _implicit_error(observed, gram_x, gram_y, w0) / total_weight, penalty / total_weight


def _implicit_error(observed, gram_x, gram_y, w0) -> float:
    """The weighted squared error over every pair, not normalized."""
    quad = w0 * float(np.sum(gram_x * gram_y))
    return quad + float(np.sum(observed))
