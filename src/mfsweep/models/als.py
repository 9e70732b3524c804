"""The ALS family: plain explicit ALS, LensKit's biased MF, and weighted ALS for implicit feedback.

Every epoch is a user half-step (each user's factors solved with the item factors
fixed) followed by an item half-step; the solves run in numba (``mfsweep.kernels.als``).

- ``als`` minimizes ``sum (r - p_u.q_i)^2 + reg.user * sum n_u |p_u|^2 + reg.item * sum n_i |q_i|^2``
  (regularization scaled by each row's rating count, as in LensKit; with
  ``regularization_scaling: none`` the counts n_u, n_i are left out: a plain
  ``reg * I`` ridge per row); factors start from normal(0, 0.1).
- ``als-biased`` is LensKit 2025.8's ``BiasedMFScorer``: the global mean and damped
  item then user biases are fitted once, and the same count-scaled ALS runs on the
  residuals; factors start from standard-normal rows scaled to unit length (items
  drawn first, then users).
- ``wals`` is Hu, Koren and Volinsky's weighted ALS (``implicit``'s
  ``AlternatingLeastSquares`` when ``unobserved_weight`` is 1): preference 1 for
  rated pairs and 0 elsewhere, weight ``c_ui`` on rated pairs and
  ``unobserved_weight`` on the others, regularization not scaled by counts.
  ``c_ui = alpha * f(r)^exponent`` with ``f(r) = r`` (``confidence: linear``) or
  ``f(r) = log(1 + r / epsilon)`` (``confidence: log``). Factors start from
  uniform(0, 0.01), users drawn first, as in ``implicit``; with ``init_std`` set, from
  normal(0, init_std), users drawn first (the iALS code of Rendle et al. draws
  normal(0, stddev / sqrt(embedding_size))).

  ``regularization_scaling: frequency`` is the iALS recipe of Rendle et al. (2022): row
  u's regularization is ``reg * (n_u + unobserved_weight * N)^regularization_exponent``
  with n_u its ratings and N the number of columns of the other side (items for a
  user, users for an item); the default ``none`` gives every row ``reg``.

  Two options turn it into the explicit WALS of TensorFlow's WALS tutorial (defaults
  keep the model above):

  - ``target: rating``: the rating is the target of a rated pair (unrated pairs keep
    target 0 and weight ``unobserved_weight``), so the model predicts ratings.
  - ``weighting: item_frequency``: rated pairs weigh ``unobserved_weight + w_i`` with
    the item's column weight ``w_i = alpha / n_i`` (``confidence: linear``) or
    ``(1 / n_i)^exponent`` (``confidence: log``), n_i its number of training ratings.

  Every half-step solves the weighted ridge problem exactly (``cholesky``) or
  approximately (``cg``): ``(w0 Y^T Y + reg I + sum_i (c_ui - w0) y_i y_i^T) x_u
  = sum_i c_ui t_ui y_i`` over the row's rated pairs, Y^T Y formed once per half-step
  (``reg`` the row's regularization).

The training loss of ``als`` and ``als-biased`` is their objective divided by the
number of ratings; that of ``wals`` is ``implicit``'s: the weighted objective
divided by the total weight of all pairs. Each model also leaves the parts of its
loss in ``loss_parts`` (``data``: the (weighted) squared error, ``l2``: the penalty), on
the same scale, after every epoch.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numba
import numpy as np

from mfsweep.kernels import als as kernels
from mfsweep.kernels.als import ExplicitLosses, Ridge, Side, WeightedRidge
from mfsweep.kernels.contexts import Csr, UserItem
from mfsweep.matrix import RatingMatrix
from mfsweep.models.base import MFModel, ParameterError


class ALS(MFModel):
    """Plain explicit ALS (P and Q only)."""

    kind: ClassVar[str] = "als"
    defaults: ClassVar[dict[str, Any]] = {"regularization_scaling": "count"}
    SCALINGS: ClassVar[tuple[str, ...]] = ("count", "none")

    def _check_params(self) -> None:
        super()._check_params()
        if self.params["regularization_scaling"] not in self.SCALINGS:
            raise ParameterError(f"{self.kind}: regularization_scaling must be one of {', '.join(self.SCALINGS)}, "
                                 f"got {self.params['regularization_scaling']!r}")

    def _ridges(self) -> UserItem:
        """The kernels' ``Ridge`` of each side."""
        scaled = self.params["regularization_scaling"] == "count"
        return UserItem(*(Ridge(reg, scaled) for reg in self.pair("regularization")))

    def _setup(self, matrix: RatingMatrix, rng: np.random.Generator) -> None:
        k = self.embedding_size
        self.user_factors = rng.normal(0.0, 0.1, (matrix.n_users, k)).astype(np.float32)
        self.item_factors = rng.normal(0.0, 0.1, (matrix.n_items, k)).astype(np.float32)
        self.user_bias = None
        self.item_bias = None
        self.global_bias = 0.0
        self._prepare(matrix, matrix.data, matrix.t_data)

    def _prepare(self, matrix: RatingMatrix, values: np.ndarray, t_values: np.ndarray) -> None:
        """Keep the values ALS fits (the user side in CSR form, the item side in CSC form)
        and the per-row loss buffers."""
        self.matrix = matrix
        self._sides = UserItem(
            Side(Csr(matrix.indptr, matrix.indices, values), kernels.heavy_first(matrix.indptr)),
            Side(Csr(matrix.t_indptr, matrix.t_indices, t_values), kernels.heavy_first(matrix.t_indptr)),
        )
        # the user step needs no errors: the item step that follows changes them
        self._losses = UserItem(ExplicitLosses(None, np.zeros(matrix.n_users)),
                                ExplicitLosses(np.zeros(matrix.n_items), np.zeros(matrix.n_items)))

    def user_step(self) -> None:
        """Solve every user's factors with the item factors fixed."""
        side = self._sides.user
        kernels.explicit_half_step(side.rows, self.user_factors, self.item_factors, self._ridges().user,
                                   side.order, numba.get_num_threads(), self._losses.user)

    def item_step(self) -> None:
        """Solve every item's factors with the user factors fixed."""
        side = self._sides.item
        kernels.explicit_half_step(side.rows, self.item_factors, self.user_factors, self._ridges().item,
                                   side.order, numba.get_num_threads(), self._losses.item)

    def objective(self) -> float:
        """The regularized squared error that ALS minimizes (not normalized)."""
        return kernels.explicit_objective(
            self._sides.user.rows, self.matrix.t_indptr, self.user_factors, self.item_factors,
            UserItem(*self.pair("regularization")), self._ridges().user.scaled,
        )

    def _epoch(self, epoch: int) -> float:
        self.user_step()
        self.item_step()
        # the item step leaves every rating's error and the item penalties; the user
        # step left the user penalties, and the user factors have not changed since
        reg_user, reg_item = self.pair("regularization")
        errors, item_penalty = self._losses.item
        data = np.sum(errors)
        user_l2, item_l2 = reg_user * np.sum(self._losses.user.penalty), reg_item * np.sum(item_penalty)
        n = max(self.matrix.nnz, 1)
        self.loss_parts = {"data": float(data) / n, "l2": float(user_l2 + item_l2) / n}
        return float(data + user_l2 + item_l2) / n


class BiasedALS(ALS):
    """LensKit's BiasedMF: damped biases fitted once, count-scaled ALS on the residuals."""

    kind: ClassVar[str] = "als-biased"
    biased: ClassVar[bool] = True
    # LensKit 2025.8's BiasedMFConfig defaults
    defaults: ClassVar[dict[str, Any]] = {
        "embedding_size": 50, "regularization": 0.1, "epochs": 10, "damping": 5.0,
        "regularization_scaling": "count",
    }
    non_negative: ClassVar[tuple[str, ...]] = ("regularization", "damping")

    def _setup(self, matrix: RatingMatrix, rng: np.random.Generator) -> None:
        k = self.embedding_size
        self.item_factors = _unit_rows(rng, matrix.n_items, k)
        self.user_factors = _unit_rows(rng, matrix.n_users, k)
        self._fit_biases(matrix)

    def _fit_biases(self, matrix: RatingMatrix) -> None:
        damp_user, damp_item = self.pair("damping")
        users, items, ratings = matrix.coo()
        ratings = ratings.astype(np.float64)
        mean = float(np.mean(ratings)) if len(ratings) else 0.0
        centered = ratings - mean
        item_bias = _damped_mean(items, centered, matrix.n_items, damp_item)
        centered -= item_bias[items]
        user_bias = _damped_mean(users, centered, matrix.n_users, damp_user)
        self.global_bias = mean
        self.item_bias = item_bias
        self.user_bias = user_bias
        # residuals in CSR (user-major) order, then in CSC order
        residual = (
            ratings - mean - item_bias[items].astype(np.float64) - user_bias[users].astype(np.float64)
        ).astype(np.float32)
        t_users = matrix.t_indices
        t_items = np.repeat(np.arange(matrix.n_items, dtype=np.int32), matrix.item_counts())
        t_residual = (
            matrix.t_data.astype(np.float64) - mean
            - item_bias[t_items].astype(np.float64) - user_bias[t_users].astype(np.float64)
        ).astype(np.float32)
        self._prepare(matrix, residual, t_residual)


def _damped_mean(rows: np.ndarray, values: np.ndarray, n: int, damping: float) -> np.ndarray:
    """Per row: sum(values) / (count + damping) as float32; 0 for rows with nothing."""
    sums = np.bincount(rows, weights=values, minlength=n)
    counts = np.bincount(rows, minlength=n) + damping
    out = np.zeros(n, dtype=np.float32)
    np.divide(sums, counts, out=out, where=counts > 0, casting="unsafe")
    return out


def _unit_rows(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Standard-normal rows scaled to unit length (LensKit's ALS initialization)."""
    mat = rng.standard_normal((n, k), dtype=np.float32)
    mat /= np.linalg.norm(mat, axis=1).reshape((n, 1))
    return mat


class WALS(MFModel):
    """Weighted ALS for implicit feedback (Hu, Koren and Volinsky; ``implicit``'s ALS)."""

    kind: ClassVar[str] = "wals"
    # the size, regularization and iterations default to implicit 0.7.3's
    defaults: ClassVar[dict[str, Any]] = {
        "embedding_size": 100, "regularization": 0.01, "epochs": 15, "alpha": 1.0, "confidence": "linear",
        "epsilon": 1.0, "exponent": 1.0, "unobserved_weight": 1.0, "solver": "cg", "cg_steps": 3,
        "target": "preference", "weighting": "rating",
        "regularization_scaling": "none", "regularization_exponent": 1.0, "init_std": None,
    }
    non_negative: ClassVar[tuple[str, ...]] = ("regularization", "unobserved_weight", "exponent",
                                               "regularization_exponent")
    positive: ClassVar[tuple[str, ...]] = ("alpha", "epsilon")

    SOLVERS: ClassVar[tuple[str, ...]] = ("cg", "cholesky")
    CONFIDENCES: ClassVar[tuple[str, ...]] = ("linear", "log")
    TARGETS: ClassVar[tuple[str, ...]] = ("preference", "rating")
    WEIGHTINGS: ClassVar[tuple[str, ...]] = ("rating", "item_frequency")
    SCALINGS: ClassVar[tuple[str, ...]] = ("none", "frequency")

    def _check_params(self) -> None:
        for name in ("alpha", "epsilon", "exponent", "unobserved_weight", "regularization_exponent"):
            value = self.params[name]
            if isinstance(value, (bool, dict)) or not isinstance(value, (int, float, np.number)):
                raise ParameterError(f"{self.kind}: {name} must be a number, got {value!r}")
        std = self.params["init_std"]
        if std is not None and (isinstance(std, bool) or not isinstance(std, (int, float, np.number))
                                or not np.isfinite(std) or std <= 0):
            raise ParameterError(f"{self.kind}: init_std must be a number > 0, or null for uniform(0, 0.01), "
                                 f"got {std!r}")
        super()._check_params()
        p = self.params
        for name, allowed in (("solver", self.SOLVERS), ("confidence", self.CONFIDENCES),
                              ("target", self.TARGETS), ("weighting", self.WEIGHTINGS),
                              ("regularization_scaling", self.SCALINGS)):
            if p[name] not in allowed:
                raise ParameterError(f"{self.kind}: {name} must be one of {', '.join(allowed)}, got {p[name]!r}")
        self._integer("cg_steps", 1)

    def confidence(self, ratings: np.ndarray) -> np.ndarray:
        """The weight c_ui of rated pairs, float32."""
        p = self.params
        r = np.asarray(ratings, dtype=np.float64)
        base = r if p["confidence"] == "linear" else np.log1p(r / float(p["epsilon"]))
        exponent = float(p["exponent"])
        if exponent != 1.0:
            base = np.power(base, exponent)
        return (float(p["alpha"]) * base).astype(np.float32)

    def column_weights(self, item_counts: np.ndarray) -> np.ndarray:
        """``weighting: item_frequency``: w_i = alpha / n_i (linear) or (1 / n_i)^exponent (log),
        0 for items with no rating, float64."""
        p = self.params
        frac = np.zeros(len(item_counts))
        np.divide(1.0, item_counts, out=frac, where=item_counts > 0)
        if p["confidence"] == "linear":
            return float(p["alpha"]) * frac
        return np.where(item_counts > 0, np.power(frac, float(p["exponent"])), 0.0)

    def pair_weights(self, matrix: RatingMatrix) -> tuple[np.ndarray, np.ndarray]:
        """The weight c_ui of every rated pair, in CSR (user side) and CSC (item side) order, float32."""
        if self.params["weighting"] == "rating":
            return self.confidence(matrix.data), self.confidence(matrix.t_data)
        w0 = float(self.params["unobserved_weight"])
        counts = matrix.item_counts()
        column = w0 + self.column_weights(counts)
        t_items = np.repeat(np.arange(matrix.n_items), counts)
        return column[matrix.indices].astype(np.float32), column[t_items].astype(np.float32)

    def row_regularization(self, matrix: RatingMatrix) -> UserItem:
        """Each row's regularization of each side as float32, or None for a side whose
        rows all take the side's ``regularization``."""
        if self.params["regularization_scaling"] == "none":
            return UserItem(None, None)
        w0 = float(self.params["unobserved_weight"])
        nu = float(self.params["regularization_exponent"])
        reg_user, reg_item = self.pair("regularization")
        counts = (np.diff(matrix.indptr), np.diff(matrix.t_indptr))
        return UserItem(*(
            (reg * np.power(n.astype(np.float64) + w0 * others, nu)).astype(np.float32)
            for reg, n, others in ((reg_user, counts[0], matrix.n_items), (reg_item, counts[1], matrix.n_users))
        ))

    def _initial_factors(self, rng: np.random.Generator, n: int) -> np.ndarray:
        k = self.embedding_size
        std = self.params["init_std"]
        if std is None:
            return rng.random((n, k), dtype=np.float32) * np.float32(0.01)
        return rng.standard_normal((n, k), dtype=np.float32) * np.float32(std)

    def _setup(self, matrix: RatingMatrix, rng: np.random.Generator) -> None:
        self.matrix = matrix
        self.user_factors = self._initial_factors(rng, matrix.n_users)
        self.item_factors = self._initial_factors(rng, matrix.n_items)
        row_regs = self.row_regularization(matrix)
        self.user_bias = None
        self.item_bias = None
        self.global_bias = 0.0
        conf, t_conf = self.pair_weights(matrix)
        # the weights of the user side (CSR) and of the item side (CSC), and the targets (None: 1)
        rating = self.params["target"] == "rating"
        targets = (matrix.data.astype(np.float32), matrix.t_data.astype(np.float32)) if rating else (None, None)
        self._sides = UserItem(
            Side(Csr(matrix.indptr, matrix.indices, conf), kernels.heavy_first(matrix.indptr),
                 targets[0], row_regs.user),
            Side(Csr(matrix.t_indptr, matrix.t_indices, t_conf), kernels.heavy_first(matrix.t_indptr),
                 targets[1], row_regs.item),
        )
        w0 = float(self.params["unobserved_weight"])
        unrated = matrix.n_users * matrix.n_items - matrix.nnz
        self._total_weight = float(np.sum(conf, dtype=np.float64)) + w0 * unrated
        self._user_loss = np.zeros(matrix.n_users)
        self._item_loss = np.zeros(matrix.n_items)
        self._item_gram = None      # Y^T Y after the last epoch, for the next user step

    def _half_step(self, side: Side, reg: float, this, other, gram, losses) -> None:
        """Update ``this`` (the factors of ``side``, regularized by ``reg``) with ``other``
        and its Gram matrix fixed."""
        G = gram.astype(np.float32)
        params = WeightedRidge(reg, float(self.params["unobserved_weight"]), int(self.params["cg_steps"]))
        solve = kernels.implicit_half_cg if self.params["solver"] == "cg" else kernels.implicit_half_cholesky
        solve(side.rows, side.targets, this, other, G, params, side.order, numba.get_num_threads(), losses,
              side.row_regs)

    def user_step(self, item_gram: np.ndarray | None = None) -> None:
        """Update every user's factors with the item factors fixed (``item_gram``:
        their Gram matrix, when already known)."""
        gram = item_gram if item_gram is not None else kernels.gram(self.item_factors)
        self._half_step(self._sides.user, self.pair("regularization")[0], self.user_factors, self.item_factors,
                        gram, self._user_loss)

    def item_step(self, user_gram: np.ndarray | None = None) -> None:
        """Update every item's factors with the user factors fixed (``user_gram`` as above)."""
        gram = user_gram if user_gram is not None else kernels.gram(self.user_factors)
        self._half_step(self._sides.item, self.pair("regularization")[1], self.item_factors, self.user_factors,
                        gram, self._item_loss)

    def _penalty(self, user_gram: np.ndarray, item_gram: np.ndarray) -> float:
        """The regularization term of the objective, both sides, with each row's regularization."""
        reg_user, reg_item = self.pair("regularization")
        return (kernels.implicit_penalty(self.user_factors, user_gram, reg_user, self._sides.user.row_regs)
                + kernels.implicit_penalty(self.item_factors, item_gram, reg_item, self._sides.item.row_regs))

    def objective(self) -> float:
        """``implicit``'s normalized weighted loss (see the module docstring)."""
        w0 = float(self.params["unobserved_weight"])
        observed = kernels.implicit_row_losses(self._sides.user.rows, self._sides.user.targets, self.user_factors,
                                               self.item_factors, w0)
        user_gram, item_gram = kernels.gram(self.user_factors), kernels.gram(self.item_factors)
        return kernels.implicit_loss(observed, user_gram, item_gram, self._penalty(user_gram, item_gram),
                                     w0, self._total_weight)

    def _epoch(self, epoch: int) -> float:
        self.user_step(self._item_gram)
        user_gram = kernels.gram(self.user_factors)
        self.item_step(user_gram)
        # the item step left the rated pairs' losses; the Gram matrices give the rest
        self._item_gram = kernels.gram(self.item_factors)
        terms = (self._item_loss, user_gram, self._item_gram, self._penalty(user_gram, self._item_gram),
                 float(self.params["unobserved_weight"]), self._total_weight)
        data, l2 = kernels.implicit_loss_parts(*terms)
        self.loss_parts = {"data": data, "l2": l2}
        return kernels.implicit_loss(*terms)
