"""Pruning across trials: stop a trial that is worse than the earlier rounds at the same epoch.

A trial's value at epoch e is its best validation value up to e (the value it would
keep if stopped there). The reference at epoch e on a fold is the median, or a
percentile, of the same quantity over the usable trials of the finished rounds on
that fold; a trial that stopped before e counts with its final best. A trial of the
next round is pruned at the first epoch e >= ``min_epochs`` where it is strictly
worse than the reference. As in Optuna's PercentilePruner, ``percentile: 25`` keeps
the trials within the best 25 % (for a higher-is-better metric, the reference is the
75th percentile of the values). Only finished rounds are compared, so the decision
never depends on timing. A pruned trial keeps its best epoch: it is ranked like any
other trial.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from mfsweep.trials import lower_is_better

METHODS = ("none", "median", "percentile")


def reference_percentile(method: str, percentile: float) -> float:
    """The percentile of the reference: 50 for ``median``."""
    if method == "median":
        return 50.0
    if method == "percentile":
        if not 0 < percentile < 100:
            raise ValueError(f"pruning.percentile: must be between 0 and 100 (exclusive), got {percentile}")
        return float(percentile)
    raise ValueError(f"pruning.method: {method!r} has no reference; allowed: {', '.join(METHODS)}")


def prune_reference(histories: pd.DataFrame, metric: str, method: str, percentile: float = 25.0,
                    min_epochs: int = 1, max_epochs: int | None = None) -> dict[int, dict[int, float]]:
    """Per fold, per epoch from ``min_epochs``: the value a trial must not be worse than.

    ``histories`` holds one row an epoch of the earlier rounds' usable trials
    (columns ``trial``, ``fold``, ``epoch`` and ``metric``). Epochs run to
    ``max_epochs`` (default: the longest history).
    """
    if method == "none" or histories.empty or metric not in histories:
        return {}
    q = reference_percentile(method, percentile)
    q = q if lower_is_better(metric) else 100.0 - q
    frame = histories.dropna(subset=[metric])
    last = int(max_epochs if max_epochs is not None else frame["epoch"].max())
    epochs = np.arange(1, last + 1)
    out: dict[int, dict[int, float]] = {}
    for fold, rows in frame.groupby("fold", sort=True):
        best = rows.pivot_table(index="epoch", columns="trial", values=metric, aggfunc="first")
        best = best.reindex(epochs)
        best = (best.cummin() if lower_is_better(metric) else best.cummax()).ffill()
        thresholds = np.nanpercentile(best.to_numpy(dtype=float), q, axis=1) if best.shape[1] else []
        out[int(fold)] = {int(e): float(t) for e, t in zip(epochs, thresholds) if e >= min_epochs and math.isfinite(t)}
    return out


class Pruner:
    """The pruning decision of one trial on one fold, from the thresholds of its fold."""

    def __init__(self, metric: str, thresholds: Mapping[int, float]):
        self.metric = metric
        self.thresholds = {int(epoch): float(value) for epoch, value in thresholds.items()}
        self.best = math.nan

    def prune(self, epoch: int, value: float) -> bool:
        """Record the value of ``epoch``; True when the best so far is worse than the reference."""
        if math.isfinite(value) and (math.isnan(self.best) or self._worse(self.best, value)):
            self.best = value
        threshold = self.thresholds.get(epoch)
        return threshold is not None and math.isfinite(self.best) and self._worse(self.best, threshold)

    def _worse(self, value: float, than: float) -> bool:
        return value > than if lower_is_better(self.metric) else value < than
