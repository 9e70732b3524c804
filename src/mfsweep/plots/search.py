"""The progress of the searches of a dataset and split: best validation value so far."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mfsweep.plots.style import (
    add_legend,
    metric_label,
    palette,
    plural,
    save_svg,
    styled,
    suptitle,
)
from mfsweep.trials import search_progress

#: The x axes of the figure: a column of ``search_progress`` and its label.
PROGRESS_AXES = (("trials", "trials run (in proposal order; a halving search: a trial a rung)"),
                 ("total_epochs", "epochs trained, summed over trials and folds"),
                 ("total_seconds", "training seconds, summed over trials and folds"))


@styled
def plot_search_progress(trials_by_model: Mapping[str, tuple[pd.DataFrame, str]], path,
                         context: str | None = None, histories: Mapping[str, pd.DataFrame] | None = None) -> None:
    """Best validation value so far against trials run, epochs trained (the budget) and
    training seconds, one line a model.

    ``trials_by_model`` maps a model to its trial table and selection metric; models
    with the same metric share a row of panels. Each trial's own value is a faint
    dot; a vertical tick on a line marks the last trial of each round (searches in
    rounds only; a halving search's rounds are its rungs, and its trials are counted
    once a rung, from its ``histories``, see mfsweep.trials.search_progress).
    """
    metrics = list(dict.fromkeys(metric for _, metric in trials_by_model.values()))
    fig = Figure(figsize=(14, 1.0 + 3.2 * len(metrics)), layout="constrained")
    suptitle(fig, "Search progress", context)
    axes = fig.subplots(len(metrics), len(PROGRESS_AXES), squeeze=False)
    colors = dict(zip(trials_by_model, palette(len(trials_by_model))))
    for row, metric in zip(axes, metrics):
        for model, (trials, model_metric) in trials_by_model.items():
            if model_metric == metric:
                progress = search_progress(trials, metric, (histories or {}).get(model))
                _progress_lines(row, model, progress, colors[model])
        row[0].set_ylabel(metric_label(metric))
        for ax, (_, label) in zip(row, PROGRESS_AXES):
            ax.set_xlabel(label)
    add_legend(fig, *axes[:, 0])  # every row's models
    save_svg(fig, path)


def _progress_lines(row, model: str, progress: pd.DataFrame, color) -> None:
    ends = progress.groupby("round")["trials"].max().to_numpy()[:-1] if progress["round"].nunique() > 1 else []
    for ax, (x, _) in zip(row, PROGRESS_AXES):
        ax.scatter(progress[x], progress["value"], s=10, alpha=0.3, color=color, zorder=2)
        ax.plot(progress[x], progress["best"], drawstyle="steps-post", color=color, lw=1.6, zorder=3,
                label=(f"{model} ({progress['trial'].nunique()} trial{plural(progress['trial'].nunique())}, "
                       f"{progress['round'].nunique()} round{plural(progress['round'].nunique())})") if ax is row[0] else None)
        closing = progress[progress["trials"].isin(ends)]
        ax.plot(closing[x], closing["best"], ls="none", marker="|", ms=14, mew=2, color=color, zorder=4,
                label="end of a round" if ax is row[0] and len(ends) and not _has_label(ax) else None)
    if not np.isfinite(progress["value"]).any():
        row[0].text(0.02, 0.95, f"{model}: no usable trial", transform=row[0].transAxes, va="top", fontsize=8)


def _has_label(ax) -> bool:
    return "end of a round" in ax.get_legend_handles_labels()[1]
