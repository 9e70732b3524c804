"""The SGD family: ``sgd``, ``sgd-biased``, ``sgd-gramian`` (per-rating SGD) and ``adam`` (minibatch AdamW).

Every kind shuffles the training ratings at the start of each epoch (a Fisher-Yates shuffle
in numba seeded from the model's generator, so the seed fixes every epoch's order) and runs
one numba kernel over them (``mfsweep.kernels.sgd``). Factors are float32, drawn from
normal(0, ``init_std``) (users first, then items); biases start at 0. The kernels work on
copies of the factors padded with zero columns (``PAD``); ``user_factors`` and
``item_factors`` are refreshed from them after every epoch.

Continuation (``MFModel.training_state``): the generator's bit_generator state (``rng``),
the epochs' shuffle seeds (``shuffle_seeds``: the shuffle works in place on the order the
last epoch left, so a resumed run replays those shuffles on the training order rather than
storing it) and the last loss (``loss``); ``sgd-gramian`` adds its step count, ``adam`` its
step count and moments.

Threads: by default the pass is sequential, so a seed gives bit-for-bit the same model
whatever numba's thread count. ``hogwild: true`` runs chunks of the shuffled ratings in
parallel without locks when numba has more than one thread; that is faster and
non-deterministic (updates may race). ``adam`` has no Hogwild mode: its per-row AdamW step
runs in parallel and stays deterministic.

Training loss (what ``_epoch`` returns): the full objective at the end of the epoch, as a
mean over the N training ratings, the objective whose per-rating gradient the kernels follow.
For the per-rating SGD kinds, with e_ui = r_ui - rhat_ui,

    F = 1/N sum_(u,i) [ e_ui^2 / 2 + reg.user |p_u|^2 / 2 + reg.item |q_i|^2 / 2
                        + reg_bias.user b_u^2 / 2 + reg_bias.item b_i^2 / 2 ]   (+ gravity G)

so one step on rating (u, i) moves every parameter by -learning_rate times the gradient of
the bracket (Surprise's update, whose factor 2 is folded into the learning rate). A learning
rate that diverges gives a non-finite loss; the model then stops updating (the epoch loop
marks the trial ``diverged``).
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

import numba
import numpy as np

from mfsweep.kernels import sgd as kernels
from mfsweep.kernels.contexts import Model, Triples, UserItem
from mfsweep.kernels.sgd import AdamState, AdamW, Gravity, Moments, Rates, Schedule
from mfsweep.matrix import RatingMatrix
from mfsweep.models.base import MFModel, ParameterError, saved_array, user_item_pair

#: The kernels work on factor rows padded with zero columns to a multiple of this width:
#: LLVM's vector loops then run without scalar tails, which makes a pass up to 1.3x faster
#: (e.g. 100 -> 128). The padding stays exactly 0 under every update.
PAD = 32

#: Below this many ratings the loss is summed on one thread: starting a parallel region
#: costs more than the sum (a lot more when the cores are shared with other jobs).
PARALLEL_LOSS_RATINGS = 200_000


def padded_factors(factors: np.ndarray) -> np.ndarray:
    """factors (n, k) copied into zeros (n, ceil(k / PAD) * PAD), 64-byte aligned rows."""
    n, k = factors.shape
    width = -(-k // PAD) * PAD
    buffer = np.zeros(n * width + 16, np.float32)
    offset = (-buffer.ctypes.data % 64) // 4
    out = buffer[offset:offset + n * width].reshape(n, width)
    out[:, :k] = factors
    return out


class _SGDFamily(MFModel):
    """What the four kinds share: parameters, padded factors, shuffled ratings, objective, divergence."""

    non_negative: ClassVar[tuple[str, ...]] = ("regularization", "init_std")
    positive: ClassVar[tuple[str, ...]] = ("learning_rate",)

    # ----- parameters -------------------------------------------------------------
    def _check_params(self) -> None:
        super()._check_params()
        for name in ("learning_rate", "init_std"):
            self._number(name)
        if "hogwild" in self.params and not isinstance(self.params["hogwild"], (bool, np.bool_)):
            raise ParameterError(f"{self.kind}: hogwild must be true or false, got {self.params['hogwild']!r}")

    def _number(self, name: str, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
        """A scalar parameter as float, with its range checked; the error names it."""
        value = self.params[name]
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ParameterError(f"{self.kind}: {name} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ParameterError(f"{self.kind}: {name} must be finite, got {value!r}")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            left = "(" if low_open else "["
            right = ")" if high_open else "]"
            span = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
            raise ParameterError(f"{self.kind}: {name} must be in {span}, got {value!r}")
        return value

    # ----- training -----------------------------------------------------------------
    def _setup(self, matrix: RatingMatrix, rng: np.random.Generator) -> None:
        users, items, ratings = matrix.coo()
        self._users = np.ascontiguousarray(users, dtype=np.int32)
        self._items = np.ascontiguousarray(items, dtype=np.int32)
        self._ratings = np.ascontiguousarray(ratings, dtype=np.float32)
        self._user_counts = matrix.user_counts().astype(np.float64)
        self._item_counts = matrix.item_counts().astype(np.float64)
        self._rng = rng
        self._shuffle_seeds: list[int] = []
        self._loss = 0.0
        self._zero_biases = None
        k = self.embedding_size
        std = np.float32(self.params["init_std"])
        self._P = padded_factors(rng.standard_normal((matrix.n_users, k), dtype=np.float32) * std)
        self._Q = padded_factors(rng.standard_normal((matrix.n_items, k), dtype=np.float32) * std)
        self._publish()
        # the triples in training order, shuffled in place before each epoch
        self._shuffled = Triples(self._users.copy(), self._items.copy(), self._ratings.copy())
        mean = float(self._ratings.mean(dtype=np.float64)) if len(self._ratings) else 0.0
        self.global_bias = mean if self.biased else 0.0
        self.user_bias = np.zeros(matrix.n_users, np.float32) if self.biased else None
        self.item_bias = np.zeros(matrix.n_items, np.float32) if self.biased else None

    def _epoch(self, epoch: int) -> float:
        if not math.isfinite(self._loss):
            return self._loss
        self._shuffle_seeds.append(int(self._rng.integers(2**63)))
        kernels.shuffle(self._shuffled, self._shuffle_seeds[-1])
        self._pass(self._shuffled)
        self._publish()
        self._loss = self._objective()
        return self._loss

    def _optimizer_state(self) -> dict[str, np.ndarray]:
        return {"rng": np.str_(json.dumps(self._rng.bit_generator.state)),
                "shuffle_seeds": np.array(self._shuffle_seeds, np.int64), "loss": np.float64(self._loss)}

    def _restore(self, saved) -> None:
        super()._restore(saved)
        k = self.embedding_size
        self._P[:, :k] = self.user_factors
        self._Q[:, :k] = self.item_factors
        self._rng.bit_generator.state = json.loads(str(saved_array(saved, "rng")))
        self._loss = float(saved_array(saved, "loss"))
        self._shuffle_seeds = [int(seed) for seed in saved_array(saved, "shuffle_seeds")]
        for seed in self._shuffle_seeds:
            kernels.shuffle(self._shuffled, seed)

    def _publish(self) -> None:
        """Copy the working factors (padded) to user_factors / item_factors (n, k)."""
        k = self.embedding_size
        self.user_factors = np.ascontiguousarray(self._P[:, :k])
        self.item_factors = np.ascontiguousarray(self._Q[:, :k])

    def _parallel(self) -> bool:
        return bool(self.params.get("hogwild", False)) and numba.get_num_threads() > 1

    def _bias_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The bias arrays the kernels read (zeros for unbiased kinds)."""
        if self.biased:
            return self.user_bias, self.item_bias
        if self._zero_biases is None:
            self._zero_biases = (np.zeros(len(self._P), np.float32), np.zeros(len(self._Q), np.float32))
        return self._zero_biases

    def _model(self) -> Model:
        """The kernels' ``Model``: the global mean (float32), the working factors and the biases."""
        return Model(np.float32(self.global_bias), self._P, self._Q, *self._bias_arrays())

    def _squared_error(self) -> float:
        parallel = numba.get_num_threads() > 1 and len(self._ratings) >= PARALLEL_LOSS_RATINGS
        kernel = kernels.squared_error if parallel else kernels.squared_error_serial
        return kernel(Triples(self._users, self._items, self._ratings), self._model(), self.biased)

    def _l2(self, reg: tuple[float, float], users: np.ndarray, items: np.ndarray) -> float:
        """reg.user sum_u n_u |users[u]|^2 + reg.item sum_i n_i |items[i]|^2 (each rating counts its rows)."""
        return (reg[0] * kernels.weighted_squares(users, self._user_counts)
                + reg[1] * kernels.weighted_squares(items, self._item_counts))


class SGD(_SGDFamily):
    """``sgd``: FunkSVD-style SGD on p_u . q_i (Surprise's SVD with biased=False).

    Per rating: e = r - p_u.q_i; p_u += lr (e q_i - reg.user p_u); q_i += lr (e p_u - reg.item q_i),
    both from the old values. Defaults are Surprise's.
    """

    kind = "sgd"
    defaults: ClassVar[dict[str, Any]] = {
        "embedding_size": 100, "epochs": 20, "learning_rate": 0.005, "regularization": 0.02, "init_std": 0.1,
        "hogwild": False,
    }

    def _rates(self) -> tuple[float, float, tuple[float, float]]:
        """(factor learning rate, bias learning rate, bias regularization (user, item))."""
        lr = float(self.params["learning_rate"])
        return lr, lr, (0.0, 0.0)

    def _pass(self, triples: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        lr, lr_bias, reg_bias = self._rates()
        reg = self.pair("regularization")
        rates = Rates(*(np.float32(x) for x in (lr, lr_bias, reg[0], reg[1], reg_bias[0], reg_bias[1])))
        if self._parallel():
            kernels.sgd_epoch_hogwild(triples, self._model(), rates, self.biased, numba.get_num_threads())
        else:
            kernels.sgd_epoch(triples, self._model(), rates, self.biased)

    def _objective(self) -> float:
        data = 0.5 * self._squared_error()
        l2 = 0.5 * self._l2(self.pair("regularization"), self._P, self._Q)
        total = data + l2
        if self.biased:
            bias_l2 = 0.5 * self._l2(self._rates()[2], self.user_bias, self.item_bias)
            total += bias_l2
            l2 += bias_l2
        n = max(len(self._ratings), 1)
        self.loss_parts = {"data": data / n, "l2": l2 / n}
        return total / n


class BiasedSGD(SGD):
    """``sgd-biased``: mu + b_u + b_i + p_u . q_i, the update of scikit-surprise 1.1.5's SVD.

    mu is the training mean (fixed); per rating, with e computed once from the old values:
    b_u += lr_b (e - reg_b.user b_u); b_i += lr_b (e - reg_b.item b_i); then the factors as in
    ``sgd``. ``learning_rate_bias`` (lr_b) and ``regularization_bias`` (reg_b, scalar or
    {user, item}) default to ``learning_rate`` and ``regularization`` when None (Surprise's
    lr_all / reg_all). Unlike Surprise, which walks the ratings in the same order every
    epoch, the ratings are shuffled each epoch.
    """

    kind = "sgd-biased"
    biased = True
    defaults: ClassVar[dict[str, Any]] = {
        **SGD.defaults,
        "learning_rate_bias": None,
        "regularization_bias": None,
    }

    def _check_params(self) -> None:
        super()._check_params()
        if self.params["learning_rate_bias"] is not None:
            self._number("learning_rate_bias", low=0.0, low_open=True)
        if self.params["regularization_bias"] is not None:
            if min(user_item_pair("regularization_bias", self.params["regularization_bias"])) < 0:
                raise ParameterError(
                    f"{self.kind}: regularization_bias must be >= 0, got {self.params['regularization_bias']!r}")

    def _rates(self) -> tuple[float, float, tuple[float, float]]:
        lr = float(self.params["learning_rate"])
        lr_bias = self.params["learning_rate_bias"]
        reg_bias = self.params["regularization_bias"]
        return (
            lr,
            lr if lr_bias is None else float(lr_bias),
            self.pair("regularization") if reg_bias is None else self.pair("regularization_bias"),
        )


class _Stepped(_SGDFamily):
    """The kinds that count their steps from the start of training (``_step``), a count the
    next epochs read (learning-rate schedule, bias correction)."""

    def _optimizer_state(self) -> dict[str, np.ndarray]:
        return {**super()._optimizer_state(), "step": np.int64(self._step)}

    def _restore(self, saved) -> None:
        super()._restore(saved)
        self._step = int(saved_array(saved, "step"))


class GramianSGD(_Stepped):
    """``sgd-gramian``: per-rating SGD on p_u . q_i with L2 and the Gramian (gravity) regularizer.

    Objective: F (module docstring, no biases) + gravity * G with
    G = sum_ab (U^T U / n_users)_ab (V^T V / n_items)_ab = mean over all user x item pairs of
    (p_u . q_i)^2, which pulls the scores of unrated pairs towards 0.

    The gradient of G with respect to p_u is 2 (V^T V / n_items) p_u / n_users. Each of the
    c_u ratings of user u applies the share N / c_u of that gradient (and likewise for items),
    so over an epoch the steps add up to -learning_rate * N * grad F, as for the data term.

    The ratings run in batches of ``batch_size``; a batch is one step. Before each batch both
    Gramians are recomputed from the current factors (cost (n_users + n_items) k^2) and the
    learning rate is set to learning_rate * (1 - decay_pct) ** (step // period), counting
    steps from the start of training. Within a batch the Gramians are held fixed: that is
    the approximation (exact for batch_size 1, cheaper as it grows). Users and items with
    no training rating receive no gradient.
    """

    kind = "sgd-gramian"
    defaults: ClassVar[dict[str, Any]] = {
        "embedding_size": 64, "epochs": 30, "learning_rate": 0.02, "regularization": 0.1, "init_std": 0.1,
        "gravity": 0.005, "decay_pct": 0.05, "period": 8, "batch_size": 10000, "hogwild": False,
    }
    non_negative = ("regularization", "init_std", "gravity")

    def _check_params(self) -> None:
        super()._check_params()
        self._number("gravity", low=0.0)
        self._number("decay_pct", low=0.0, high=1.0, high_open=True)
        self._integer("period", 1)
        self._integer("batch_size", 1)

    def _setup(self, matrix: RatingMatrix, rng: np.random.Generator) -> None:
        super()._setup(matrix, rng)
        k = self._P.shape[1]
        self._gu = np.zeros((k, k), np.float32)
        self._gv = np.zeros((k, k), np.float32)
        self._step = 0
        n = len(self._ratings)
        gravity = float(self.params["gravity"])
        self._wu = _gravity_weights(gravity, n, self._user_counts)
        self._wi = _gravity_weights(gravity, n, self._item_counts)

    def _pass(self, triples: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        reg = UserItem(*(np.float32(x) for x in self.pair("regularization")))
        p = self.params
        schedule = Schedule(float(p["learning_rate"]), float(p["decay_pct"]), int(p["period"]), int(p["batch_size"]))
        self._step = kernels.gramian_epoch(
            triples, UserItem(self._P, self._Q), Gravity(self._gu, self._gv, self._wu, self._wi), schedule, reg,
            self._step, self._parallel(), numba.get_num_threads(),
        )

    def _objective(self) -> float:
        n = max(len(self._ratings), 1)
        data = 0.5 * self._squared_error()
        l2 = 0.5 * self._l2(self.pair("regularization"), self._P, self._Q)
        gravity = float(self.params["gravity"])
        g = kernels.gravity_term(self._P, self._Q) if gravity else 0.0
        self.loss_parts = {"data": data / n, "l2": l2 / n, "gramian": gravity * g}
        return (data + l2) / n + gravity * g


def _gravity_weights(gravity: float, n_ratings: int, counts: np.ndarray) -> np.ndarray:
    """gravity * 2 N / (n_rows c_r): the factor of the Gramian gradient each rating of row r applies."""
    weights = np.zeros(len(counts), np.float64)
    rated = counts > 0
    weights[rated] = gravity * 2.0 * n_ratings / (len(counts) * counts[rated])
    return weights.astype(np.float32)


class Adam(_Stepped):
    """``adam``: minibatch AdamW on the biased model mu + b_u + b_i + p_u . q_i.

    Options (defaults keep the model described here): ``decoupled: false`` runs PyTorch's
    Adam instead of AdamW (weight_decay * parameter added to the gradient, no decoupled
    shrinking); ``biased: false`` drops mu, b_u and b_i (the plain model p_u . q_i).

    mu is the training mean (fixed); b_u, b_i, p_u, q_i are learned. Each minibatch of
    ``batch_size`` shuffled ratings (the last one may be smaller) is one step of PyTorch's
    AdamW (betas ``beta1``, ``beta2``, ``eps``, decoupled ``weight_decay`` on every parameter,
    bias correction) on the loss
        mean over the batch of (r - rhat)^2 + reg.user |p_u|^2 + reg.item |q_i|^2,
    and, like torch.optim.AdamW on dense embeddings, every row is updated each step (rows
    outside the batch have gradient 0 but moving moments and weight decay). Training loss:
    that loss as a mean over all training ratings (weight decay, being decoupled, is no
    term of it).
    """

    kind = "adam"
    defaults: ClassVar[dict[str, Any]] = {
        "embedding_size": 64, "epochs": 20, "learning_rate": 0.005, "regularization": 0.1, "init_std": 0.1,
        "batch_size": 1024, "weight_decay": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
        "decoupled": True, "biased": True,
    }
    non_negative = ("regularization", "init_std", "weight_decay")

    @property
    def biased(self) -> bool:  # type: ignore[override]
        return bool(self.params["biased"])

    def _check_params(self) -> None:
        for name in ("decoupled", "biased"):
            if not isinstance(self.params[name], (bool, np.bool_)):
                raise ParameterError(f"{self.kind}: {name} must be true or false, got {self.params[name]!r}")
        super()._check_params()
        self._integer("batch_size", 1)
        self._number("weight_decay", low=0.0)
        self._number("beta1", low=0.0, high=1.0, high_open=True)
        self._number("beta2", low=0.0, high=1.0, high_open=True)
        self._number("eps", low=0.0, low_open=True)

    def _setup(self, matrix: RatingMatrix, rng: np.random.Generator) -> None:
        super()._setup(matrix, rng)
        # per parameter (P, Q, bu, bi): gradient, first and second moments
        self._state = AdamState(*(Moments(*(np.zeros_like(a) for _ in range(3)))
                                  for a in (self._P, self._Q, *self._bias_arrays())))
        self._step = 0

    def _pass(self, triples: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        p = self.params
        optimizer = AdamW(*(float(p[name]) for name in ("learning_rate", "beta1", "beta2", "eps", "weight_decay")),
                          bool(p["decoupled"]))
        reg = UserItem(*(np.float32(x) for x in self.pair("regularization")))
        self._step = kernels.adam_epoch(
            triples, self._model(), self._state, optimizer, reg, int(p["batch_size"]), self._step, self.biased,
        )

    def _objective(self) -> float:
        data = self._squared_error()
        l2 = self._l2(self.pair("regularization"), self._P, self._Q)
        n = max(len(self._ratings), 1)
        self.loss_parts = {"data": data / n, "l2": l2 / n}
        return (data + l2) / n

    def _optimizer_state(self) -> dict[str, np.ndarray]:
        k = self.embedding_size
        return {**super()._optimizer_state(),
                **{f"moments/{name}/{moment}": np.copy(_unpadded(array, k))
                   for name, moments in zip(ADAM_PARAMETERS, self._state)
                   for moment, array in zip(("m", "v"), moments[1:])}}

    def _restore(self, saved) -> None:
        super()._restore(saved)
        k = self.embedding_size
        for name, moments in zip(ADAM_PARAMETERS, self._state):
            for moment, array in zip(("m", "v"), moments[1:]):
                _unpadded(array, k)[...] = saved_array(saved, f"moments/{name}/{moment}")


#: The parameters of ``adam`` in the order of its ``AdamState``, by their names in ``MFModel.state``.
ADAM_PARAMETERS = ("user_factors", "item_factors", "user_bias", "item_bias")


def _unpadded(array: np.ndarray, k: int) -> np.ndarray:
    """The first k columns of a padded (2-D) array; a 1-D array as it is."""
    return array[:, :k] if array.ndim == 2 else array
