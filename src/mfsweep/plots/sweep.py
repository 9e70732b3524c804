"""The figures of one model's sweep: embedding size, learning parameters, iteration
completion and folds."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mfsweep.plots.style import (
    EMBEDDING,
    MARKS,
    REASON_COLORS,
    add_legend,
    add_note,
    curve_label,
    empty_panel,
    folds_text,
    log2_axis,
    mark_selected,
    mark_unusable,
    metric_label,
    no_usable_text,
    palette,
    parameter_axis,
    plural,
    save_svg,
    styled,
    suptitle,
    trial_label,
    untuned_text,
)
from mfsweep.trials import (
    RATING_METRICS,
    VALID,
    best_trial,
    completion_summary,
    rank,
    rating_rows,
    trial_table,
    tuned_parameters,
    usable,
)
from mfsweep.values import number_text

# ----- figures -------------------------------------------------------------------------------
#: The metrics the embedding-size figure has a panel for besides the selection metric (rating metrics
#: only for models whose predictions are ratings).
EMBEDDING_METRICS = ("RMSE", "NDCG", "RecipRank", "RBP")


def embedding_metrics(trials: pd.DataFrame, metric: str) -> list[str]:
    """The selection ``metric``, then each of ``EMBEDDING_METRICS`` the trials have a validation value of."""
    implicit = not rating_rows(trials).all() if "kind" in trials else False
    extra = [m for m in EMBEDDING_METRICS if m != metric and f"{VALID}{m}" in trials
             and trials[f"{VALID}{m}"].notna().any() and not (implicit and m in RATING_METRICS)]
    return [metric, *extra]


@styled
def plot_embedding_size(trials: pd.DataFrame, path, metric: str, context: str | None = None) -> None:
    """Validation metrics against embedding size (log2 x): every trial a point, the best per size a line.

    One panel a metric: the selection ``metric`` first, then RMSE (rating models),
    NDCG, RecipRank and RBP where recorded; the selected trial (by ``metric``) is
    starred in each.
    """
    table = trial_table(trials, metric)
    metrics = embedding_metrics(trials, metric) if EMBEDDING in table else [metric]
    ncols = min(2, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig = Figure(figsize=(7.5 if ncols == 1 else 12.5, 4.4 if nrows == 1 else 3.6 * nrows + 0.8),
                 layout="constrained")
    suptitle(fig, "Embedding size", context)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    selected = best_trial(table, metric)
    for ax, name in zip(axes, metrics):
        _embedding_panel(ax, trials, name, selected, selection=name == metric and len(metrics) > 1)
    for ax in axes[len(metrics):]:
        ax.set_axis_off()
    add_legend(fig, axes[0])
    save_svg(fig, path)


def _embedding_panel(ax, trials: pd.DataFrame, metric: str, selected: str | None, selection: bool) -> None:
    table = trial_table(trials, metric)
    which = " (selection metric)" if selection else ""
    ax.set_title(f"validation {metric}{which} against embedding size ({len(table)} trial{plural(len(table))})")
    if EMBEDDING not in table:
        return empty_panel(ax, "No embedding_size parameter in these trials: nothing to draw against it.")
    ok = usable(table)
    log2_axis(ax, table[EMBEDDING].astype(float).to_numpy())
    if not ok.empty:
        ax.scatter(ok[EMBEDDING], ok["mean"], s=26, alpha=0.75, color="tab:blue", zorder=3,
                   label=f"trial (mean over {folds_text(table)})")
        best = rank(ok, metric).drop_duplicates(EMBEDDING).sort_values(EMBEDDING)
        ax.plot(best[EMBEDDING], best["mean"], "-", color="tab:orange", lw=1.6, zorder=2, label="best trial per size")
        chosen = ok[ok["trial"] == selected]
        ax.plot(chosen[EMBEDDING], chosen["mean"], "*", ms=15, color="gold", markeredgecolor="black", zorder=5,
                label=f"selected trial {selected}")
    mark_unusable(ax, table, lambda rows: rows[EMBEDDING].astype(float).to_numpy())
    if ok.empty:
        add_note(ax, no_usable_text(table, metric))
        ax.set_yticks([])
    ax.set_xlabel("embedding size (factors per user and item; log2 scale)")
    ax.set_ylabel(metric_label(metric))


@styled
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
        suptitle(fig, "Learning parameters", context)
        ax = fig.add_subplot()
        ax.set_title(f"validation {metric} against each tuned parameter")
        empty_panel(ax, untuned_text(trials, skipped))
        return save_svg(fig, path)
    ncols = min(3, len(tuned))
    nrows = math.ceil(len(tuned) / ncols)
    fig = Figure(figsize=(3.9 * ncols + 2.2, 3.3 * nrows + 0.6), layout="constrained")
    suptitle(fig, "Learning parameters", context)
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False)
    ok = usable(table)
    for ax, column in zip(axes.ravel(), tuned):
        x_of = parameter_axis(ax, column, table[column], space)
        if not ok.empty:
            ax.scatter(x_of(ok), ok["mean"], s=24, alpha=0.75, color="tab:blue", zorder=3,
                       label=f"trial (mean over {folds_text(table)})")
        mark_selected(ax, ok, column, metric, x_of)
        mark_unusable(ax, table, x_of)
        ax.set_title(column.removeprefix("param."))
        if ok.empty:
            add_note(ax, no_usable_text(table, metric))
            ax.set_yticks([])
    for ax in axes.ravel()[len(tuned):]:
        ax.set_axis_off()
    for ax in axes[:, 0]:
        ax.set_ylabel(metric_label(metric))
    add_legend(fig, axes.ravel()[0])
    save_svg(fig, path)


@styled
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
    suptitle(fig, "Iteration completion", context)
    left, middle, right = fig.subplots(1, 3)
    _epochs_histogram(left, trials, max_epochs)
    _best_curve(middle, trials, history, best, column)
    _longest_curves(right, table, history, column, top)
    save_svg(fig, path)



@styled
def plot_folds(trials: pd.DataFrame, path, metric: str, top: int = 10, context: str | None = None) -> None:
    """Spread of validation ``metric`` across folds for the ``top`` trials by mean (best at the top)."""
    table = trial_table(trials, metric)
    ranked = rank(usable(table), metric).head(top)
    folds = sorted(trials["fold"].unique())
    fig = Figure(figsize=(8.5, 1.7 + 0.5 * max(len(ranked), 2)), layout="constrained")
    suptitle(fig, "Spread across folds", context)
    ax = fig.add_subplot()
    spread = "one fold: one point per trial, no spread" if len(folds) == 1 else f"{len(folds)} folds: min to max"
    ax.set_title(f"top {len(ranked)} trial{plural(len(ranked))} by mean validation {metric} ({spread})")
    if ranked.empty:
        empty_panel(ax, no_usable_text(table, metric))
        return save_svg(fig, path)
    column = f"valid.{metric}"
    rows = {trial: position for position, trial in enumerate(ranked["trial"])}
    chosen = trials[trials["trial"].isin(rows)]
    if len(folds) > 1:
        ax.hlines([rows[t] for t in ranked["trial"]], ranked["min"], ranked["max"], color="gray", lw=4, alpha=0.35,
                  zorder=1, label="min to max over folds")
    for color, fold in zip(palette(len(folds)), folds):
        part = chosen[chosen["fold"] == fold]
        ax.scatter(part[column], part["trial"].map(rows), s=28, color=color, zorder=3, label=f"fold {fold}")
    ax.plot(ranked["mean"], range(len(ranked)), "|", ms=16, mew=2, color="black", zorder=4, label="mean over folds")
    tuned = tuned_parameters(trials)
    ax.set_yticks(range(len(ranked)), labels=[trial_label(row, tuned) for _, row in ranked.iterrows()])
    ax.set_ylim(len(ranked) - 0.5, -0.5)
    ax.set_ylabel("trial (ranked, best first)")
    ax.set_xlabel(metric_label(metric, over_folds=False))
    for status, (marker, color) in MARKS.items():
        count = int((table["status"] == status).sum())
        if count:
            ax.plot([], [], marker, color=color, mew=2, ls="none",
                    label=f"{status}: {count} trial{plural(count)}, not ranked")
    add_legend(fig, ax)
    save_svg(fig, path)



# ----- panels --------------------------------------------------------------------------------
def _epochs_histogram(ax, trials: pd.DataFrame, max_epochs: int | None) -> None:
    epochs = trials["epochs_completed"].fillna(0).astype(int).to_numpy()
    reasons = trials["stop_reason"].astype(str).to_numpy()
    summary = completion_summary(trials).set_index("stop_reason")
    last = int(max(epochs.max(initial=0), max_epochs or 0))
    bottom = np.zeros(last + 1)
    order = [r for r in REASON_COLORS if r in reasons] + sorted(set(reasons) - set(REASON_COLORS))
    for reason in order:
        counts = np.bincount(epochs[reasons == reason], minlength=last + 1)
        ax.bar(np.arange(last + 1), counts, bottom=bottom, width=0.8, color=REASON_COLORS.get(reason, "tab:brown"),
               label=f"{reason} ({int(counts.sum())}; {epochs_text(summary.loc[reason])})")
        bottom += counts
    everything = summary.loc["all"]
    ax.axvline(everything["mean"], ls="-", lw=1.4, color="black", label=f"mean over all runs: {everything['mean']:.1f}")
    if max_epochs:
        ax.axvline(max_epochs, ls="--", lw=1, color="black", label=f"max_epochs = {max_epochs}")
    ax.set_title(f"epochs completed ({len(trials)} trial x fold runs; {epochs_text(everything)})")
    ax.set_xlabel("epochs completed")
    ax.set_ylabel("runs (trial x fold)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(title="stop reason (runs; epochs completed)", loc="upper left", fontsize=7)


def epochs_text(row: pd.Series) -> str:
    return f"mean {row['mean']:.1f}, median {number_text(row['median'])}"


def _best_curve(ax, trials: pd.DataFrame, history: pd.DataFrame, best: str | None, column: str) -> None:
    ax.set_title(f"selected trial {best}: validation {column} by epoch" if best else "selected trial")
    rows = history[history["trial"] == best] if best is not None else history.iloc[:0]
    rows = rows[rows[column].notna()] if column in rows else rows.iloc[:0]
    if rows.empty:
        text = "No usable trial: every trial diverged or failed." if best is None else f"No history for trial {best}."
        return empty_panel(ax, text)
    records = trials[trials["trial"] == best].set_index("fold")
    for color, (fold, part) in zip(palette(rows["fold"].nunique()), rows.groupby("fold")):
        ax.plot(part["epoch"], part[column], "-o", ms=3, color=color, label=f"fold {fold}")
        best_epoch = records["best_epoch"].get(fold) if "best_epoch" in records else None
        if best_epoch is not None and best_epoch in set(part["epoch"]):
            value = part.loc[part["epoch"] == best_epoch, column].iloc[0]
            ax.plot([best_epoch], [value], "*", ms=13, color=color, markeredgecolor="black", zorder=4)
    ax.plot([], [], "*", ms=11, color="white", markeredgecolor="black", label="best epoch (kept model)")
    ax.set_xlabel("epoch")
    ax.set_ylabel(curve_label(column))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="best")


def _longest_curves(ax, table: pd.DataFrame, history: pd.DataFrame, column: str, top: int) -> None:
    ran = table[table["epochs_completed"] > 0].sort_values("epochs_completed", ascending=False, kind="stable")
    chosen = ran.head(top)
    ax.set_title(f"the {len(chosen)} longest-running trials: validation {column} by epoch")
    if chosen.empty or column not in history:
        return empty_panel(ax, "No trial completed an epoch.")
    diverged_shown = False
    for color, (_, trial) in zip(palette(len(chosen)), chosen.iterrows()):
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
    ax.set_ylabel(curve_label(column))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2, title="trial (epochs, stop reason)")

