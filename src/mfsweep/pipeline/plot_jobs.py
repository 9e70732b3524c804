"""The bodies of the plotting rules' scripts (workflow/rules/plots.smk): each takes ``snakemake``.

Per model (wildcards dataset, split, model; ``params.settings`` is the model's
validated config): embedding size, learning parameters, iteration completion,
folds, parallel coordinates, parameter importance and the selected trial's
training curves. Per dataset and split, across the models of the experiments: the
comparison (table and figure), the cost figure and the search progress. ``draw`` runs the one that
``params.figure`` names (see ``mfsweep.pipeline.figures``).
"""

from __future__ import annotations

import logging

import matplotlib
import pandas as pd

from mfsweep import plots
from mfsweep.io import read_json, read_parquet, write_parquet
from mfsweep.pipeline import paths
from mfsweep.pipeline.job import job
from mfsweep.trials import compare, model_metric

matplotlib.use("Agg")  # a job has no display; the figures are SVG files drawn on Figure objects

log = logging.getLogger("mfsweep.plots")


def model_context(wildcards) -> str:
    return f"{wildcards.model} on {wildcards.dataset} / {wildcards.split}"


def split_context(wildcards) -> str:
    return f"{wildcards.dataset} / {wildcards.split}"


def _trials(snakemake) -> pd.DataFrame:
    trials = read_parquet(snakemake.input.trials)
    log.info("%s: %d trial x fold rows; stop reasons %s", snakemake.input.trials, len(trials),
             trials["stop_reason"].value_counts().to_dict())
    return trials


def model_figure(snakemake, draw, extra=lambda snakemake: {}) -> None:
    """Draw one model's figure under the job's log: ``draw(trials, path, metric, context=..., **extra(snakemake))``."""
    with job(snakemake):
        metric = model_metric(snakemake.params.settings)
        draw(_trials(snakemake), snakemake.output[0], metric, context=model_context(snakemake.wildcards),
             **extra(snakemake))


def plot_embedding_size(snakemake) -> None:
    model_figure(snakemake, plots.plot_embedding_size)


def space(job) -> dict:
    return {"space": job.params.settings.get("params")}


def selected_history(job) -> dict:
    return {"history": read_parquet(job.input.history), "best": read_json(job.input.best).get("trial")}


def plot_learning_parameters(snakemake) -> None:
    model_figure(snakemake, plots.plot_learning_parameters, space)


def plot_iteration_completion(snakemake) -> None:
    model_figure(snakemake, _with_history(plots.plot_iteration_completion),
                 lambda job: {**selected_history(job), "max_epochs": job.params.settings.get("max_epochs")})


def plot_parallel_coordinates(snakemake) -> None:
    model_figure(snakemake, plots.plot_parallel_coordinates, space)


def plot_importance(snakemake) -> None:
    model_figure(snakemake, plots.plot_importance, space)


def plot_training_curves(snakemake) -> None:
    model_figure(snakemake, _with_history(plots.plot_training_curves), selected_history)


def _with_history(plot):
    """``plot(trials, history, path, metric, ...)`` called as ``draw(trials, path, metric, history=...)``."""

    def draw(trials, path, metric, *, history, **options) -> None:
        plot(trials, history, path, metric, **options)

    return draw


def plot_folds(snakemake) -> None:
    model_figure(snakemake, plots.plot_folds)


def plot_comparison(snakemake) -> None:
    with job(snakemake):
        if not snakemake.input.best:
            raise ValueError(f"no experiment runs a model on {split_context(snakemake.wildcards)}: nothing to compare")
        frame = compare(read_json(path) for path in snakemake.input.best)
        write_parquet(frame, snakemake.output.table)
        plots.plot_comparison(frame, snakemake.output.figure, context=split_context(snakemake.wildcards))
        log.info("compared %d models: %s", len(frame), frame["model"].tolist())


def plot_cost(snakemake) -> None:
    with job(snakemake):
        if not snakemake.input.trials:
            raise ValueError(f"no experiment runs a model on {split_context(snakemake.wildcards)}: no cost to draw")
        by_model = {paths.model_of(path): read_parquet(path) for path in snakemake.input.trials}
        plots.plot_cost(by_model, snakemake.output[0], context=split_context(snakemake.wildcards))
        log.info("cost of %d models: %s", len(by_model), list(by_model))


def plot_search_progress(snakemake) -> None:
    with job(snakemake):
        if not snakemake.input.trials:
            raise ValueError(f"no experiment runs a model on {split_context(snakemake.wildcards)}: no search to draw")
        metrics = {paths.model_of(path): read_json(path)["selection_metric"] for path in snakemake.input.best}
        by_model = {model: (read_parquet(path), metrics[model])
                    for model, path in ((paths.model_of(path), path) for path in snakemake.input.trials)}
        histories = {paths.model_of(path): read_parquet(path) for path in snakemake.input.history}
        plots.plot_search_progress(by_model, snakemake.output[0], context=split_context(snakemake.wildcards),
                                   histories=histories)
        log.info("search progress of %d models: %s", len(by_model), list(by_model))


def draw(snakemake) -> None:
    """The body of the figure named by ``params.figure``."""
    from mfsweep.pipeline import report_jobs

    name = snakemake.params.figure
    body = globals().get(f"plot_{name}") or getattr(report_jobs, name)
    body(snakemake)
