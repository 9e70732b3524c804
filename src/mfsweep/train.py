"""The epoch loop shared by every model: validation after each epoch, history, early stopping."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

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


def _finite_state(model: MFModel, loss: float) -> bool:
    if not math.isfinite(loss):
        return False
    return bool(np.isfinite(model.user_factors).all() and np.isfinite(model.item_factors).all())


def _snapshot(model: MFModel) -> dict:
    return {name: np.copy(value) for name, value in model.state().items()}


def run_trial(
    model: MFModel,
    train,
    evaluate: Callable[[MFModel], dict] | None,
    stopping: Plateau,
    n_users: int | None = None,
    n_items: int | None = None,
    pruner=None,
) -> TrialResult:
    """Train ``model`` epoch by epoch, evaluating after each, until a stop.

    ``evaluate`` returns the validation metrics (None: stop on the training loss).
    The returned ``best_state`` holds the model as it was at the best epoch; a
    non-finite loss or factor ends the trial as ``diverged`` with that epoch
    left out of the history. A ``pruner`` (mfsweep.pruning.Pruner) sees each epoch's
    validation value and may end the trial as ``pruned``.
    """
    rows: list[dict] = []
    best_state, stop_reason = None, "max_epochs"
    train_seconds = cpu_seconds = 0.0
    epochs = model.fit_epochs(train, n_users, n_items)
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
        started = time.perf_counter()
        metrics = evaluate(model) if evaluate is not None else {}
        parts = {f"loss_{name}": value for name, value in state.parts.items()}
        row = {"epoch": state.epoch, "train_loss": state.loss, **parts, "seconds": wall, "cpu_seconds": cpu,
               "eval_seconds": time.perf_counter() - started, **metrics}
        rows.append(row)
        value = row.get(stopping.metric, state.loss) if evaluate is not None else state.loss
        if stopping.improved(state.epoch, value):
            best_state = _snapshot(model)
        log.info("epoch %d: loss %.6g, %s %.6g (best %.6g at epoch %d), %.3f s",
                 state.epoch, state.loss, stopping.metric, value, stopping.best, stopping.best_epoch, wall)
        if stopping.stalled(state.epoch):
            stop_reason = "plateau"
            break
        if pruner is not None and evaluate is not None and pruner.prune(state.epoch, value):
            log.info("epoch %d: worse than the earlier rounds' reference; trial pruned", state.epoch)
            stop_reason = "pruned"
            break
    columns = _history_columns(rows)
    history = pd.DataFrame(rows, columns=columns).astype({c: "int64" if c == "epoch" else "float64" for c in columns})
    best_row = next((r for r in rows if r["epoch"] == stopping.best_epoch), {})
    validation = {k: v for k, v in best_row.items() if k not in HISTORY_FIELDS}
    return TrialResult(history, stop_reason, len(rows), stopping.best_epoch, validation, best_state,
                       train_seconds, cpu_seconds)


#: The parts of ``train_loss`` (``MFModel.loss_parts``) as history columns; ``loss_gramian``
#: only for the models that have that term.
LOSS_PARTS = ("loss_data", "loss_l2", "loss_gramian")
HISTORY_FIELDS = ("epoch", "train_loss", *LOSS_PARTS, "seconds", "cpu_seconds", "eval_seconds")


def _history_columns(rows: list[dict]) -> list[str]:
    """The history's columns: the fields above (loss parts the model has), then the metrics."""
    first = rows[0] if rows else {}
    fields = [k for k in HISTORY_FIELDS if k not in LOSS_PARTS or k in first]
    return fields + [k for k in first if k not in HISTORY_FIELDS]
