"""The bodies of the plotting rules' scripts (workflow/rules/plots.smk): each takes ``snakemake``.

Per model (wildcards dataset, split, model; ``params.settings`` is the model's
validated config): embedding size, learning parameters, iteration completion and
folds. Per dataset and split, across the models of the experiments: the
comparison (table and figure), the cost figure and the search progress. ``draw`` runs the one that
``params.figure`` names (see ``mfsweep.pipeline.figures``).
"""

from __future__ import annotations

import logging

import matplotlib
import pandas as pd

from mfsweep import plots
from mfsweep.io import read_json, write_parquet
from mfsweep.pipeline import paths
from mfsweep.pipeline.jobs import job
from mfsweep.trials import compare, model_metric

matplotlib.use("Agg")  # a job has no display; the figures are SVG files drawn on Figure objects

log = logging.getLogger("mfsweep.plots")


def model_context(wildcards) -> str:
    return f"{wildcards.model} on {wildcards.dataset} / {wildcards.split}"


def split_context(wildcards) -> str:
    return f"{wildcards.dataset} / {wildcards.split}"


def _trials(snakemake) -> pd.DataFrame:
    trials = pd.read_parquet(snakemake.input.trials)
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


def plot_learning_parameters(snakemake) -> None:
    model_figure(snakemake, plots.plot_learning_parameters, lambda job: {"space": job.params.settings.get("params")})


def plot_iteration_completion(snakemake) -> None:
    def extra(job) -> dict:
        return {"history": pd.read_parquet(job.input.history), "best": read_json(job.input.best).get("trial"),
                "max_epochs": job.params.settings.get("max_epochs")}

    model_figure(snakemake, _iteration_completion, extra)


def _iteration_completion(trials, path, metric, *, history, **options) -> None:
    plots.plot_iteration_completion(trials, history, path, metric, **options)


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
        by_model = {paths.model_of(path): pd.read_parquet(path) for path in snakemake.input.trials}
        plots.plot_cost(by_model, snakemake.output[0], context=split_context(snakemake.wildcards))
        log.info("cost of %d models: %s", len(by_model), list(by_model))


def plot_search_progress(snakemake) -> None:
    with job(snakemake):
        if not snakemake.input.trials:
            raise ValueError(f"no experiment runs a model on {split_context(snakemake.wildcards)}: no search to draw")
        metrics = {paths.model_of(path): read_json(path)["selection_metric"] for path in snakemake.input.best}
        by_model = {paths.model_of(path): (pd.read_parquet(path), metrics[paths.model_of(path)])
                    for path in snakemake.input.trials}
        plots.plot_search_progress(by_model, snakemake.output[0], context=split_context(snakemake.wildcards))
        log.info("search progress of %d models: %s", len(by_model), list(by_model))


def draw(snakemake) -> None:
    """The body of the figure named by ``params.figure``."""
    from mfsweep.pipeline import report_jobs

    name = snakemake.params.figure
    body = globals().get(f"plot_{name}") or getattr(report_jobs, name)
    body(snakemake)
