"""The figures across the models of a dataset and split: comparison and cost."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mfsweep.plots.style import (
    EMBEDDING,
    MARKS,
    add_legend,
    empty_panel,
    log2_axis,
    palette,
    plain_log_y,
    plural,
    save_svg,
    styled,
    suptitle,
    value_text,
)
from mfsweep.trials import (
    IMPLICIT_KINDS,
    RATING_METRICS,
    UNUSABLE,
    lower_is_better,
    require_columns,
)


@styled
def plot_comparison(frame: pd.DataFrame, path, metrics: Iterable[str] | None = None,
                    context: str | None = None) -> None:
    """The best trial of each model (a ``compare`` frame): test metrics and fit time, one panel each.

    Each panel is a dot per model with the min-max over folds as a whiskers line
    and the value written beside it. By default: RMSE, MAE, NDCG, NDCG@k and
    Recall@k for each cutoff k, then the fit time.
    """
    require_columns(frame, ("model",), "comparison frame")
    names = list(metrics) if metrics is not None else _default_comparison_metrics(frame)
    panels = [f"test.{m}" for m in names if f"test.{m}" in frame] + ["train_seconds"]
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    height = 0.9 + 0.32 * len(frame)
    fig = Figure(figsize=(3.6 * ncols, (height + 0.9) * nrows + 0.5), layout="constrained")
    suptitle(fig, "Model comparison", context)
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False)
    models = frame["model"].astype(str).tolist()
    for ax, column in zip(axes.ravel(), panels):
        _comparison_panel(ax, frame, column)
    for ax in axes.ravel()[len(panels):]:
        ax.set_axis_off()
    for ax in axes[:, 0]:
        ax.set_yticks(range(len(models)), labels=models)
        ax.set_ylim(len(models) - 0.5, -0.5)
    save_svg(fig, path)


@styled
def plot_cost(trials_by_model: Mapping[str, pd.DataFrame], path, context: str | None = None) -> None:
    """Training seconds per epoch against embedding size (log2 x, log y), one color a model.

    Each point is a trial x fold (train_seconds / epochs trained); the line joins
    the median per size of the usable runs. A diverged run is a red cross at the
    time it took per epoch until it diverged; failed runs (no epoch) are counted in
    the note below the axes.
    """
    fig = Figure(figsize=(8.5, 4.8), layout="constrained")
    suptitle(fig, "Training cost per epoch", context)
    ax = fig.add_subplot()
    ax.set_title("wall-clock training time per epoch (validation excluded)")
    notes, sizes, drawn = [], [], False
    colors = palette(len(trials_by_model))
    for color, (model, trials) in zip(colors, trials_by_model.items()):
        runs = _cost_runs(trials)
        failed = int((trials["stop_reason"] == "failed").sum())
        if failed:
            notes.append(f"{model}: {failed} failed run{plural(failed)} not shown (no epoch trained)")
        if EMBEDDING not in runs:
            notes.append(f"{model}: no embedding_size parameter")
            continue
        runs = runs[runs[EMBEDDING].notna()]
        sizes.extend(runs[EMBEDDING].astype(float))
        ok = runs[~runs["stop_reason"].isin(UNUSABLE)]
        ax.scatter(ok[EMBEDDING], ok["per_epoch"], s=18, alpha=0.6, color=color, zorder=3)
        median = ok.groupby(EMBEDDING)["per_epoch"].median()
        ax.plot(median.index, median.to_numpy(), "-o", ms=3, color=color, lw=1.6, zorder=2,
                label=f"{model} (median per size; {len(ok)} runs)")
        diverged = runs[runs["stop_reason"] == "diverged"]
        if not diverged.empty:
            ax.plot(diverged[EMBEDDING], diverged["per_epoch"], "x", ms=8, mew=2, color=MARKS["diverged"][1],
                    zorder=4, label=f"{model}: diverged ({len(diverged)} run{plural(len(diverged))})")
        drawn = drawn or not runs.empty
    if drawn:
        log2_axis(ax, np.asarray(sizes))
        plain_log_y(ax)
        ax.set_xlabel("embedding size (factors per user and item; log2 scale)")
        ax.set_ylabel("training seconds per epoch (log scale)")
    else:
        empty_panel(ax, "No run with an embedding_size and at least one trained epoch.")
    for note in notes:  # in the legend block, where the layout keeps it clear of everything else
        ax.plot([], [], ls="none", label=note)
    add_legend(fig, ax)
    save_svg(fig, path)



def _comparison_panel(ax, frame: pd.DataFrame, column: str) -> None:
    values = frame[column].astype(float).to_numpy() if column in frame else np.full(len(frame), np.nan)
    implicit = _implicit_rows(frame, column)
    values = np.where(implicit, np.nan, values)
    positions = np.arange(len(frame))
    low = np.where(implicit, np.nan, _bound(frame, f"{column}_min", values))
    high = np.where(implicit, np.nan, _bound(frame, f"{column}_max", values))
    colors = palette(len(frame))
    ax.hlines(positions, low, high, color=colors, lw=2.5, alpha=0.45)
    ax.scatter(values, positions, s=40, color=colors, zorder=3)
    finite = np.isfinite(values)
    if finite.any():
        lo, hi = np.nanmin(low[finite]), np.nanmax(high[finite])
        pad = (hi - lo) or abs(hi) or 1.0
        ax.set_xlim(lo - 0.15 * pad, hi + 0.6 * pad)
    for position, value, end, skipped in zip(positions, values, high, implicit):
        if np.isfinite(value):
            ax.annotate(value_text(value, column), (end, position), xytext=(5, 0), textcoords="offset points",
                        va="center", fontsize=8)
        elif skipped:
            ax.text(0.02, position, "not a rating model", transform=ax.get_yaxis_transform(), va="center",
                    fontsize=8, color="0.4")
        else:
            ax.text(0.02, position, "no usable trial", transform=ax.get_yaxis_transform(), va="center",
                    fontsize=8, color=MARKS["diverged"][1])
    if column == "train_seconds":
        ax.set_title("fit time (lower is better)")
        ax.set_xlabel("training seconds (mean over folds)")
    else:
        name = column.removeprefix("test.")
        ax.set_title(f"{name} ({'lower' if lower_is_better(name) else 'higher'} is better)")
        ax.set_xlabel(f"test {name}" + (" (rating scale)" if name in RATING_METRICS else ""))
    ax.grid(axis="y", visible=False)


def _implicit_rows(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Rows whose model predicts preferences, not ratings: left out of rating-metric panels."""
    if column.removeprefix("test.") not in RATING_METRICS or "kind" not in frame:
        return np.zeros(len(frame), bool)
    if "rating_model" in frame:
        return ~frame["rating_model"].astype(bool).to_numpy()
    return frame["kind"].isin(IMPLICIT_KINDS).to_numpy()


def _bound(frame: pd.DataFrame, column: str, values: np.ndarray) -> np.ndarray:
    """A fold bound column (``_min``/``_max``), or the values themselves where it is missing."""
    if column not in frame:
        return values
    bound = frame[column].astype(float).to_numpy()
    return np.where(np.isfinite(bound), bound, values)




def _cost_runs(trials: pd.DataFrame) -> pd.DataFrame:
    """Trial x fold rows with seconds per epoch trained; runs that trained no epoch left out.

    A diverged run also trained the epoch that diverged, which its ``epochs_completed``
    does not count (that epoch's time is in ``train_seconds``).
    """
    trained = trials["epochs_completed"].fillna(0) + (trials["stop_reason"] == "diverged")
    runs = trials.assign(per_epoch=trials["train_seconds"].astype(float) / trained.where(trained > 0))
    return runs[np.isfinite(runs["per_epoch"]) & (runs["per_epoch"] > 0)]




def _default_comparison_metrics(frame: pd.DataFrame) -> list[str]:
    cutoffs = sorted({int(c.split("@")[1]) for c in frame.columns if c.startswith("test.NDCG@") and c[10:].isdigit()})
    names = ["RMSE", "MAE", "NDCG"]
    for k in cutoffs:
        names += [f"NDCG@{k}", f"Recall@{k}"]
    return names

