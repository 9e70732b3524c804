"""The analysis figures of a sweep, written as SVG files.

Every function draws on its own ``matplotlib.figure.Figure`` (the object API: no
pyplot, no global backend state, safe under any backend) and writes one SVG
atomically. Trials that diverged or failed are never dropped silently: they are
drawn as crosses at the top of the axis at their parameter value (red: diverged,
gray: failed) and counted in the legend.

Inputs are the summary tables of ``mfsweep.trials``: ``trials`` (one row a
trial x fold: ``stop_reason``, ``epochs_completed``, ``train_seconds``,
``param.<name>``, ``valid.<metric>``, ``test.<metric>``) and ``history`` (one row
an epoch of a trial x fold, validation metrics by name).
"""

from mfsweep.plots.curves import plot_training_curves
from mfsweep.plots.models import plot_comparison, plot_cost
from mfsweep.plots.search import plot_search_progress
from mfsweep.plots.style import is_log_axis, metric_label
from mfsweep.plots.sweep import (
           plot_embedding_size,
           plot_folds,
           plot_iteration_completion,
           plot_learning_parameters,
)
from mfsweep.plots.tuning import plot_importance, plot_parallel_coordinates

__all__ = ["is_log_axis", "metric_label", "plot_comparison", "plot_cost", "plot_embedding_size", "plot_folds",
           "plot_importance", "plot_iteration_completion", "plot_learning_parameters", "plot_parallel_coordinates",
           "plot_search_progress", "plot_training_curves"]
