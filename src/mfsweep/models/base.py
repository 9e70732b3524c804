"""What every matrix-factorization model shares: parameters, state, scoring, files.

A model predicts ``global_bias + user_bias[u] + item_bias[i] + user_factors[u] . item_factors[i]``
(biases are zero for the unbiased kinds). Subclasses implement ``_setup`` (allocate
state for a training matrix) and ``_epoch`` (one pass, returning the training loss).

Continuation: ``training_state`` is everything that decides the next epochs (the model's
``state``, the epochs done as ``epoch``, and what a kind adds in ``_optimizer_state``:
moments, step counters, random streams); ``fit_epochs(..., resume=that)`` sets up on the
training matrix as a fresh run does, then restores it (``_restore``) instead of starting
from the initial factors, and runs the epochs after it. No parameter depends on the total
``epochs``, so the model is built with the new total and a continued run equals, bit for
bit, one trained straight to that total.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import numpy as np

from mfsweep.io import reading, write_npz
from mfsweep.matrix import RatingMatrix, as_matrix
from mfsweep.models.kinds import ParameterError, create
from mfsweep.values import plain

COMMON_DEFAULTS: dict[str, Any] = {
    "embedding_size": 32,
    "regularization": 0.1,
    "epochs": 10,
    "seed": 42,
}


@dataclass(frozen=True)
class EpochState:
    """What ``fit_epochs`` yields after each epoch."""

    epoch: int          # 1-based number of the epoch just completed
    loss: float         # training objective after the epoch
    model: "MFModel"
    parts: dict = field(default_factory=dict)   # the loss's parts by name (``MFModel.loss_parts``)


def user_item_pair(name: str, value) -> tuple[float, float]:
    """A scalar for both sides or ``{user: .., item: ..}``, as (user, item) floats."""
    if isinstance(value, dict):
        unknown = set(value) - {"user", "item"}
        if unknown or len(value) != 2:
            raise ParameterError(f"{name}: expected a number or {{user: .., item: ..}}, got {value!r}")
        pair = (value["user"], value["item"])
    else:
        pair = (value, value)
    for v in pair:
        if isinstance(v, str):
            raise ParameterError(f"{name}: expected a number, got the text {value!r} (write numbers unquoted)")
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
            raise ParameterError(f"{name}: expected numbers, got {value!r}")
        if not np.isfinite(v):
            raise ParameterError(f"{name}: expected a finite number, got {value!r}")
    return float(pair[0]), float(pair[1])


def whole_float(value) -> bool:
    """Whether ``value`` is a float with a whole value (``64.0``): an integer written as a float."""
    return isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer()


class MFModel(ABC):
    """Base class of every model kind (see ``mfsweep.models.create``)."""

    kind: ClassVar[str] = ""
    #: Parameters of this kind beyond COMMON_DEFAULTS, with their defaults.
    defaults: ClassVar[dict[str, Any]] = {}
    #: Parameters that must be >= 0 (scalars or user/item pairs).
    non_negative: ClassVar[tuple[str, ...]] = ("regularization",)
    #: Parameters that must be > 0.
    positive: ClassVar[tuple[str, ...]] = ()
    #: Whether the model has mu + b_u + b_i (what it scores an unknown user or item by).
    biased: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        allowed = {**COMMON_DEFAULTS, **self.defaults}
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ParameterError(
                f"{self.kind}: unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
            )
        self.params: dict[str, Any] = {**allowed, **params}
        self._check_params()
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None
        self.user_bias: np.ndarray | None = None
        self.item_bias: np.ndarray | None = None
        self.global_bias: float = 0.0
        #: The parts of the last epoch's training loss on its scale, which add up to it:
        #: ``data`` (the error term), ``l2`` (the penalty) and, where the model has one,
        #: ``gramian``; set by ``_epoch``.
        self.loss_parts: dict[str, float] = {}
        #: Epochs run since ``fit_epochs`` started (counting those of a resumed state); None before.
        self._epochs_done: int | None = None

    # ----- parameters -------------------------------------------------------------
    def _check_params(self) -> None:
        p = self.params
        self._integer("embedding_size", 1)
        self._integer("epochs", 1)
        self._integer("seed", 0)
        for name in self.non_negative:
            if min(user_item_pair(name, p[name])) < 0:
                raise ParameterError(f"{self.kind}: {name} must be >= 0, got {p[name]!r}")
        for name in self.positive:
            if min(user_item_pair(name, p[name])) <= 0:
                raise ParameterError(f"{self.kind}: {name} must be > 0, got {p[name]!r}")

    def _integer(self, name: str, low: int) -> int:
        """An integer parameter, checked to be >= ``low``; a float is refused, even a whole one."""
        value = self.params[name]
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
            hint = f" (write {int(value)})" if whole_float(value) and value >= low else ""
            raise ParameterError(f"{self.kind}: {name} must be an integer >= {low}, got {value!r}{hint}")
        return int(value)

    @property
    def embedding_size(self) -> int:
        return int(self.params["embedding_size"])

    def pair(self, name: str) -> tuple[float, float]:
        """A user/item parameter as (user, item)."""
        return user_item_pair(name, self.params[name])

    # ----- training -----------------------------------------------------------------
    @abstractmethod
    def _setup(self, matrix: RatingMatrix, rng: np.random.Generator) -> None:
        """Allocate and initialize the state for training on ``matrix``."""

    @abstractmethod
    def _epoch(self, epoch: int) -> float:
        """Run one epoch; return the training loss."""

    def fit_epochs(self, train, n_users: int | None = None, n_items: int | None = None,
                   resume: dict | None = None) -> Iterator[EpochState]:
        """Train one epoch at a time, yielding after each; ``fit`` runs this to the end.

        ``resume`` (a ``training_state``, also as read back from an npz file) continues that
        training: epochs ``resume["epoch"] + 1`` to ``epochs``, as a run trained straight through.
        """
        matrix = as_matrix(train, n_users, n_items)
        self._setup(matrix, np.random.default_rng(self.params["seed"]))
        self._epochs_done = 0
        if resume is not None:
            self._resume(resume)
        for epoch in range(self._epochs_done + 1, int(self.params["epochs"]) + 1):
            loss = float(self._epoch(epoch))
            self._epochs_done = epoch
            yield EpochState(epoch, loss, self, dict(self.loss_parts))

    def fit(self, train, n_users: int | None = None, n_items: int | None = None) -> "MFModel":
        for _ in self.fit_epochs(train, n_users, n_items):
            pass
        return self

    # ----- continuation ---------------------------------------------------------------
    def training_state(self) -> dict[str, np.ndarray]:
        """What continuing this training needs: ``state``, the epochs done (``epoch``) and the
        kind's optimizer state and random streams; numpy arrays and scalars only (npz-safe)."""
        if self._epochs_done is None:
            raise ValueError(f"{self.kind}: training_state of a model that fit_epochs has not set up; "
                             "train it first")
        return {**self.state(), "epoch": np.int64(self._epochs_done), **self._optimizer_state()}

    def _optimizer_state(self) -> dict[str, np.ndarray]:
        """The kind's state beyond factors and biases that the next epochs read (none here)."""
        return {}

    def _resume(self, saved) -> None:
        """Check that ``saved`` is a training state of this kind and parameters, then restore it."""
        kind, params = str(saved_array(saved, "kind")), json.loads(str(saved_array(saved, "params")))
        mine = json.loads(str(self.params_text()))
        if kind != self.kind or _but_epochs(params) != _but_epochs(mine):
            raise ValueError(f"resume: the training state is of {kind} with {_but_epochs(params)}, the model is "
                             f"{self.kind} with {_but_epochs(mine)}; continue with the same kind and parameters "
                             "(only epochs may differ)")
        done = int(saved_array(saved, "epoch"))
        if done > int(self.params["epochs"]):
            raise ValueError(f"resume: the training state has {done} epochs done, more than this model's "
                             f"epochs ({self.params['epochs']}); build the model with epochs >= {done}")
        self._restore(saved)
        self._epochs_done = done

    def _restore(self, saved) -> None:
        """Set factors and biases (those the kind has) from ``saved``, after ``_setup``."""
        self.user_factors = saved_array(saved, "user_factors", copy=True)
        self.item_factors = saved_array(saved, "item_factors", copy=True)
        if self.user_bias is not None:
            self.user_bias = saved_array(saved, "user_bias", copy=True)
        if self.item_bias is not None:
            self.item_bias = saved_array(saved, "item_bias", copy=True)
        self.global_bias = float(saved_array(saved, "global_bias"))

    # ----- scoring ------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return 0 if self.user_factors is None else self.user_factors.shape[0]

    @property
    def n_items(self) -> int:
        return 0 if self.item_factors is None else self.item_factors.shape[0]

    def biases(self) -> tuple[np.ndarray, np.ndarray]:
        """(user bias, item bias): zeros for a model without biases."""
        ub = self.user_bias if self.user_bias is not None else np.zeros(self.n_users, np.float32)
        ib = self.item_bias if self.item_bias is not None else np.zeros(self.n_items, np.float32)
        return ub, ib

    def predict(self, users, items) -> np.ndarray:
        """Predicted ratings for the (user, item) pairs, as float64."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        ub, ib = self.biases()
        dots = np.einsum(
            "ij,ij->i",
            self.user_factors[users].astype(np.float64),
            self.item_factors[items].astype(np.float64),
        )
        return self.global_bias + ub[users].astype(np.float64) + ib[items] + dots

    def recommend(self, users, n: int = 10, exclude=None) -> np.ndarray:
        """The top ``n`` items per user, best first, as a (len(users), n) int array.

        ``exclude`` (a frame or RatingMatrix, usually the training ratings) removes
        each user's rated items; slots with no candidate left hold -1.
        """
        from mfsweep.metrics import top_items

        exclude = None if exclude is None else as_matrix(exclude, self.n_users, self.n_items)
        return top_items(self, np.asarray(users, dtype=np.int64), n, exclude)

    # ----- files --------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        ub, ib = self.biases()
        return {
            "user_factors": self.user_factors,
            "item_factors": self.item_factors,
            "user_bias": ub,
            "item_bias": ib,
            "global_bias": np.float64(self.global_bias),
            "kind": np.str_(self.kind),
            "params": self.params_text(),
        }

    def params_text(self) -> np.str_:
        """The parameters as stored in a file: JSON, keys sorted."""
        return np.str_(json.dumps(self.params, sort_keys=True, default=_plain))

    def save(self, path) -> None:
        write_npz(path, **self.state())

    @staticmethod
    def load(path, prefix: str = "") -> "MFModel":
        """A model saved by ``save`` (or stored under ``prefix`` in a file of several)."""
        with reading(path, "a model archive"), np.load(path) as npz:
            model = create(str(npz[prefix + "kind"]), **json.loads(str(npz[prefix + "params"])))
            model.user_factors = npz[prefix + "user_factors"]
            model.item_factors = npz[prefix + "item_factors"]
            model.user_bias = npz[prefix + "user_bias"]
            model.item_bias = npz[prefix + "item_bias"]
            model.global_bias = float(npz[prefix + "global_bias"])
        return model


def saved_array(saved, name: str, copy: bool = False) -> np.ndarray:
    """``saved[name]`` of a training state as an array (a writable copy with ``copy``); a missing
    name is a ValueError naming it."""
    if name not in saved:
        raise ValueError(f"resume: the training state lacks {name!r}; pass what MFModel.training_state() "
                         "returned (as written to and read back from an npz file)")
    return np.array(saved[name]) if copy else np.asarray(saved[name])


def _but_epochs(params: dict) -> dict:
    return {name: value for name, value in params.items() if name != "epochs"}


def _plain(value):
    if isinstance(value, np.generic):
        return plain(value)
    raise TypeError(f"cannot store parameter of type {type(value).__name__}")
