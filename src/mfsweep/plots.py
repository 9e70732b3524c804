"""The analysis figures of a sweep, written as SVG files.

Every function draws on its own ``matplotlib.figure.Figure`` (the object API: no
pyplot, no global backend state, safe under any backend) and writes one SVG
atomically. Trials that diverged or failed are never dropped silently: they are
drawn as crosses at the top of the axis at their parameter value (red: diverged,
gray: failed) and counted in the legend.

Inputs are the summary tables of ``mfsweep.analysis``: ``trials`` (one row a
trial x fold: ``stop_reason``, ``epochs_completed``, ``train_seconds``,
``param.<name>``, ``valid.<metric>``, ``test.<metric>``) and ``history`` (one row
an epoch of a trial x fold, validation metrics by name).
"""

from __future__ import annotations

import functools
import math
import textwrap
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter, NullLocator

from mfsweep.analysis import UNUSABLE
from mfsweep.io import atomic_path
from mfsweep.search import DISTRIBUTIONS
from mfsweep.train import IMPLICIT_KINDS, lower_is_better

RC = {
    "svg.fonttype": "none",  # text stays text: smaller files, searchable, testable
    "svg.hashsalt": "mfsweep",  # stable element ids: the same tables give the same file
    "font.size": 9,
    "axes.titlesize": 10,
    "figure.titlesize": 12,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
}
#: Marker and color of the trials that are not usable, by status.
MARKS = {"diverged": ("x", "tab:red"), "failed": ("x", "dimgray")}
REASON_COLORS = {"max_epochs": "tab:blue", "plateau": "tab:green", "diverged": "tab:red", "failed": "dimgray"}
RATING_METRICS = ("RMSE", "MAE", "RMSE_user", "MAE_user")
#: The order metrics are listed and drawn in; ``@k`` metrics after their base name.
METRIC_ORDER = ("RMSE", "MAE", "RMSE_user", "MAE_user", "NDCG", "RBP", "RecipRank",
                "NDCG@", "Precision@", "Recall@", "HitRate@", "Coverage@")
SHORT_NAMES = {"embedding_size": "k", "learning_rate": "lr", "regularization": "reg", "init_std": "init",
               "unobserved_weight": "w0", "damping": "damp"}
EMBEDDING = "param.embedding_size"
TOP_MARK_Y = 0.97  # axes fraction where unusable trials are marked


def _styled(function: Callable) -> Callable:
    """Run a plotting function under the house style (see ``RC``)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(RC):
            return function(*args, **kwargs)

    return wrapper


# ----- tables --------------------------------------------------------------------------------
def param_columns(trials: pd.DataFrame) -> list[str]:
    return [c for c in trials.columns if c.startswith("param.")]


def tuned_parameters(trials: pd.DataFrame) -> list[str]:
    """The ``param.`` columns that take more than one value among the trials."""
    return [c for c in param_columns(trials) if trials[c].nunique(dropna=True) > 1]


def trial_status(stop_reasons: pd.Series) -> str:
    """``failed`` or ``diverged`` when any fold was (the trial is then unusable), else ``ok``."""
    reasons = set(stop_reasons)
    for status in ("failed", "diverged"):
        if status in reasons:
            return status
    return "ok"


def trial_table(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row a trial: its parameters, status, folds, epochs, and validation ``metric``.

    ``mean``, ``min`` and ``max`` are over the folds; they are NaN for an unusable
    trial (any fold diverged or failed), as in ``analysis.select_best``. Rows are in
    trial-id order.
    """
    _require(trials, ("trial", "fold", "stop_reason", "epochs_completed"), "trials")
    column = f"valid.{metric}"
    values = trials[column].astype(float) if column in trials else pd.Series(np.nan, index=trials.index)
    values = values.where(~trials["stop_reason"].isin(UNUSABLE))
    groups = trials.assign(_value=values).groupby("trial", sort=True)
    table = pd.DataFrame({c: groups[c].first() for c in param_columns(trials)}, index=groups.size().index)
    table["status"] = groups["stop_reason"].agg(trial_status)
    table["stop_reason"] = groups["stop_reason"].agg(lambda s: s.value_counts().index[0])
    table["folds"] = groups.size()
    table["epochs_completed"] = groups["epochs_completed"].max()
    for name in ("mean", "min", "max"):
        table[name] = groups["_value"].agg(name).where(table["status"] == "ok")
    return table.reset_index()


def usable(table: pd.DataFrame) -> pd.DataFrame:
    """The trials of ``trial_table`` that can be ranked: every fold usable, a finite mean."""
    return table[(table["status"] == "ok") & np.isfinite(table["mean"].astype(float))]


def best_trial(table: pd.DataFrame, metric: str) -> str | None:
    """The usable trial with the best mean (the first in trial-id order on ties); None if none."""
    ranked = rank(usable(table), metric)
    return None if ranked.empty else str(ranked["trial"].iloc[0])


def rank(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    return table.sort_values("mean", ascending=lower_is_better(metric), kind="stable")


def compare(best_dicts: Iterable[Mapping]) -> pd.DataFrame:
    """One row a model from its ``best.json``: the best trial, its fit time and test metrics.

    Columns: model, kind, trial, selection_metric, objective (the mean validation
    metric it was selected on), trials, usable_trials, epochs_completed,
    train_seconds, cpu_seconds, then ``test.<metric>`` (mean over folds, with
    ``_min`` and ``_max`` where there are several folds). A model without a usable
    trial has trial None and NaN metrics.
    """
    rows = []
    for best in best_dicts:
        row = {key: best.get(key) for key in ("model", "kind", "trial", "selection_metric", "objective", "trials",
                                               "usable_trials", "epochs_completed", "train_seconds", "cpu_seconds")}
        test = best.get("test") or {}
        row.update({f"test.{name}": test[name] for name in sorted(test, key=metric_order)})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise ValueError("compare: no best.json given; need at least one model")
    numeric = [c for c in frame.columns if c.startswith("test.")] + ["objective", "train_seconds", "cpu_seconds"]
    frame[numeric] = frame[numeric].astype(float)
    metrics = sorted((c for c in frame.columns if c.startswith("test.")), key=lambda c: metric_order(c[5:]))
    return frame[[c for c in frame.columns if not c.startswith("test.")] + metrics]


def metric_order(name: str) -> tuple:
    """Sort key: rating metrics, whole-list ranking metrics, then ``@k`` metrics by name and k."""
    suffix = ""
    for end in ("_min", "_max"):
        if name.endswith(end):
            name, suffix = name.removesuffix(end), end
    base, at, k = name.partition("@")
    key = base + at
    position = METRIC_ORDER.index(key) if key in METRIC_ORDER else len(METRIC_ORDER)
    return (position, key, int(k) if k.isdigit() else 0, suffix)


# ----- figures -------------------------------------------------------------------------------
@_styled
def plot_embedding_size(trials: pd.DataFrame, path, metric: str, context: str | None = None) -> None:
    """Validation ``metric`` against embedding size (log2 x): every trial a point, the best per size a line."""
    table = trial_table(trials, metric)
    fig = Figure(figsize=(7.5, 4.4), layout="constrained")
    ax = fig.add_subplot()
    _suptitle(fig, "Embedding size", context)
    ax.set_title(f"validation {metric} against embedding size ({len(table)} trial{_s(len(table))})")
    if EMBEDDING not in table:
        _empty(ax, "No embedding_size parameter in these trials: nothing to draw against it.")
        return _save(fig, path)
    ok = usable(table)
    _log2_axis(ax, table[EMBEDDING].astype(float).to_numpy())
    if not ok.empty:
        ax.scatter(ok[EMBEDDING], ok["mean"], s=26, alpha=0.75, color="tab:blue", zorder=3,
                   label=f"trial (mean over {_folds_text(table)})")
        best = rank(ok, metric).drop_duplicates(EMBEDDING).sort_values(EMBEDDING)
        ax.plot(best[EMBEDDING], best["mean"], "-", color="tab:orange", lw=1.6, zorder=2, label="best trial per size")
        _mark_selected(ax, ok, EMBEDDING, metric)
    _mark_unusable(ax, table, lambda rows: rows[EMBEDDING].astype(float).to_numpy())
    if ok.empty:
        _note(ax, _no_usable_text(table, metric))
        ax.set_yticks([])
    ax.set_xlabel("embedding size (factors per user and item; log2 scale)")
    ax.set_ylabel(metric_label(metric))
    _legend(fig, ax)
    _save(fig, path)


@_styled
def plot_learning_parameters(trials: pd.DataFrame, path, metric: str, space: Mapping | None = None,
                             context: str | None = None, exclude: Iterable[str] = ("embedding_size",)) -> None:
    """Validation ``metric`` against each tuned parameter, one panel each (log x where the space is log).

    ``space`` is the model's ``params`` from the config; without it an axis is
    logarithmic when its values are all > 0 and span at least 10x. Parameters in
    ``exclude`` (embedding size: it has its own figure) get no panel.
    """
    table = trial_table(trials, metric)
    skipped = {f"param.{name}" for name in exclude}
    tuned = [c for c in tuned_parameters(trials) if c not in skipped]
    if not tuned:
        fig = Figure(figsize=(7.5, 3.0), layout="constrained")
        _suptitle(fig, "Learning parameters", context)
        ax = fig.add_subplot()
        ax.set_title(f"validation {metric} against each tuned parameter")
        _empty(ax, _untuned_text(trials, skipped))
        return _save(fig, path)
    ncols = min(3, len(tuned))
    nrows = math.ceil(len(tuned) / ncols)
    fig = Figure(figsize=(3.9 * ncols + 2.2, 3.3 * nrows + 0.6), layout="constrained")
    _suptitle(fig, "Learning parameters", context)
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False)
    ok = usable(table)
    for ax, column in zip(axes.ravel(), tuned):
        x_of = _parameter_axis(ax, column, table[column], space)
        if not ok.empty:
            ax.scatter(x_of(ok), ok["mean"], s=24, alpha=0.75, color="tab:blue", zorder=3,
                       label=f"trial (mean over {_folds_text(table)})")
        _mark_selected(ax, ok, column, metric, x_of)
        _mark_unusable(ax, table, x_of)
        ax.set_title(column.removeprefix("param."))
        if ok.empty:
            _note(ax, _no_usable_text(table, metric))
            ax.set_yticks([])
    for ax in axes.ravel()[len(tuned):]:
        ax.set_axis_off()
    for ax in axes[:, 0]:
        ax.set_ylabel(metric_label(metric))
    _legend(fig, axes.ravel()[0])
    _save(fig, path)


@_styled
def plot_iteration_completion(trials: pd.DataFrame, history: pd.DataFrame, path, metric: str,
                              best: str | None = None, max_epochs: int | None = None, top: int = 5,
                              context: str | None = None) -> None:
    """How far trials got: epochs completed by stop reason, the best trial's curve, the longest curves.

    ``best`` is the selected trial (``best.json``'s ``trial``); by default the usable
    trial with the best mean validation ``metric``. Curves show the validation
    ``metric`` by epoch, or the training loss when the history has no such column.
    """
    table = trial_table(trials, metric)
    best = best if best is not None else best_trial(table, metric)
    column = metric if metric in history else "train_loss"
    fig = Figure(figsize=(15, 4.8), layout="constrained")
    _suptitle(fig, "Iteration completion", context)
    left, middle, right = fig.subplots(1, 3)
    _epochs_histogram(left, trials, max_epochs)
    _best_curve(middle, trials, history, best, column)
    _longest_curves(right, table, history, column, top)
    _save(fig, path)


@_styled
def plot_comparison(frame: pd.DataFrame, path, metrics: Iterable[str] | None = None,
                    context: str | None = None) -> None:
    """The best trial of each model (a ``compare`` frame): test metrics and fit time, one panel each.

    Each panel is a dot per model with the min-max over folds as a whiskers line
    and the value written beside it. By default: RMSE, MAE, NDCG, NDCG@k and
    Recall@k for each cutoff k, then the fit time.
    """
    _require(frame, ("model",), "comparison frame")
    names = list(metrics) if metrics is not None else _default_comparison_metrics(frame)
    panels = [f"test.{m}" for m in names if f"test.{m}" in frame] + ["train_seconds"]
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    height = 0.9 + 0.32 * len(frame)
    fig = Figure(figsize=(3.6 * ncols, (height + 0.9) * nrows + 0.5), layout="constrained")
    _suptitle(fig, "Model comparison", context)
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False)
    models = frame["model"].astype(str).tolist()
    for ax, column in zip(axes.ravel(), panels):
        _comparison_panel(ax, frame, column)
    for ax in axes.ravel()[len(panels):]:
        ax.set_axis_off()
    for ax in axes[:, 0]:
        ax.set_yticks(range(len(models)), labels=models)
        ax.set_ylim(len(models) - 0.5, -0.5)
    _save(fig, path)


@_styled
def plot_cost(trials_by_model: Mapping[str, pd.DataFrame], path, context: str | None = None) -> None:
    """Training seconds per epoch against embedding size (log2 x, log y), one color a model.

    Each point is a trial x fold (train_seconds / epochs trained); the line joins
    the median per size of the usable runs. A diverged run is a red cross at the
    time it took per epoch until it diverged; failed runs (no epoch) are counted in
    the note below the axes.
    """
    fig = Figure(figsize=(8.5, 4.8), layout="constrained")
    _suptitle(fig, "Training cost per epoch", context)
    ax = fig.add_subplot()
    ax.set_title("wall-clock training time per epoch (validation excluded)")
    notes, sizes, drawn = [], [], False
    colors = _colors(len(trials_by_model))
    for color, (model, trials) in zip(colors, trials_by_model.items()):
        runs = _cost_runs(trials)
        failed = int((trials["stop_reason"] == "failed").sum())
        if failed:
            notes.append(f"{model}: {failed} failed run{_s(failed)} not shown (no epoch trained)")
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
                    zorder=4, label=f"{model}: diverged ({len(diverged)} run{_s(len(diverged))})")
        drawn = drawn or not runs.empty
    if drawn:
        _log2_axis(ax, np.asarray(sizes))
        _plain_log_y(ax)
        ax.set_xlabel("embedding size (factors per user and item; log2 scale)")
        ax.set_ylabel("training seconds per epoch (log scale)")
    else:
        _empty(ax, "No run with an embedding_size and at least one trained epoch.")
    for note in notes:  # in the legend block, where the layout keeps it clear of everything else
        ax.plot([], [], ls="none", label=note)
    _legend(fig, ax)
    _save(fig, path)


@_styled
def plot_folds(trials: pd.DataFrame, path, metric: str, top: int = 10, context: str | None = None) -> None:
    """Spread of validation ``metric`` across folds for the ``top`` trials by mean (best at the top)."""
    table = trial_table(trials, metric)
    ranked = rank(usable(table), metric).head(top)
    folds = sorted(trials["fold"].unique())
    fig = Figure(figsize=(8.5, 1.7 + 0.5 * max(len(ranked), 2)), layout="constrained")
    _suptitle(fig, "Spread across folds", context)
    ax = fig.add_subplot()
    spread = "one fold: one point per trial, no spread" if len(folds) == 1 else f"{len(folds)} folds: min to max"
    ax.set_title(f"top {len(ranked)} trial{_s(len(ranked))} by mean validation {metric} ({spread})")
    if ranked.empty:
        _empty(ax, _no_usable_text(table, metric))
        return _save(fig, path)
    column = f"valid.{metric}"
    rows = {trial: position for position, trial in enumerate(ranked["trial"])}
    chosen = trials[trials["trial"].isin(rows)]
    if len(folds) > 1:
        ax.hlines([rows[t] for t in ranked["trial"]], ranked["min"], ranked["max"], color="gray", lw=4, alpha=0.35,
                  zorder=1, label="min to max over folds")
    for color, fold in zip(_colors(len(folds)), folds):
        part = chosen[chosen["fold"] == fold]
        ax.scatter(part[column], part["trial"].map(rows), s=28, color=color, zorder=3, label=f"fold {fold}")
    ax.plot(ranked["mean"], range(len(ranked)), "|", ms=16, mew=2, color="black", zorder=4, label="mean over folds")
    tuned = tuned_parameters(trials)
    ax.set_yticks(range(len(ranked)), labels=[_trial_label(row, tuned) for _, row in ranked.iterrows()])
    ax.set_ylim(len(ranked) - 0.5, -0.5)
    ax.set_ylabel("trial (ranked, best first)")
    ax.set_xlabel(metric_label(metric, over_folds=False))
    for status, (marker, color) in MARKS.items():
        count = int((table["status"] == status).sum())
        if count:
            ax.plot([], [], marker, color=color, mew=2, ls="none",
                    label=f"{status}: {count} trial{_s(count)}, not ranked")
    _legend(fig, ax)
    _save(fig, path)


# ----- panels --------------------------------------------------------------------------------
def _epochs_histogram(ax, trials: pd.DataFrame, max_epochs: int | None) -> None:
    epochs = trials["epochs_completed"].fillna(0).astype(int).to_numpy()
    reasons = trials["stop_reason"].astype(str).to_numpy()
    last = int(max(epochs.max(initial=0), max_epochs or 0))
    bottom = np.zeros(last + 1)
    order = [r for r in REASON_COLORS if r in reasons] + sorted(set(reasons) - set(REASON_COLORS))
    for reason in order:
        counts = np.bincount(epochs[reasons == reason], minlength=last + 1)
        ax.bar(np.arange(last + 1), counts, bottom=bottom, width=0.8, color=REASON_COLORS.get(reason, "tab:purple"),
               label=f"{reason} ({int(counts.sum())})")
        bottom += counts
    if max_epochs:
        ax.axvline(max_epochs, ls="--", lw=1, color="black", label=f"max_epochs = {max_epochs}")
    ax.set_title(f"epochs completed ({len(trials)} trial x fold runs)")
    ax.set_xlabel("epochs completed")
    ax.set_ylabel("runs (trial x fold)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(title="stop reason", loc="upper left")


def _best_curve(ax, trials: pd.DataFrame, history: pd.DataFrame, best: str | None, column: str) -> None:
    ax.set_title(f"selected trial {best}: validation {column} by epoch" if best else "selected trial")
    rows = history[history["trial"] == best] if best is not None else history.iloc[:0]
    rows = rows[rows[column].notna()] if column in rows else rows.iloc[:0]
    if rows.empty:
        text = "No usable trial: every trial diverged or failed." if best is None else f"No history for trial {best}."
        return _empty(ax, text)
    records = trials[trials["trial"] == best].set_index("fold")
    for color, (fold, part) in zip(_colors(rows["fold"].nunique()), rows.groupby("fold")):
        ax.plot(part["epoch"], part[column], "-o", ms=3, color=color, label=f"fold {fold}")
        best_epoch = records["best_epoch"].get(fold) if "best_epoch" in records else None
        if best_epoch is not None and best_epoch in set(part["epoch"]):
            value = part.loc[part["epoch"] == best_epoch, column].iloc[0]
            ax.plot([best_epoch], [value], "*", ms=13, color=color, markeredgecolor="black", zorder=4)
    ax.plot([], [], "*", ms=11, color="white", markeredgecolor="black", label="best epoch (kept model)")
    ax.set_xlabel("epoch")
    ax.set_ylabel(_curve_label(column))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="best")


def _longest_curves(ax, table: pd.DataFrame, history: pd.DataFrame, column: str, top: int) -> None:
    ran = table[table["epochs_completed"] > 0].sort_values("epochs_completed", ascending=False, kind="stable")
    chosen = ran.head(top)
    ax.set_title(f"the {len(chosen)} longest-running trials: validation {column} by epoch")
    if chosen.empty or column not in history:
        return _empty(ax, "No trial completed an epoch.")
    diverged_shown = False
    for color, (_, trial) in zip(_colors(len(chosen)), chosen.iterrows()):
        rows = history[(history["trial"] == trial["trial"]) & history[column].notna()]
        ended = trial["stop_reason"] if trial["status"] == "ok" else trial["status"]
        label = f"{trial['trial']} ({trial['epochs_completed']} epochs, {ended})"
        for _, part in rows.groupby("fold"):
            ax.plot(part["epoch"], part[column], "-", lw=1.3, alpha=0.85, color=color, label=label)
            label = None  # one legend entry a trial, whatever its folds
        if trial["status"] == "diverged":
            ends = rows.sort_values("epoch").groupby("fold").tail(1)
            ax.plot(ends["epoch"], ends[column], "x", ms=9, mew=2, color=MARKS["diverged"][1], zorder=4,
                    label=None if diverged_shown else "diverged after this epoch")
            diverged_shown = True
    ax.set_xlabel("epoch")
    ax.set_ylabel(_curve_label(column))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2, title="trial (epochs, stop reason)")


def _comparison_panel(ax, frame: pd.DataFrame, column: str) -> None:
    values = frame[column].astype(float).to_numpy() if column in frame else np.full(len(frame), np.nan)
    implicit = _implicit_rows(frame, column)
    values = np.where(implicit, np.nan, values)
    positions = np.arange(len(frame))
    low = np.where(implicit, np.nan, _bound(frame, f"{column}_min", values))
    high = np.where(implicit, np.nan, _bound(frame, f"{column}_max", values))
    colors = _colors(len(frame))
    ax.hlines(positions, low, high, color=colors, lw=2.5, alpha=0.45)
    ax.scatter(values, positions, s=40, color=colors, zorder=3)
    finite = np.isfinite(values)
    if finite.any():
        lo, hi = np.nanmin(low[finite]), np.nanmax(high[finite])
        pad = (hi - lo) or abs(hi) or 1.0
        ax.set_xlim(lo - 0.15 * pad, hi + 0.6 * pad)
    for position, value, end, skipped in zip(positions, values, high, implicit):
        if np.isfinite(value):
            ax.annotate(_value_text(value, column), (end, position), xytext=(5, 0), textcoords="offset points",
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
    return frame["kind"].isin(IMPLICIT_KINDS).to_numpy()


def _bound(frame: pd.DataFrame, column: str, values: np.ndarray) -> np.ndarray:
    """A fold bound column (``_min``/``_max``), or the values themselves where it is missing."""
    if column not in frame:
        return values
    bound = frame[column].astype(float).to_numpy()
    return np.where(np.isfinite(bound), bound, values)


# ----- helpers -------------------------------------------------------------------------------
def metric_label(metric: str, over_folds: bool = True) -> str:
    unit = "rating scale; " if metric in RATING_METRICS else ""
    direction = "lower" if lower_is_better(metric) else "higher"
    mean = ", mean over folds" if over_folds else ""
    return f"validation {metric}{mean}\n({unit}{direction} is better)"


def _curve_label(column: str) -> str:
    if column == "train_loss":
        return "training loss (no validation metric recorded)"
    return metric_label(column, over_folds=False)


def is_log_axis(name: str, values: Iterable, space: Mapping | None = None) -> bool:
    """Whether parameter ``name`` is drawn on a log axis.

    Log when the search space draws it from a ``loguniform``/``loguniform_int``
    distribution, or when its grid (or, without a space, the values taken) are all
    > 0 and span at least 10x.
    """
    entry = _space_entry(space, name)
    if isinstance(entry, Mapping) and len(entry) == 1 and next(iter(entry)) in DISTRIBUTIONS:
        return next(iter(entry)).startswith("loguniform")
    points = entry if isinstance(entry, list) else list(values)
    numbers = [v for v in points if _is_number(v) and math.isfinite(v)]
    if not numbers or len(numbers) < len(points) or min(numbers) <= 0:
        return False
    return max(numbers) / min(numbers) >= 10


def _space_entry(space: Mapping | None, name: str):
    """The search-space entry of ``name`` (``regularization.user`` as a dotted key or nested)."""
    if not space:
        return None
    if name in space:
        return space[name]
    head, _, tail = name.partition(".")
    entry = space.get(head)
    if tail and isinstance(entry, Mapping) and tail in entry:
        return entry[tail]
    return None


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _parameter_axis(ax, column: str, values: pd.Series, space: Mapping | None) -> Callable[[pd.DataFrame], np.ndarray]:
    """Set up ``ax``'s x axis for a parameter; return the map from table rows to x positions."""
    name = column.removeprefix("param.")
    present = values.dropna()
    numeric = pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
    if numeric:
        log = is_log_axis(name, present.tolist(), space)
        if name == "embedding_size" and log:
            _log2_axis(ax, present.astype(float).to_numpy())
        elif log:
            ax.set_xscale("log")
        ax.set_xlabel(name + (" (log scale)" if log else ""))
        return lambda rows: rows[column].astype(float).to_numpy()
    categories = sorted({str(v) for v in present})
    ax.set_xticks(range(len(categories)), labels=categories)
    ax.set_xlim(-0.5, len(categories) - 0.5)
    ax.set_xlabel(name)
    ax.xaxis.set_minor_locator(NullLocator())
    return lambda rows: np.array([categories.index(str(v)) if pd.notna(v) else np.nan for v in rows[column]], float)


def _log2_axis(ax, values: np.ndarray) -> None:
    """A log2 x axis with ticks at the values (few and well apart) or at powers of 2."""
    ax.set_xscale("log", base=2)
    sizes = np.unique(values[np.isfinite(values) & (values > 0)])
    if sizes.size == 0:
        return
    if sizes.size <= 8 and (sizes.size == 1 or np.min(sizes[1:] / sizes[:-1]) >= 1.3):
        ticks = sizes
    else:
        low, high = math.floor(math.log2(sizes.min())), math.ceil(math.log2(sizes.max()))
        step = max(1, math.ceil((high - low + 1) / 9))
        ticks = 2.0 ** np.arange(low, high + 1, step)
    ax.set_xticks(ticks, labels=[_number(t) for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(sizes.min() / 1.5, sizes.max() * 1.5)


def _plain_log_y(ax) -> None:
    """Log y ticks as plain numbers (0.3, not 3x10^-1); 2x and 5x ticks labelled on narrow ranges."""
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(plain)
    low, high = ax.get_ylim()
    narrow = high / low < 30
    ax.yaxis.set_minor_formatter(
        FuncFormatter(lambda value, _: f"{value:g}" if round(value / 10 ** math.floor(math.log10(value))) in (2, 5)
                      else "") if narrow else NullFormatter())


def _mark_selected(ax, ok: pd.DataFrame, column: str, metric: str, x_of: Callable | None = None) -> None:
    if ok.empty:
        return
    best = rank(ok, metric).head(1)
    x = x_of(best) if x_of is not None else best[column].astype(float).to_numpy()
    ax.plot(x, best["mean"], "*", ms=15, color="gold", markeredgecolor="black", zorder=5,
            label=f"selected trial {best['trial'].iloc[0]}")


def _mark_unusable(ax, table: pd.DataFrame, x_of: Callable[[pd.DataFrame], np.ndarray]) -> None:
    """Crosses at the top of ``ax`` at each unusable trial's x, with a counted legend entry."""
    marked = False
    for status, (marker, color) in MARKS.items():
        rows = table[table["status"] == status]
        if rows.empty:
            continue
        x = np.asarray(x_of(rows), float)
        shown = np.isfinite(x)
        label = f"{status} ({len(rows)} trial{_s(len(rows))}; marked at the top)"
        ax.plot(x[shown], np.full(int(shown.sum()), TOP_MARK_Y), marker, ms=9, mew=2, ls="none", color=color,
                transform=ax.get_xaxis_transform(), clip_on=False, zorder=5, label=label)
        marked = True
    if marked:
        ax.margins(y=0.15)


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


def _trial_label(row: pd.Series, tuned: list[str]) -> str:
    values = " ".join(f"{_short(c)}={_number(row[c])}" for c in tuned if pd.notna(row.get(c)))
    return f"{row['trial']}\n{values}" if values else str(row["trial"])


def _short(column: str) -> str:
    name = column.removeprefix("param.")
    head, _, tail = name.partition(".")
    return SHORT_NAMES.get(head, head) + (f".{tail[0]}" if tail else "")


def _number(value) -> str:
    if _is_number(value):
        value = float(value)
        return str(int(value)) if value.is_integer() and abs(value) < 1e6 else f"{value:.3g}"
    return str(value)


def _value_text(value: float, column: str) -> str:
    return f"{value:.3g} s" if column == "train_seconds" else f"{value:.4f}"


def _folds_text(table: pd.DataFrame) -> str:
    folds = int(table["folds"].max()) if len(table) else 0
    return f"{folds} fold{_s(folds)}"


def _no_usable_text(table: pd.DataFrame, metric: str) -> str:
    counts = table["status"].value_counts()
    if (table["status"] == "ok").any():
        return f"No usable trial has a validation {metric}."
    parts = [f"{counts[s]} {s}" for s in MARKS if s in counts]
    return f"No usable trial: all {len(table)} trial{_s(len(table))} diverged or failed ({', '.join(parts)})."


def _untuned_text(trials: pd.DataFrame, skipped: set[str]) -> str:
    tuned = [c.removeprefix("param.") for c in tuned_parameters(trials) if c in skipped]
    fixed = [f"{c.removeprefix('param.')}={_number(trials[c].dropna().iloc[0])}" for c in param_columns(trials)
             if c not in skipped and trials[c].notna().any()]
    head = "No tuned learning parameter: every trial used the same values"
    if tuned:
        head += f" (only {', '.join(tuned)} varies; it has its own figure)"
    trials_text = f"{trials['trial'].nunique()} trial{_s(trials['trial'].nunique())}"
    return f"{head}.\n{trials_text}; fixed: {', '.join(fixed) or 'none'}."


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(missing)}; got {', '.join(map(str, frame.columns))}")


def _colors(n: int) -> list:
    cycle = matplotlib.colormaps["tab10"].colors
    return [cycle[i % len(cycle)] for i in range(n)]


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _suptitle(fig: Figure, name: str, context: str | None) -> None:
    fig.suptitle(f"{name}: {context}" if context else name)


def _legend(fig: Figure, ax) -> None:
    """The axes' legend entries below the plotting area (never over the data or the title)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    labels = [textwrap.fill(label, 60) for label in labels]
    per_line = fig.get_figwidth() * 17  # characters of 8 pt text across the figure
    fit = int(per_line // (max(len(line) for label in labels for line in label.splitlines()) + 6))
    fig.legend(handles, labels, loc="outside lower center", ncols=max(1, min(3, fit, len(handles))))


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, textwrap.fill(text, 70) if "\n" not in text else text, transform=ax.transAxes,
            ha="center", va="center", fontsize=9, bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9})


def _empty(ax, text: str) -> None:
    """An axes that only carries a note: why there is nothing to draw."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    lines = [textwrap.fill(line, 80) for line in text.splitlines()]
    ax.text(0.5, 0.5, "\n".join(lines), transform=ax.transAxes, ha="center", va="center", fontsize=10)


def _save(fig: Figure, path) -> None:
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="svg", metadata={"Date": None})
