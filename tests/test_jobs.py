"""The train and evaluate jobs on a fold: batches, failing trials, records, reproducibility."""

import json
import os
import signal
import subprocess
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import make_ratings
from workflow_helpers import ROOT, SNAKEMAKE, snakemake

import mfsweep.models
from mfsweep.io import write_parquet
from mfsweep.pipeline import jobs
from mfsweep.splits import split_fold

EVALUATION = {"validation_cutoffs": [5], "relevance_threshold": None, "validation_users": None,
              "cutoffs": [5, 10]}


@pytest.fixture
def fold(tmp_path):
    ratings = make_ratings(60, 40, 15, seed=3)
    part = split_fold(ratings, {"method": "random", "test_fraction": 0.2, "validation_fraction": 0.1, "seed": 1}, 0)
    paths = SimpleNamespace(
        train=tmp_path / "train.parquet", valid=tmp_path / "valid.parquet", test=tmp_path / "test.parquet",
        users=tmp_path / "users.parquet", catalog=tmp_path / "items.parquet",
    )
    for name in ("train", "valid", "test"):
        write_parquet(getattr(part, name), getattr(paths, name))
    write_parquet(pd.DataFrame({"user": np.arange(60)}), paths.users)
    write_parquet(pd.DataFrame({"item": np.arange(40)}), paths.catalog)
    return paths


def unit(trials, kind="als-biased"):
    return {"model": "m", "kind": kind, "max_epochs": 3,
            "early_stopping": {"metric": None, "patience": 3, "min_delta": 0.001}, "trials": trials}


def run_train(fold, out, trials, fail_fast=False, kind="als-biased", pruning=None):
    out.mkdir(parents=True, exist_ok=True)
    snakemake = SimpleNamespace(
        input=fold, threads=1, log=[str(out / "train.log")], config={"any": "config"},
        output=SimpleNamespace(history=out / "history.parquet", model=out / "model.npz", record=out / "record.json"),
        params=SimpleNamespace(unit=unit(trials, kind), evaluation=EVALUATION, fail_fast=fail_fast,
                               pruning=pruning or {}),
    )
    jobs.train(snakemake)
    return snakemake


def run_evaluate(fold, out):
    snakemake = SimpleNamespace(
        input=SimpleNamespace(model=out / "model.npz", record=out / "record.json", train=fold.train, test=fold.test,
                              users=fold.users, catalog=fold.catalog),
        output=[out / "metrics.json"], threads=1, log=[str(out / "evaluate.log")],
        params=SimpleNamespace(evaluation=EVALUATION),
    )
    jobs.evaluate(snakemake)
    return json.loads((out / "metrics.json").read_text())


TRIALS = {"aaaaaaaaaa": {"embedding_size": 4, "regularization": 0.1}, "bbbbbbbbbb": {"embedding_size": 8}}


def test_a_batch_trains_each_trial_and_evaluates_each(fold, tmp_path):
    run_train(fold, tmp_path / "out", TRIALS)
    metrics = run_evaluate(fold, tmp_path / "out")
    assert [m["trial"] for m in metrics] == list(TRIALS)
    for record in metrics:
        assert record["stop_reason"] in ("max_epochs", "plateau") and record["error"] is None
        assert record["test"]["RMSE"] > 0 and "NDCG@10" in record["test"] and "NDCG@5" in record["validation"]
        assert record["version"] and len(record["config_hash"]) == 16 and record["threads"] == 1
        assert record["evaluate_seconds"] >= 0 and record["validation_seconds"] >= 0
    history = pd.read_parquet(tmp_path / "out" / "history.parquet")
    assert set(history["trial"]) == set(TRIALS)


def test_a_lone_trial_has_the_shape_of_a_batch_of_one(fold, tmp_path):
    run_train(fold, tmp_path / "out", {"aaaaaaaaaa": TRIALS["aaaaaaaaaa"]})
    metrics = run_evaluate(fold, tmp_path / "out")
    record = json.loads((tmp_path / "out" / "record.json").read_text())
    assert [m["trial"] for m in metrics] == [r["trial"] for r in record] == ["aaaaaaaaaa"]
    with np.load(tmp_path / "out" / "model.npz") as arrays:
        assert arrays.files and all(name.startswith("aaaaaaaaaa/") for name in arrays.files)


class Broken(mfsweep.models.base.MFModel):
    kind = "als-biased"

    def _setup(self, matrix, rng):
        raise FloatingPointError("the solver blew up")

    def _epoch(self, epoch):
        return 0.0


def failing_create(kind, **params):
    if params["embedding_size"] == 8:
        return Broken(**params)
    return mfsweep.models.model_class(kind)(**params)


def test_a_failing_trial_is_recorded_and_the_others_go_on(fold, tmp_path, monkeypatch):
    monkeypatch.setattr(mfsweep.models, "create", failing_create)
    run_train(fold, tmp_path / "out", TRIALS)
    metrics = {m["trial"]: m for m in run_evaluate(fold, tmp_path / "out")}
    failed = metrics["bbbbbbbbbb"]
    assert failed["stop_reason"] == "failed"
    assert failed["error"] == "FloatingPointError: the solver blew up"
    assert failed["test"] is None and failed["epochs_completed"] == 0
    assert metrics["aaaaaaaaaa"]["test"]["RMSE"] > 0
    assert "the solver blew up" in (tmp_path / "out" / "train.log").read_text()


def test_fail_fast_stops_at_the_first_failing_trial(fold, tmp_path, monkeypatch):
    monkeypatch.setattr(mfsweep.models, "create", failing_create)
    with pytest.raises(FloatingPointError):
        run_train(fold, tmp_path / "out", TRIALS, fail_fast=True)
    assert not (tmp_path / "out" / "record.json").exists()


def test_a_diverging_trial_writes_no_test_results(fold, tmp_path):
    run_train(fold, tmp_path / "out", {"cccccccccc": {"embedding_size": 4, "learning_rate": 1000.0}}, kind="sgd")
    (metrics,) = run_evaluate(fold, tmp_path / "out")
    assert metrics["stop_reason"] == "diverged" and metrics["test"] is None
    assert np.isfinite(pd.read_parquet(tmp_path / "out" / "history.parquet")["train_loss"]).all()


def test_same_inputs_same_factors_and_metrics(fold, tmp_path):
    runs = []
    for name in ("one", "two"):
        run_train(fold, tmp_path / name, TRIALS)
        runs.append(run_evaluate(fold, tmp_path / name))
    timing = {"train_seconds", "cpu_seconds", "validation_seconds", "evaluate_seconds", "commit"}
    for first, second in zip(*runs):
        assert {k: v for k, v in first.items() if k not in timing} == {k: v for k, v in second.items() if k not in timing}
    with np.load(tmp_path / "one" / "model.npz") as a, np.load(tmp_path / "two" / "model.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            assert np.array_equal(a[key], b[key]), key


def test_explicit_wals_keeps_its_epoch_by_rmse(fold, tmp_path):
    """A wals trial with target rating is a rating model: stopped, kept and recorded on RMSE
    (the unit of a train job carries no model params, only the trial's)."""
    params = {"target": "rating", "unobserved_weight": 0.0, "alpha": 10.0, "embedding_size": 4}
    run_train(fold, tmp_path / "out", {"dddddddddd": params}, kind="wals")
    (record,) = json.loads((tmp_path / "out" / "record.json").read_text())
    history = pd.read_parquet(tmp_path / "out" / "history.parquet")
    assert record["selection_metric"] == "RMSE"
    assert record["best_epoch"] == int(history.loc[history["RMSE"].idxmin(), "epoch"])
    assert record["validation"]["RMSE"] == pytest.approx(history["RMSE"].min())


def test_a_trial_trained_by_another_unit_under_the_same_settings_is_reused(fold, tmp_path):
    """Lowering trials or changing batch or round_size moves a trial to a new unit: not trained again."""
    first, second = tmp_path / "m" / "b000000001" / "fold0", tmp_path / "m" / "aaaaaaaaaa" / "fold0"
    run_train(fold, first, TRIALS)
    run_train(fold, second, {"aaaaaaaaaa": TRIALS["aaaaaaaaaa"]})
    assert f"trial aaaaaaaaaa: reused from {first}" in (second / "train.log").read_text()
    (before,), (after,) = ([r for r in json.loads((out / "record.json").read_text()) if r["trial"] == "aaaaaaaaaa"]
                           for out in (first, second))
    assert after == before  # timings included: nothing was trained
    history = pd.read_parquet(first / "history.parquet").query("trial == 'aaaaaaaaaa'").reset_index(drop=True)
    pd.testing.assert_frame_equal(pd.read_parquet(second / "history.parquet"), history)
    with np.load(first / "model.npz") as a, np.load(second / "model.npz") as b:
        assert sorted(b.files) == sorted(name for name in a.files if name.startswith("aaaaaaaaaa/"))
        assert all(np.array_equal(a[name], b[name]) for name in b.files)


def test_a_trial_under_another_pruning_reference_is_trained_again(fold, tmp_path):
    first, second = tmp_path / "m" / "b000000001" / "fold0", tmp_path / "m" / "aaaaaaaaaa" / "fold0"
    run_train(fold, first, TRIALS)
    run_train(fold, second, {"aaaaaaaaaa": TRIALS["aaaaaaaaaa"]}, pruning={2: 10.0})
    assert "reused" not in (second / "train.log").read_text()
    (record,) = json.loads((second / "record.json").read_text())
    assert record["training_hash"] != json.loads((first / "record.json").read_text())[0]["training_hash"]


# ----- a job killed in the middle of training, end to end ----------------------------------
CONFIG = {
    "datasets": {"synth": {"source": "synthetic", "users": 3000, "items": 1000, "ratings": 200000, "seed": 1}},
    "splits": {"holdout": {"method": "random", "seed": 1}},
    "models": {"slow": {"kind": "als-biased", "max_epochs": 40,
                        "early_stopping": {"metric": "RMSE", "patience": 40, "min_delta": 0.0},
                        "params": {"embedding_size": 64}}},
    "experiments": [{"dataset": "synth", "split": "holdout", "models": ["slow"]}],
}


def wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def training_started(workdir) -> bool:
    return any("epoch 2:" in log.read_text() for log in (workdir / "logs" / "train").rglob("*.log"))


@pytest.mark.workflow
def test_sigkill_during_training_leaves_no_complete_output_and_a_rerun_finishes(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    workdir = tmp_path / "run"
    workdir.mkdir()
    command = [str(SNAKEMAKE), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(config), "--cores", "1"]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_for(lambda: (workdir / "logs" / "train").exists() and training_started(workdir), 180)
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        subprocess.run(["pkill", "-9", "-f", str(workdir)], check=False)
        run.wait()
    trial = next((workdir / "results" / "trials").rglob("fold0"))
    left = {p.name for p in trial.iterdir()}
    assert not left & {"history.parquet", "model.npz", "record.json", "metrics.json"}
    assert not (workdir / "results" / "summary").exists()

    snakemake(workdir, "--unlock", config=config)
    snakemake(workdir, "--cores", "1", "--rerun-incomplete", config=config)
    (metrics,) = json.loads((trial / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 40 and metrics["stop_reason"] == "max_epochs"
    assert (workdir / "results" / "summary" / "synth" / "holdout" / "slow" / "best.json").exists()
    assert not [p for p in trial.iterdir() if p.name.endswith(".tmp")]
