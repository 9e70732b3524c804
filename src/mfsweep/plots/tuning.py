"""The figures a tuning researcher reads across a model's trials: parallel coordinates
(every trial across its tuned parameters to the metric) and parameter importance
(fANOVA with Spearman correlations)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from mfsweep.plots.style import (
    MARKS,
    add_legend,
    empty_panel,
    folds_text,
    metric_label,
    plural,
    save_svg,
    styled,
    suptitle,
)
from mfsweep.search import is_log_axis
from mfsweep.studies import ImportanceError, importance_table
from mfsweep.trials import (
    PARAM,
    best_trial,
    lower_is_better,
    trial_table,
    tuned_parameters,
    usable,
)
from mfsweep.values import number_text

UNUSABLE_Y = 1.1  # where diverged and failed trials end, above the metric axis (axis units 0..1)
TICKS = 5


@dataclass
class Scale:
    """One vertical axis of the parallel coordinates: values to positions in [0, 1] and back."""

    name: str
    kind: str  # "linear", "log" or "category"
    low: float = 0.0
    high: float = 1.0
    categories: list = field(default_factory=list)

    @classmethod
    def of(cls, name: str, values: pd.Series, space: Mapping | None = None) -> Scale:
        present = values.dropna()
        if not (pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)):
            return cls(name, "category", categories=sorted({str(v) for v in present}))
        numbers = present.astype(float)
        log = is_log_axis(name.removeprefix(PARAM), numbers.tolist(), space) and bool((numbers > 0).all())
        low, high = (float(numbers.min()), float(numbers.max())) if len(numbers) else (0.0, 1.0)
        return cls(name, "log" if log else "linear", low, high)

    def _forward(self, values: np.ndarray) -> np.ndarray:
        return np.log10(values) if self.kind == "log" else values

    def position(self, values) -> np.ndarray:
        """Positions in [0, 1] of ``values`` (NaN where missing); a single value sits at 0.5."""
        if self.kind == "category":
            spots = {c: i for i, c in enumerate(self.categories)}
            index = np.array([spots.get(str(v), np.nan) if pd.notna(v) else np.nan for v in values], float)
            return index / (len(self.categories) - 1) if len(self.categories) > 1 else index * 0 + 0.5
        values = np.asarray(values, float)
        low, high = self._forward(np.array([self.low, self.high]))
        if high == low:
            return np.where(np.isfinite(values), 0.5, np.nan)
        return (self._forward(values) - low) / (high - low)

    def value(self, position: float):
        """The value at ``position`` (the inverse of ``position``)."""
        if self.kind == "category":
            return self.categories[round(position * (len(self.categories) - 1))]
        low, high = self._forward(np.array([self.low, self.high]))
        at = low + position * (high - low)
        return float(10 ** at) if self.kind == "log" else float(at)

    def ticks(self) -> list[tuple[float, str]]:
        if self.kind == "category":
            return [(float(p), c) for p, c in zip(self.position(self.categories), self.categories)]
        if self.low == self.high:
            return [(0.5, number_text(self.low))]
        return [(p, number_text(float(f"{self.value(p):.3g}"))) for p in np.linspace(0, 1, TICKS)]


def parallel_coordinates(trials: pd.DataFrame, metric: str, space: Mapping | None = None
                         ) -> tuple[pd.DataFrame, list[Scale]]:
    """Each trial's position on each axis: the tuned parameters, then the mean validation ``metric``.

    Returns a frame indexed by trial (one column an axis, positions in [0, 1]; the
    metric column is ``UNUSABLE_Y`` for a trial that diverged or failed) with its
    ``status`` and ``mean``, and the axes' scales in order.
    """
    table = trial_table(trials, metric).set_index("trial")
    ok = usable(table)
    scales = [Scale.of(c, table[c], space) for c in tuned_parameters(trials)]
    scales.append(Scale(metric, "linear", *(_bounds(ok["mean"]))))
    frame = pd.DataFrame({s.name: s.position(table[s.name]) for s in scales[:-1]}, index=table.index)
    frame[metric] = scales[-1].position(table["mean"])
    frame.loc[~frame.index.isin(ok.index), metric] = UNUSABLE_Y
    return frame.assign(status=table["status"], mean=table["mean"]), scales


def _bounds(values: pd.Series) -> tuple[float, float]:
    values = values.astype(float)
    return (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)


@styled
def plot_parallel_coordinates(trials: pd.DataFrame, path, metric: str, space: Mapping | None = None,
                              context: str | None = None) -> None:
    """One line per trial across its tuned parameters to its mean validation ``metric``, colored by it.

    Log axes where the search space is log, categories as ticks; the selected trial
    is drawn on top in black; diverged and failed trials end above the metric axis.
    """
    frame, scales = parallel_coordinates(trials, metric, space)
    fig = Figure(figsize=(max(7.5, 2.1 * len(scales) + 2.5), 5.0), layout="constrained")
    suptitle(fig, "Parallel coordinates", context)
    ax = fig.add_subplot()
    ok = frame[frame["status"] == "ok"].dropna(subset=["mean"])
    table = trial_table(trials, metric)
    ax.set_title(f"{len(frame)} trial{plural(len(frame))} across {len(scales) - 1} tuned parameter"
                 f"{plural(len(scales) - 1)} to validation {metric} (mean over {folds_text(table)})")
    if len(scales) < 2 or ok.empty:
        text = (f"No tuned parameter: every trial used the same values ({len(frame)} trial{plural(len(frame))})."
                if len(scales) < 2 else f"No usable trial has a validation {metric}.")
        empty_panel(ax, text)
        return save_svg(fig, path)
    x = np.arange(len(scales))
    columns = [s.name for s in scales]
    colors = matplotlib.colormaps["viridis_r" if lower_is_better(metric) else "viridis"]
    norm = Normalize(*_bounds(ok["mean"]))
    best = best_trial(table, metric)
    for trial, row in frame.iterrows():
        y = row[columns].to_numpy(float)
        if row["status"] != "ok" or pd.isna(row["mean"]):
            marker, color = MARKS.get(row["status"], ("x", "dimgray"))
            line, = ax.plot(x, y, "-", lw=0.9, alpha=0.6, color=color, zorder=1)
            ax.plot(x[-1:], y[-1:], marker, ms=8, mew=2, color=color, zorder=2)
        else:
            line, = ax.plot(x, y, "-", lw=1.2, alpha=0.8, color=colors(norm(row["mean"])), zorder=2)
        line.set_gid(f"trial-{trial}")
    if best is not None:
        ax.plot(x, frame.loc[best, columns].to_numpy(float), "-o", lw=2.6, ms=5, color="black", zorder=4,
                label=f"selected trial {best}", gid="selected")
    for status, (marker, color) in MARKS.items():
        count = int((frame["status"] == status).sum())
        if count:
            ax.plot([], [], marker + "-", color=color, mew=2, label=f"{status}: {count} trial{plural(count)} "
                    "(ends above the metric axis)")
    _draw_axes(ax, scales, metric)
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=colors), ax=ax, pad=0.02,
                 label=metric_label(metric))
    add_legend(fig, ax)
    save_svg(fig, path)


def _draw_axes(ax, scales: list[Scale], metric: str) -> None:
    ax.grid(False)
    ax.set_yticks([])
    ax.set_ylim(-0.06, UNUSABLE_Y + 0.08)
    for i, scale in enumerate(scales):
        ax.axvline(i, color="black", lw=0.8, zorder=0)
        for position, label in scale.ticks():
            ax.text(i - 0.03, position, label, ha="right", va="center", fontsize=7, zorder=5,
                    bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "alpha": 0.7, "edgecolor": "none"})
    labels = [s.name.removeprefix(PARAM) + (" (log)" if s.kind == "log" else "") for s in scales[:-1]]
    direction = "lower" if lower_is_better(metric) else "higher"
    ax.set_xticks(range(len(scales)), labels=[*labels, f"validation {metric}\n({direction} is better)"])
    ax.set_xlim(-0.45, len(scales) - 0.8)


@styled
def plot_importance(trials: pd.DataFrame, path, metric: str, space: Mapping | None = None, seed: int = 0,
                    context: str | None = None) -> None:
    """fANOVA importance of each tuned parameter for the mean validation ``metric``, with Spearman's rho beside it.

    The study is built from the trials whatever search made them (``mfsweep.studies``);
    the evaluator's random forest is seeded with ``seed``, so the figure is reproducible.
    """
    table = trial_table(trials, metric)
    fig = Figure(figsize=(10, 1.9 + 0.45 * max(len(tuned_parameters(trials)), 2)), layout="constrained")
    suptitle(fig, "Parameter importance", context)
    try:
        frame = importance_table(trials, metric, space, seed=seed)
    except ImportanceError as error:
        ax = fig.add_subplot()
        ax.set_title(f"fANOVA importance for validation {metric}")
        empty_panel(ax, f"{error}\n{len(table)} trial{plural(len(table))}, {len(usable(table))} usable.")
        return save_svg(fig, path)
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=(3, 2))
    rows = np.arange(len(frame))
    n = len(usable(table))
    left.barh(rows, frame["importance"], color="tab:blue")
    for row, value in zip(rows, frame["importance"]):
        left.text(value, row, f" {value:.2f}", va="center", fontsize=8)
    left.set_yticks(rows, labels=frame["parameter"])
    left.set_ylim(len(frame) - 0.5, -0.5)
    left.set_xlim(0, max(1.0, float(frame["importance"].max()) * 1.15))
    left.set_xlabel("share of the variance of the metric explained (fANOVA; sums to 1)")
    left.set_title(f"fANOVA importance for validation {metric} ({n} usable trials, seed {seed})")
    _spearman_panel(right, frame, metric)
    save_svg(fig, path)


def _spearman_panel(ax, frame: pd.DataFrame, metric: str) -> None:
    rows = np.arange(len(frame))
    rho = frame["spearman"].to_numpy(float)
    ax.barh(rows, np.nan_to_num(rho), color=np.where(rho < 0, "tab:orange", "tab:green"))
    for row, value, p_value in zip(rows, rho, frame["p_value"]):
        text = "not a number: no rank" if math.isnan(value) else f"{value:+.2f} (p={p_value:.2g})"
        ax.text(-0.03 if value > 0 else 0.03, row, text, va="center", ha="right" if value > 0 else "left", fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel(f"Spearman rank correlation with validation {metric}")
    better = "lower" if lower_is_better(metric) else "higher"
    ax.set_title(f"Spearman's rho ({better} {metric} is better)")
