"""The bodies of the workflow's scripts: each takes Snakemake's ``snakemake`` object.

A script in ``workflow/scripts`` is one line that calls one of these, so all logic
stays here, importable and tested.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from mfsweep.io import (
    DamagedFile,
    parquet_rows,
    read_json,
    read_parquet,
    reading,
    write_csv,
    write_json,
    write_npz,
    write_parquet,
)
from mfsweep.pipeline import paths
from mfsweep.pipeline.job import job, provenance
from mfsweep.pipeline.search_jobs import order_of, read_results, with_rung_rounds, write_study
from mfsweep.pipeline.reuse import Trained, TrainedElsewhere, file_digest, training_hash
from mfsweep.records import TrialRecord, read_records, write_records
from mfsweep.rounds import read_round
from mfsweep.trials import UNUSABLE

log = logging.getLogger("mfsweep")


# ----- data and splits --------------------------------------------------------------------
def download(snakemake) -> None:
    from mfsweep import data

    with job(snakemake):
        source = data.download(snakemake.wildcards.name, snakemake.output[0])
        log.info("downloaded %s from %s", snakemake.wildcards.name, source)


def prepare(snakemake) -> None:
    from mfsweep import data

    with job(snakemake, numba_threads=True):
        raw = snakemake.input[0] if len(snakemake.input) else None
        source = snakemake.params.source
        if source["source"] == "movielens":  # whoever put the archive there
            log.info("%s verified: %s", raw, data.verify_archive(source["name"], raw))
        out_dir = Path(snakemake.output.ratings).parent
        summary = data.prepare(source, out_dir, raw=raw)
        log.info("prepared %s: %s", snakemake.wildcards.dataset, summary)


def split(snakemake) -> None:
    from mfsweep import splits

    with job(snakemake, numba_threads=True):
        ratings = read_parquet(snakemake.input[0])
        fold = splits.split_fold(ratings, snakemake.params.settings, int(snakemake.wildcards.fold))
        sizes = splits.write_fold(fold, Path(snakemake.output.train).parent)  # the rule's outputs sit together
        log.info("ratings per part, and rows dropped for users or items unseen in training: %s", sizes)


# ----- training and evaluation ------------------------------------------------------------
# A train or evaluate job handles one unit: a single trial or, with a model's ``batch``
# setting, several trials in turn, so that many small trials do not each pay a process
# start-up. Its files have one shape either way: record.json and metrics.json hold a list
# of records (one a trial), and model.npz each trial's arrays under ``{trial}/``.
def train(snakemake) -> None:
    """A unit's trials; a rung of a halving search (``epochs`` in the unit) also writes each
    trial's checkpoint (state.npz), and continues its promoted trials from theirs."""
    with job(snakemake, numba_threads=True):
        unit = snakemake.params.unit
        data = TrainingData.read(snakemake.input, snakemake.params.evaluation)
        thresholds = snakemake.params.pruning
        digest = file_digest(snakemake.input.train, snakemake.input.valid)
        rung = "epochs" in unit
        elsewhere = None if rung else TrainedElsewhere(snakemake.output.record)  # a rung needs checkpoints
        sources = Checkpoints(snakemake.input.resume) if rung else None
        records, histories, states, checkpoints = [], [], {}, {}
        origin = {**provenance(snakemake.config), "threads": snakemake.threads}
        for trial, params in unit["trials"].items():
            key = training_hash(unit, params, snakemake.params.evaluation, thresholds, digest, snakemake.threads)
            trained = elsewhere.get(trial, key) if elsewhere else None
            if trained is None:
                resume = sources.get(trial, unit["resume"].get(trial)) if rung else None
                trained = train_trial(unit, trial, params, data, snakemake.params.fail_fast, thresholds, resume)
            records.append(replace(trained.record, **origin, training_hash=key))
            histories.append(trained.history)
            if trained.state is not None:
                states[trial] = trained.state
            if trained.checkpoint is not None:
                checkpoints[trial] = trained.checkpoint.to_arrays()
        write_parquet(pd.concat(histories, ignore_index=True), snakemake.output.history)
        write_npz(snakemake.output.model, **model_arrays(states))
        if rung:
            write_npz(snakemake.output.state, **model_arrays(checkpoints))
        write_records(records, snakemake.output.record)


class Checkpoints:
    """The checkpoints (state.npz) of the units a rung's promoted trials continue from, on the
    job's fold (``resume``: their paths)."""

    def __init__(self, resume_paths):
        self.files = {paths.parse(paths.TRIAL, path)["trial"]: path for path in resume_paths}

    def get(self, trial: str, unit: str | None):
        """Trial ``trial``'s checkpoint as unit ``unit`` left it (None: a new trial)."""
        from mfsweep.train import Checkpoint

        if unit is None:
            return None
        path = self.files[unit]
        with reading(path, "a checkpoint archive"), np.load(path) as npz:
            if f"{trial}/history/columns" not in npz.files:
                raise DamagedFile(path, f"{path} holds no checkpoint of trial {trial}, which the round promotes "
                                        f"from it; delete its folder and run snakemake again")
            return Checkpoint.from_arrays(npz, prefix=f"{trial}/")


class TrainingData:
    """What every trial of a train job shares: the parts of the fold, read once."""

    def __init__(self, train_frame, valid_frame, n_users: int, n_items: int, evaluation: dict):
        from mfsweep.matrix import RatingMatrix

        self.train = RatingMatrix.from_frame(train_frame, n_users, n_items)
        self.n_users, self.n_items = n_users, n_items
        self.evaluator = _validation(self.train, valid_frame, evaluation)
        log.info("%d training and %d validation ratings, %d users, %d items",
                 len(train_frame), len(valid_frame), n_users, n_items)

    @classmethod
    def read(cls, inputs, evaluation: dict) -> "TrainingData":
        return cls(read_parquet(inputs.train), read_parquet(inputs.valid),
                   parquet_rows(inputs.users), parquet_rows(inputs.catalog), evaluation)


def train_trial(unit: dict, trial: str, params: dict, data: TrainingData, fail_fast: bool = False,
                thresholds: dict[int, float] | None = None, resume=None) -> Trained:
    """Train one trial; return its record, its history, the model's best state and, for a
    rung of a halving search, its checkpoint.

    An exception inside the model is recorded (stop_reason ``failed`` with the error)
    rather than raised, unless ``fail_fast``: a failing trial must not sink the sweep.
    ``thresholds`` (epoch -> value, from the earlier rounds) prune it. In a rung (``epochs``
    in ``unit``) the trial is trained to the rung's epochs, continuing from ``resume`` (a
    mfsweep.train.Checkpoint) when the rung before trained it; stopped there below
    ``max_epochs``, its stop reason is ``rung``.
    """
    from mfsweep.models import create
    from mfsweep.pruning import Pruner
    from mfsweep.train import Plateau, run_trial
    from mfsweep.trials import RUNG, model_metric

    stopping = unit["early_stopping"]
    metric = model_metric(unit, params)
    described = {"model": unit["model"], "kind": unit["kind"], "trial": trial, "params": params,
                 "max_epochs": unit["max_epochs"], "selection_metric": metric}
    log.info("%s trial %s: params %s", unit["model"], trial, params)
    epochs = unit.get("epochs", unit["max_epochs"])
    try:
        model = create(unit["kind"], **{**params, "epochs": epochs})
        result = run_trial(model, data.train, data.evaluator,
                           Plateau(metric, stopping["patience"], stopping["min_delta"]),
                           pruner=Pruner(metric, thresholds) if thresholds else None, resume=resume)
    except Exception as error:
        if fail_fast:
            raise
        log.error("trial %s failed:\n%s", trial, traceback.format_exc())
        return Trained(TrialRecord.failed(error, **described), pd.DataFrame({"trial": pd.Series([], dtype=str)}), None)
    if result.stop_reason == "max_epochs" and epochs < unit["max_epochs"]:
        result.stop_reason = RUNG
    log.info("trial %s stopped: %s after %d epochs (best epoch %d), %.2f s training", trial,
             result.stop_reason, result.epochs_completed, result.best_epoch, result.train_seconds)
    history = result.history
    history.insert(0, "trial", trial)
    record = TrialRecord(**described, stop_reason=result.stop_reason, error=None,
                         epochs_completed=result.epochs_completed, best_epoch=result.best_epoch,
                         train_seconds=result.train_seconds, cpu_seconds=result.cpu_seconds,
                         validation=result.validation,
                         validation_seconds=float(history["eval_seconds"].sum()) if len(history) else 0.0)
    return Trained(record, history, result.best_state, result.checkpoint if "epochs" in unit else None)


def _validation(train, valid_frame, evaluation: dict):
    from mfsweep.metrics import Evaluator

    if valid_frame.empty:
        log.info("no validation ratings: early stopping on the training loss")
        return None
    return Evaluator(
        train, valid_frame, cutoffs=tuple(evaluation["validation_cutoffs"]),
        relevance_threshold=evaluation["relevance_threshold"], max_users=evaluation["validation_users"], seed=0,
    )


def model_arrays(states: dict[str, dict]) -> dict:
    """The arrays of model.npz: each trial's under ``{trial}/``."""
    return {f"{trial}/{name}": value for trial, state in states.items() for name, value in state.items()}


def evaluate(snakemake) -> None:
    with job(snakemake, numba_threads=True):
        data = TestData.read(snakemake.input)
        evaluated = []
        for record in read_records(snakemake.input.record):
            started = time.perf_counter()
            test = evaluate_trial(record, snakemake.params.evaluation, data, snakemake.input.model)
            evaluated.append(record.with_test(test, time.perf_counter() - started))
        write_records(evaluated, snakemake.output[0])


class TestData:
    """The training ratings (excluded from rankings) and the test part of a fold."""

    def __init__(self, train, test):
        self.train, self.test = train, test

    @classmethod
    def read(cls, inputs) -> "TestData":
        from mfsweep.matrix import RatingMatrix

        train = RatingMatrix.from_frame(read_parquet(inputs.train), parquet_rows(inputs.users), parquet_rows(inputs.catalog))
        return cls(train, read_parquet(inputs.test))


def evaluate_trial(record: TrialRecord, evaluation: dict, data: TestData, model_path) -> dict | None:
    """Test metrics of a trained trial; None for a trial that failed or diverged."""
    from mfsweep.metrics import evaluate as evaluate_model
    from mfsweep.models.base import MFModel

    if record.stop_reason in UNUSABLE or record.best_epoch == 0:
        log.info("trial %s %s: no test metrics", record.trial, record.stop_reason)
        return None
    model = MFModel.load(model_path, prefix=f"{record.trial}/")
    metrics = evaluate_model(model, data.train, data.test, cutoffs=tuple(evaluation["cutoffs"]),
                             relevance_threshold=evaluation["relevance_threshold"])
    log.info("trial %s test metrics: %s", record.trial, metrics)
    return metrics


# ----- summaries ----------------------------------------------------------------------------
def collect(snakemake) -> None:
    """The trial and history tables of a model (with each trial's round and proposal order),
    and the same trials in an Optuna storage for optuna-dashboard."""
    with job(snakemake):
        rounds = [read_round(path) for path in snakemake.input.rounds]
        order = order_of(rounds) if rounds else snakemake.params.order
        trials, histories = read_results(snakemake.input.metrics, snakemake.input.histories, order)
        if any(proposal.rung for proposal in rounds):  # a halving search: which rung trained each epoch
            histories = with_rung_rounds(histories, rounds)
        write_parquet(trials, snakemake.output.trials)
        write_csv(trials, snakemake.output.trials_csv)
        write_parquet(histories, snakemake.output.history)
        log.info("%d trial x fold rows; stop reasons: %s", len(trials), trials["stop_reason"].value_counts().to_dict())
        stored = write_study(trials, histories, snakemake.params.settings, snakemake.output.optuna)
        log.info("%d trials in the Optuna storage %s", stored, snakemake.output.optuna)


def select_best(snakemake) -> None:
    from mfsweep.trials import best_row, model_metric
    from mfsweep.trials import select_best as best_of

    with job(snakemake):
        trials = read_parquet(snakemake.input[0])
        metric = model_metric(snakemake.params.settings)
        best = best_of(trials, metric).to_json()
        write_json(best, snakemake.output.best)
        write_csv(pd.DataFrame([best_row(best)]), snakemake.output.best_csv)
        log.info("best trial %s: %s %s", best["trial"], metric, best["objective"])


# ----- predictions --------------------------------------------------------------------------
def predict(snakemake) -> None:
    from mfsweep.data import read_pairs
    from mfsweep.predict import Catalog, counts, predict_pairs

    with job(snakemake):
        model = best_model(read_json(snakemake.input.best), snakemake.input.models)
        catalog = Catalog.from_tables(read_parquet(snakemake.input.users), read_parquet(snakemake.input.catalog),
                                      read_parquet(snakemake.input.train))
        settings = snakemake.params.settings
        pairs = read_pairs(settings["pairs"], settings.get("sep"), settings.get("columns"), settings.get("header", True))
        table = predict_pairs(model, catalog, pairs)
        write_csv(table, snakemake.output[0])
        tally = counts(table)
        log.info("%d pairs of %s predicted", tally["pairs"], settings["pairs"])
        if tally["fallback"]:
            scored_by = "its biases" if model.biased else "the mean training rating"
            log.warning("%d pairs have a user or item without training ratings (%d unknown users, %d unknown "
                        "items): scored by %s, and flagged in the columns user_known and item_known",
                        tally["fallback"], tally["unknown_user"], tally["unknown_item"], scored_by)


def best_model(best: dict, model_files):
    """The best trial's fold-0 model, from the model.npz of the unit that trained it."""
    from mfsweep.models.base import MFModel

    trial = best["trial"]
    if trial is None:
        raise ValueError(f"model {best['model']} has no usable trial (see its best.json): nothing to predict with")
    for path in model_files:
        with reading(path, "a model archive"), np.load(path) as npz:
            if f"{trial}/kind" in npz.files:
                return MFModel.load(path, prefix=f"{trial}/")
    raise ValueError(f"the best trial {trial} of model {best['model']} left no model on fold 0 (it failed or "
                     f"diverged there); predictions use the fold-0 model")
