"""The bodies of the plotting rules' scripts (workflow/rules/plots.smk): each takes ``snakemake``.

Per model (wildcards dataset, split, model; ``params.settings`` is the model's
validated config): embedding size, learning parameters, iteration completion and
folds. Per dataset and split, across the models of the experiments: the
comparison (table and figure) and the cost figure.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib
import pandas as pd

from mfsweep import plots
from mfsweep.io import read_json, write_parquet
from mfsweep.jobs import job
from mfsweep.train import model_metric

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


def plot_embedding_size(snakemake) -> None:
    with job(snakemake):
        settings = snakemake.params.settings
        plots.plot_embedding_size(_trials(snakemake), snakemake.output[0], model_metric(settings),
                                  context=model_context(snakemake.wildcards))


def plot_learning_parameters(snakemake) -> None:
    with job(snakemake):
        settings = snakemake.params.settings
        plots.plot_learning_parameters(_trials(snakemake), snakemake.output[0], model_metric(settings),
                                       space=settings.get("params"), context=model_context(snakemake.wildcards))


def plot_iteration_completion(snakemake) -> None:
    with job(snakemake):
        settings = snakemake.params.settings
        best = read_json(snakemake.input.best)
        history = pd.read_parquet(snakemake.input.history)
        plots.plot_iteration_completion(_trials(snakemake), history, snakemake.output[0], model_metric(settings),
                                        best=best.get("trial"), max_epochs=settings.get("max_epochs"),
                                        context=model_context(snakemake.wildcards))


def plot_folds(snakemake) -> None:
    with job(snakemake):
        settings = snakemake.params.settings
        plots.plot_folds(_trials(snakemake), snakemake.output[0], model_metric(settings),
                         context=model_context(snakemake.wildcards))


def plot_comparison(snakemake) -> None:
    with job(snakemake):
        if not snakemake.input.best:
            raise ValueError(f"no experiment runs a model on {split_context(snakemake.wildcards)}: nothing to compare")
        frame = plots.compare(read_json(path) for path in snakemake.input.best)
        write_parquet(frame, snakemake.output.table)
        plots.plot_comparison(frame, snakemake.output.figure, context=split_context(snakemake.wildcards))
        log.info("compared %d models: %s", len(frame), frame["model"].tolist())


def plot_cost(snakemake) -> None:
    with job(snakemake):
        if not snakemake.input.trials:
            raise ValueError(f"no experiment runs a model on {split_context(snakemake.wildcards)}: no cost to draw")
        by_model = {Path(path).parent.name: pd.read_parquet(path) for path in snakemake.input.trials}
        plots.plot_cost(by_model, snakemake.output[0], context=split_context(snakemake.wildcards))
        log.info("cost of %d models: %s", len(by_model), list(by_model))
