"""The epoch loop shared by every model: validation after each epoch, history, early stopping.

A trial can stop and go on later, in another process: ``TrialResult.checkpoint`` is its state
after the last epoch run, ``Checkpoint.to_arrays`` / ``from_arrays`` carry it through an npz
file, and ``run_trial(..., resume=checkpoint)`` with the model built for a larger ``epochs``
continues it to the result of a trial run straight to that total (all but the timings).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from mfsweep.models.base import MFModel
from mfsweep.trials import lower_is_better

log = logging.getLogger("mfsweep.train")

@dataclass
class Plateau:
    """Stops when the metric has not improved by ``min_delta`` (relative) for ``patience`` epochs."""

    metric: str
    patience: int = 3
    min_delta: float = 0.001
    best: float = math.nan
    best_epoch: int = 0

    def improved(self, epoch: int, value: float) -> bool:
        """Record ``value`` for ``epoch``; True when it is the new best."""
        if math.isnan(self.best) or self._better(value):
            self.best, self.best_epoch = value, epoch
            return True
        return False

    def _better(self, value: float) -> bool:
        gain = self.best - value if lower_is_better(self.metric) else value - self.best
        return gain > self.min_delta * abs(self.best)

    def stalled(self, epoch: int) -> bool:
        return epoch - self.best_epoch >= self.patience


@dataclass
class TrialResult:
    """What run_trial returns for a trial it ran to a stop; an exception in the model propagates
    (the train job records it as a failed trial, mfsweep.records.TrialRecord.failed)."""

    history: pd.DataFrame
    stop_reason: str
    epochs_completed: int
    best_epoch: int
    validation: dict = field(default_factory=dict)
    best_state: dict | None = None
    train_seconds: float = 0.0
    cpu_seconds: float = 0.0
    checkpoint: "Checkpoint | None" = None    # the state after the last epoch; None when diverged


@dataclass
class Checkpoint:
    """What ``run_trial(..., resume=)`` goes on from: the trial after its last epoch (one that
    stopped on ``max_epochs`` or was ``pruned``; one that stopped on a plateau is finished).

    ``to_arrays`` flattens it for an npz file, history included (its column names under
    ``history/columns``, each column under ``history/column/{name}``); ``from_arrays``
    reads it back.
    """

    training: dict[str, np.ndarray]     # the model's training_state()
    best_state: dict | None             # as TrialResult.best_state
    plateau_best: float
    plateau_best_epoch: int
    history: pd.DataFrame               # the rows so far, as TrialResult.history
    train_seconds: float = 0.0
    cpu_seconds: float = 0.0
    stop_reason: str = "max_epochs"

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat, npz-safe arrays (no object arrays), keys ``training/..``, ``best/..``, ``history/..``."""
        columns = list(self.history.columns)
        return {
            **{f"training/{name}": value for name, value in self.training.items()},
            **{f"best/{name}": value for name, value in (self.best_state or {}).items()},
            "plateau/best": np.float64(self.plateau_best), "plateau/best_epoch": np.int64(self.plateau_best_epoch),
            "seconds/train": np.float64(self.train_seconds), "seconds/cpu": np.float64(self.cpu_seconds),
            "stop_reason": np.str_(self.stop_reason),
            "history/columns": np.array(columns, dtype=str),
            **{f"history/column/{name}": self.history[name].to_numpy() for name in columns},
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "") -> "Checkpoint":
        """The checkpoint ``to_arrays`` gave, from those arrays (e.g. an ``np.load``ed file), stored
        under ``prefix`` (``{trial}/`` in a file of several)."""
        def scalar(name: str):
            return arrays[prefix + name].item()

        best = _group(arrays, prefix + "best/")
        columns = [str(name) for name in arrays[prefix + "history/columns"]]
        history = pd.DataFrame({name: np.asarray(arrays[f"{prefix}history/column/{name}"]) for name in columns},
                               columns=columns)
        return cls(_group(arrays, prefix + "training/"), best or None, scalar("plateau/best"),
                   scalar("plateau/best_epoch"), history, scalar("seconds/train"), scalar("seconds/cpu"),
                   str(scalar("stop_reason")))


def _group(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays under ``prefix``, by their names after it."""
    return {key[len(prefix):]: np.asarray(arrays[key]) for key in arrays if key.startswith(prefix)}


def _finite_state(model: MFModel, loss: float) -> bool:
    if not math.isfinite(loss):
        return False
    return bool(np.isfinite(model.user_factors).all() and np.isfinite(model.item_factors).all())


def _copied(arrays: dict) -> dict:
    return {name: np.copy(value) for name, value in arrays.items()}


def _resumed(model: MFModel, stopping: Plateau, pruner, resume: "Checkpoint | None") -> tuple[list[dict], dict | None]:
    """The history rows and best state to go on from, with ``stopping`` set to the checkpoint's and
    ``pruner`` (or None) shown the earlier epochs (the best state's parameters become the model's:
    the new ``epochs``)."""
    if resume is None:
        return [], None
    if resume.stop_reason == "plateau":
        raise ValueError(f"resume: the checkpoint is of a trial that stopped on a plateau of {stopping.metric} at "
                         f"epoch {int(resume.training['epoch'])} (best at epoch {resume.plateau_best_epoch}); "
                         "it is finished and cannot be continued")
    stopping.best, stopping.best_epoch = resume.plateau_best, resume.plateau_best_epoch
    best = resume.best_state
    rows = resume.history.to_dict("records")
    for row in rows if pruner is not None else ():
        pruner.prune(row["epoch"], row.get(stopping.metric, row["train_loss"]))
    return rows, None if best is None else {**best, "params": model.params_text()}


def run_trial(
    model: MFModel,
    train,
    evaluate: Callable[[MFModel], dict] | None,
    stopping: Plateau,
    n_users: int | None = None,
    n_items: int | None = None,
    pruner=None,
    resume: "Checkpoint | None" = None,
) -> TrialResult:
    """Train ``model`` epoch by epoch, evaluating after each, until a stop.

    ``evaluate`` returns the validation metrics (None: stop on the training loss).
    The returned ``best_state`` holds the model as it was at the best epoch; a
    non-finite loss or factor ends the trial as ``diverged`` with that epoch
    left out of the history. A ``pruner`` (mfsweep.pruning.Pruner) sees each epoch's
    validation value and may end the trial as ``pruned``. ``resume`` (the ``checkpoint`` of an
    earlier result) goes on from it: its history, best state, stopping state and timings
    carried on, the earlier epochs' values shown to ``pruner``; a checkpoint of a trial that
    stopped on a plateau is refused (ValueError).
    """
    rows, best_state = _resumed(model, stopping, pruner if evaluate is not None else None, resume)
    stop_reason = "max_epochs"
    train_seconds, cpu_seconds = (0.0, 0.0) if resume is None else (resume.train_seconds, resume.cpu_seconds)
    epochs = model.fit_epochs(train, n_users, n_items, resume=None if resume is None else resume.training)
    while True:
        wall, cpu = time.perf_counter(), time.process_time()
        state = next(epochs, None)
        if state is None:
            break
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        train_seconds += wall
        cpu_seconds += cpu
        if not _finite_state(model, state.loss):
            log.warning("epoch %d: non-finite loss or factors (loss %s); trial diverged", state.epoch, state.loss)
            stop_reason = "diverged"
            break
        row = _row(state, wall, cpu, evaluate)
        rows.append(row)
        value = row.get(stopping.metric, state.loss) if evaluate is not None else state.loss
        if stopping.improved(state.epoch, value):
            best_state = _copied(model.state())
        log.info("epoch %d: loss %.6g, %s %.6g (best %.6g at epoch %d), %.3f s",
                 state.epoch, state.loss, stopping.metric, value, stopping.best, stopping.best_epoch, wall)
        if stopping.stalled(state.epoch):
            stop_reason = "plateau"
            break
        if pruner is not None and evaluate is not None and pruner.prune(state.epoch, value):
            log.info("epoch %d: worse than the earlier rounds' reference; trial pruned", state.epoch)
            stop_reason = "pruned"
            break
    return _result(model, rows, stopping, stop_reason, best_state, (train_seconds, cpu_seconds))


def _result(model: MFModel, rows: list[dict], stopping: Plateau, stop_reason: str, best_state: dict | None,
            seconds: tuple[float, float]) -> TrialResult:
    """The trial's result after its last epoch, with its checkpoint (none for a diverged trial)."""
    columns = _history_columns(rows)
    history = pd.DataFrame(rows, columns=columns).astype({c: "int64" if c == "epoch" else "float64" for c in columns})
    best_row = next((r for r in rows if r["epoch"] == stopping.best_epoch), {})
    validation = {k: v for k, v in best_row.items() if k not in HISTORY_FIELDS}
    checkpoint = None if stop_reason == "diverged" else Checkpoint(
        _copied(model.training_state()), best_state, stopping.best, stopping.best_epoch, history.copy(),
        *seconds, stop_reason)
    return TrialResult(history, stop_reason, len(rows), stopping.best_epoch, validation, best_state, *seconds,
                       checkpoint)


def _row(state, wall: float, cpu: float, evaluate) -> dict:
    """The history row of an epoch: losses, timings and the validation metrics (evaluated here)."""
    started = time.perf_counter()
    metrics = evaluate(state.model) if evaluate is not None else {}
    parts = {f"loss_{name}": value for name, value in state.parts.items()}
    return {"epoch": state.epoch, "train_loss": state.loss, **parts, "seconds": wall, "cpu_seconds": cpu,
            "eval_seconds": time.perf_counter() - started, **metrics}


#: The parts of ``train_loss`` (``MFModel.loss_parts``) as history columns; ``loss_gramian``
#: only for the models that have that term.
LOSS_PARTS = ("loss_data", "loss_l2", "loss_gramian")
HISTORY_FIELDS = ("epoch", "train_loss", *LOSS_PARTS, "seconds", "cpu_seconds", "eval_seconds")


def _history_columns(rows: list[dict]) -> list[str]:
    """The history's columns: the fields above (loss parts the model has), then the metrics."""
    first = rows[0] if rows else {}
    fields = [k for k in HISTORY_FIELDS if k not in LOSS_PARTS or k in first]
    return fields + [k for k in first if k not in HISTORY_FIELDS]
