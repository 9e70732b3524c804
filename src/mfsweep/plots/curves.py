"""The selected trial's training curves: its validation curve as the mean over folds with
the min-max band beside the per-fold lines, and its training loss split into its parts."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mfsweep.plots.style import (
    curve_label,
    empty_panel,
    palette,
    plain_log_y,
    save_svg,
    styled,
    suptitle,
)
from mfsweep.trials import best_trial, fold_band, loss_parts, trial_table

TOTAL = "train_loss"


@styled
def plot_training_curves(trials: pd.DataFrame, history: pd.DataFrame, path, metric: str, best: str | None = None,
                         context: str | None = None) -> None:
    """Left: the selected trial's validation ``metric`` by epoch, each fold a line, the mean over folds and
    the min-max band. Right: its training loss and each ``loss_*`` part by epoch (mean over folds), with
    the validation ``metric`` on a second axis.

    ``best`` is the selected trial (``best.json``'s ``trial``); by default the usable
    trial with the best mean validation ``metric``.
    """
    best = best if best is not None else best_trial(trial_table(trials, metric), metric)
    fig = Figure(figsize=(13, 4.8), layout="constrained")
    suptitle(fig, "Training curves of the selected trial", context)
    left, right = fig.subplots(1, 2)
    rows = history[history["trial"] == best] if best is not None else history.iloc[:0]
    if rows.empty:
        text = "No usable trial: every trial diverged or failed." if best is None else f"No history for trial {best}."
        for ax in (left, right):
            empty_panel(ax, text)
        return save_svg(fig, path)
    _fold_band_panel(left, rows, best, metric)
    _loss_parts_panel(right, rows, best, metric)
    save_svg(fig, path)


def _fold_band_panel(ax, rows: pd.DataFrame, best: str, metric: str) -> None:
    folds = rows["fold"].nunique()
    ax.set_title(f"trial {best}: validation {metric} by epoch over {folds} fold{'' if folds == 1 else 's'}")
    if metric not in rows or rows[metric].isna().all():
        return empty_panel(ax, f"No validation {metric} recorded for trial {best}.")
    for color, (fold, part) in zip(palette(folds), rows.groupby("fold")):
        ax.plot(part["epoch"], part[metric], "-", lw=1, alpha=0.7, color=color, label=f"fold {fold}")
    band = fold_band(rows, best, metric)
    ax.fill_between(band["epoch"], band["min"], band["max"], color="gray", alpha=0.3, lw=0,
                    label="min to max over folds")
    ax.plot(band["epoch"], band["mean"], "-", lw=2.4, color="black", label="mean over folds")
    partial = band[band["folds"] < folds]
    if not partial.empty:
        ax.axvline(partial["epoch"].iloc[0] - 0.5, ls=":", lw=1, color="gray",
                   label=f"from epoch {partial['epoch'].iloc[0]}: fewer folds (stopped early)")
    ax.set_xlabel("epoch")
    ax.set_ylabel(curve_label(metric))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="best", fontsize=7)


def _loss_parts_panel(ax, rows: pd.DataFrame, best: str, metric: str) -> None:
    parts = loss_parts(rows)
    columns = [c for c in (TOTAL, *parts) if c in rows and rows[c].notna().any()]
    title = f"trial {best}: training loss" + (" and its parts" if parts else "")
    ax.set_title(f"{title} by epoch (mean over folds)")
    if not columns:
        return empty_panel(ax, f"No training loss recorded for trial {best}.")
    means = rows.groupby("epoch")[columns].mean()
    for color, column in zip(palette(len(columns)), columns):
        label = "total training loss" if column == TOTAL else column.removeprefix("loss_") + " part"
        ax.plot(means.index, means[column], "-o" if column == TOTAL else "--", ms=3, lw=2 if column == TOTAL else 1.4,
                color=color, label=label)
    if (means > 0).all().all():
        plain_log_y(ax)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (mean over folds" + ("; log scale)" if ax.get_yscale() == "log" else ")"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not parts:
        ax.text(0.5, 0.97, "only the total is recorded: this model's history has no loss_* parts",
                transform=ax.transAxes, ha="center", va="top", fontsize=8,
                bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9})
    handles, labels = ax.get_legend_handles_labels()
    if metric in rows and rows[metric].notna().any():
        twin = ax.twinx()
        twin.grid(False)
        valid = rows.groupby("epoch")[metric].mean()
        line, = twin.plot(valid.index, valid.to_numpy(), "-", lw=1.6, color="black", alpha=0.6)
        twin.set_ylabel(curve_label(metric))
        handles, labels = [*handles, line], [*labels, f"validation {metric} (right axis)"]
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=3, fontsize=7)
