"""The bodies of the workflow's scripts: each takes Snakemake's ``snakemake`` object.

A script in ``workflow/scripts`` is one line that calls one of these, so all logic
stays here, importable and tested.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import traceback
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

import mfsweep
from mfsweep.io import read_json, write_json, write_npz, write_parquet

log = logging.getLogger("mfsweep")


@contextlib.contextmanager
def job(snakemake):
    """Log to the rule's log file, give numba the rule's threads, and log any failure."""
    handler = logging.FileHandler(snakemake.log[0], mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    set_threads(snakemake.threads)
    try:
        yield
    except BaseException:
        log.error("job failed:\n%s", traceback.format_exc())
        raise
    finally:
        root.removeHandler(handler)
        handler.close()


def set_threads(threads: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


def provenance(config: dict) -> dict:
    """Package version, git commit (when there is one) and config hash of a result."""
    from mfsweep.workflow import config_hash

    return {"version": mfsweep.__version__, "commit": git_commit(), "config_hash": config_hash(config)}


def git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def num_rows(path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


# ----- data and splits --------------------------------------------------------------------
def download(snakemake) -> None:
    from mfsweep import data

    with job(snakemake):
        source = data.download(snakemake.wildcards.name, snakemake.output[0])
        log.info("downloaded %s from %s", snakemake.wildcards.name, source)


def prepare(snakemake) -> None:
    from mfsweep import data

    with job(snakemake):
        raw = snakemake.input[0] if len(snakemake.input) else None
        out_dir = Path(snakemake.output.ratings).parent
        summary = data.prepare(snakemake.params.source, out_dir, raw=raw)
        log.info("prepared %s: %s", snakemake.wildcards.dataset, summary)


def split(snakemake) -> None:
    from mfsweep import splits

    with job(snakemake):
        ratings = pd.read_parquet(snakemake.input[0])
        fold = splits.split_fold(ratings, snakemake.params.settings, int(snakemake.wildcards.fold))
        for part in ("train", "valid", "test"):
            write_parquet(getattr(fold, part), snakemake.output[part])
            log.info("%s: %d ratings", part, len(getattr(fold, part)))
        log.info("rows dropped for users or items unseen in training: %s", fold.dropped)


# ----- training and evaluation ------------------------------------------------------------
def train(snakemake) -> None:
    with job(snakemake):
        settings = snakemake.params.settings
        record = train_trial(
            settings,
            snakemake.params.evaluation,
            snakemake.input,
            snakemake.output,
            fail_fast=snakemake.params.fail_fast,
        )
        record.update(provenance(snakemake.config), threads=snakemake.threads)
        write_json(record, snakemake.output.record)


def train_trial(settings: dict, evaluation: dict, inputs, outputs, fail_fast: bool = False) -> dict:
    """Train one trial on one fold; write its history and model; return its record.

    An exception inside the model is recorded (stop_reason ``failed`` with the error)
    rather than raised, unless ``fail_fast``.
    """
    from mfsweep.models import create
    from mfsweep.train import Plateau, run_trial, selection_metric

    record = {key: settings[key] for key in ("model", "kind", "trial", "params", "max_epochs")}
    stopping = settings["early_stopping"]
    metric = stopping.get("metric") or selection_metric(settings["kind"])
    model = create(settings["kind"], **{**settings["params"], "epochs": settings["max_epochs"]})
    n_users, n_items = num_rows(inputs.users), num_rows(inputs.catalog)
    try:
        train_frame = pd.read_parquet(inputs.train)
        valid_frame = pd.read_parquet(inputs.valid)
        log.info("%s trial %s: %d training and %d validation ratings, %d users, %d items; params %s",
                 settings["model"], settings["trial"], len(train_frame), len(valid_frame), n_users, n_items,
                 settings["params"])
        evaluator = _validation(train_frame, valid_frame, evaluation, n_users, n_items)
        result = run_trial(model, train_frame, evaluator, Plateau(metric, stopping["patience"], stopping["min_delta"]),
                           n_users, n_items)
    except Exception as error:  # a failing trial must not sink the sweep
        if fail_fast:
            raise
        log.error("trial failed:\n%s", traceback.format_exc())
        write_parquet(pd.DataFrame({"epoch": pd.Series([], dtype="int64")}), outputs.history)
        write_npz(outputs.model, **model.state())
        return {**record, "stop_reason": "failed", "error": f"{type(error).__name__}: {error}",
                "epochs_completed": 0, "best_epoch": 0, "train_seconds": 0.0, "cpu_seconds": 0.0,
                "selection_metric": metric, "validation": {}}
    write_parquet(result.history, outputs.history)
    write_npz(outputs.model, **(result.best_state or model.state()))
    log.info("stopped: %s after %d epochs (best epoch %d), %.2f s training",
             result.stop_reason, result.epochs_completed, result.best_epoch, result.train_seconds)
    return {**record, "stop_reason": result.stop_reason, "error": None,
            "epochs_completed": result.epochs_completed, "best_epoch": result.best_epoch,
            "train_seconds": result.train_seconds, "cpu_seconds": result.cpu_seconds,
            "selection_metric": metric, "validation": result.validation}


def _validation(train_frame, valid_frame, evaluation: dict, n_users: int, n_items: int):
    from mfsweep.matrix import RatingMatrix
    from mfsweep.metrics import Evaluator

    if valid_frame.empty:
        log.info("no validation ratings: early stopping on the training loss")
        return None
    return Evaluator(
        RatingMatrix.from_frame(train_frame, n_users, n_items), valid_frame,
        cutoffs=tuple(evaluation["validation_cutoffs"]), relevance_threshold=evaluation["relevance_threshold"],
        max_users=evaluation["validation_users"], seed=0,
    )


def evaluate(snakemake) -> None:
    with job(snakemake):
        record = read_json(snakemake.input.record)
        record["test"] = evaluate_trial(record, snakemake.params.evaluation, snakemake.input)
        write_json(record, snakemake.output[0])


def evaluate_trial(record: dict, evaluation: dict, inputs) -> dict | None:
    """Test metrics of a trained trial; None for a trial that failed or diverged."""
    from mfsweep.matrix import RatingMatrix
    from mfsweep.metrics import evaluate as evaluate_model
    from mfsweep.models.base import MFModel

    if record["stop_reason"] in ("failed", "diverged") or record["best_epoch"] == 0:
        log.info("trial %s %s: no test metrics", record["trial"], record["stop_reason"])
        return None
    model = MFModel.load(inputs.model)
    train_matrix = RatingMatrix.from_frame(pd.read_parquet(inputs.train), num_rows(inputs.users), num_rows(inputs.catalog))
    test = pd.read_parquet(inputs.test)
    metrics = evaluate_model(model, train_matrix, test, cutoffs=tuple(evaluation["cutoffs"]),
                             relevance_threshold=evaluation["relevance_threshold"])
    log.info("test metrics: %s", metrics)
    return metrics


# ----- summaries ----------------------------------------------------------------------------
def collect(snakemake) -> None:
    from mfsweep.analysis import collect_histories, collect_trials

    with job(snakemake):
        trials = collect_trials(snakemake.input.metrics)
        write_parquet(trials, snakemake.output.trials)
        write_parquet(collect_histories(snakemake.input.histories), snakemake.output.history)
        log.info("%d trial x fold rows; stop reasons: %s", len(trials), trials["stop_reason"].value_counts().to_dict())


def select_best(snakemake) -> None:
    from mfsweep.analysis import select_best as best_of
    from mfsweep.train import selection_metric

    with job(snakemake):
        trials = pd.read_parquet(snakemake.input[0])
        model = snakemake.config["models"][snakemake.wildcards.model]
        metric = model["early_stopping"].get("metric") or selection_metric(model["kind"])
        best = best_of(trials, metric)
        write_json(best, snakemake.output[0])
        log.info("best trial %s: %s %s", best["trial"], metric, best["objective"])
