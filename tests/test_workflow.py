"""The workflow end to end: lint, validation before any job, and a real tiny sweep."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_helpers import ROOT, planned_jobs, snakemake, summary

pytestmark = pytest.mark.workflow

TINY = ROOT / "tests" / "configs" / "tiny.yaml"
# als-biased: 3 trials x 2 folds; sgd-biased (batch 2): 2 jobs x 2 folds
TRAIN_JOBS = 3 * 2 + 2 * 2
METRIC_KEYS = {"RMSE", "MAE", "RMSE_user", "MAE_user", "NDCG", "RBP", "RecipRank"}


def test_lint_is_clean(tmp_path):
    result = snakemake(ROOT, "--lint")
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_default_config_plans_the_default_experiment(tmp_path):
    jobs = planned_jobs(tmp_path, config=ROOT / "config" / "config.yaml")
    assert jobs["download"] == 1 and jobs["prepare"] == 1 and jobs["split"] >= 1
    assert jobs["train"] == jobs["evaluate"] >= 1


def test_invalid_config_fails_before_any_job_naming_the_key(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["models"]["als-biased"]["params"]["embedding_size"] = [0, 4]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--cores", "1", config=bad, check=False)
    assert result.returncode != 0
    assert "models.als-biased" in result.stderr and "embedding_size must be an integer >= 1" in result.stderr
    assert not (tmp_path / "results").exists()


def test_a_headerless_ratings_file_is_prepared_from_its_config(tmp_path):
    rows = ["7\t3\t2\t100", "5\t3\t1\t90", "5\t4\t4.5\t95"]
    (tmp_path / "u.data").write_text("\n".join(rows) + "\n")
    config = {
        "datasets": {"bare": {"source": "file", "path": "u.data", "sep": "\t", "header": False,
                              "columns": {"user": 0, "item": 1, "rating": 2, "timestamp": 3}}},
        "splits": {"holdout": {"method": "random"}},
        "models": {"als": {"kind": "als", "params": {"embedding_size": 2}}},
        "experiments": [{"dataset": "bare", "split": "holdout", "models": ["als"]}],
    }
    path = tmp_path / "bare.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake(tmp_path, "--cores", "1", "results/data/bare/ratings.parquet", config=path)
    ratings = pd.read_parquet(tmp_path / "results" / "data" / "bare" / "ratings.parquet")
    assert ratings.to_dict("list") == {"user": [1, 0, 0], "item": [0, 0, 1], "rating": [2.0, 1.0, 4.5],
                                       "timestamp": [100, 90, 95]}
    users = pd.read_parquet(tmp_path / "results" / "data" / "bare" / "users.parquet")
    assert users["original_id"].tolist() == [5, 7]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sweep")
    snakemake(workdir, "--cores", "2", config=TINY)
    return workdir


def test_sweep_draws_every_figure(sweep):
    plots = sweep / "results" / "plots" / "synth" / "kfold"
    names = {"embedding_size", "learning_parameters", "iteration_completion", "folds", "parallel_coordinates",
             "importance", "training_curves"}
    for model in ("als-biased", "sgd-biased"):
        assert {p.stem for p in (plots / model).glob("*.svg")} == names
    assert (plots / "cost.svg").exists() and (plots / "search_progress.svg").exists()
    comparison = pd.read_parquet(sweep / "results" / "summary" / "synth" / "kfold" / "comparison.parquet")
    assert list(comparison["model"]) == ["als-biased", "sgd-biased"]


def test_sweep_writes_every_trial_fold_and_a_best_per_model(sweep):
    for model in ("als-biased", "sgd-biased"):
        trials = pd.read_parquet(summary(sweep, model) / "trials.parquet")
        assert len(trials) == 3 * 2
        assert sorted(trials["fold"].unique()) == [0, 1]
        assert trials["trial"].nunique() == 3
        assert set(trials["stop_reason"]) <= {"max_epochs", "plateau"}
        assert (trials["epochs_completed"] >= 1).all()
        best = json.loads((summary(sweep, model) / "best.json").read_text())
        assert best["trial"] in set(trials["trial"])
        assert METRIC_KEYS | {"NDCG@5", "Precision@10", "Coverage@10"} <= set(best["test"])
        assert 0 < best["test"]["RMSE"] < 2
        history = pd.read_parquet(summary(sweep, model) / "history.parquet")
        assert {"trial", "fold", "epoch", "train_loss", "RMSE", "NDCG@10"} <= set(history.columns)


def test_batched_trials_share_a_job_and_keep_their_own_records(sweep):
    units = sorted((sweep / "results" / "trials" / "synth" / "kfold" / "sgd-biased").iterdir())
    assert len(units) == 2 and all(u.name.startswith("b") for u in units)
    records = {u: json.loads((u / "fold0" / "metrics.json").read_text()) for u in units}
    assert sorted(len(r) for r in records.values()) == [1, 2]
    for unit, unit_records in records.items():
        history = pd.read_parquet(unit / "fold0" / "history.parquet")
        assert set(history["trial"]) == {r["trial"] for r in unit_records}
        assert all(METRIC_KEYS <= set(r["test"]) for r in unit_records)


def test_metrics_json_carries_the_public_contract(sweep):
    path = next((sweep / "results" / "trials" / "synth" / "kfold" / "als-biased").rglob("metrics.json"))
    (metrics,) = json.loads(path.read_text())
    for key in ("model", "kind", "params", "epochs_completed", "stop_reason", "train_seconds", "cpu_seconds",
                "validation", "test", "version", "config_hash"):
        assert key in metrics, key
    assert METRIC_KEYS <= set(metrics["test"]) and "RMSE" in metrics["validation"]


def test_every_job_logged_and_benchmarked(sweep):
    logs = list((sweep / "logs" / "train").rglob("*.log"))
    assert len(logs) == TRAIN_JOBS
    assert all("epoch 1:" in log.read_text() for log in logs)
    assert len(list((sweep / "benchmarks" / "train").rglob("*.tsv"))) == TRAIN_JOBS


def test_complete_sweep_has_nothing_left_to_do(sweep):
    assert planned_jobs(sweep, config=TINY) == {}


def test_forcerun_evaluate_reevaluates_without_retraining(sweep):
    jobs = planned_jobs(sweep, "--forcerun", "evaluate", config=TINY)
    assert jobs.get("evaluate") == TRAIN_JOBS and "train" not in jobs


def test_changing_test_cutoffs_reruns_evaluate_not_train(sweep, tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["evaluation"]["cutoffs"] = [5, 20]
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    jobs = planned_jobs(sweep, config=changed)
    assert jobs.get("evaluate") == TRAIN_JOBS and jobs.get("collect") == 2 and "train" not in jobs


def test_a_removed_summary_is_rebuilt_without_retraining(sweep, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy, symlinks=True)
    (summary(copy, "als-biased") / "trials.parquet").unlink()
    jobs = planned_jobs(copy, config=TINY)
    assert jobs["collect"] == 1 and jobs["select_best"] == 1
    assert not {"prepare", "split", "train", "evaluate"} & set(jobs)


def test_two_clean_runs_give_identical_factors_and_metrics(sweep, tmp_path):
    again = tmp_path / "again"
    again.mkdir()
    snakemake(again, "--cores", "2", config=TINY)
    timing = [c for c in pd.read_parquet(summary(sweep, "als-biased") / "trials.parquet").columns
              if c.endswith("seconds")]
    for model in ("als-biased", "sgd-biased"):
        first = pd.read_parquet(summary(sweep, model) / "trials.parquet").drop(columns=timing)
        second = pd.read_parquet(summary(again, model) / "trials.parquet").drop(columns=timing)
        pd.testing.assert_frame_equal(first, second)
    models = sorted((sweep / "results" / "trials").rglob("model.npz"))
    assert len(models) == TRAIN_JOBS
    for path in models:
        twin = again / path.relative_to(sweep)
        with np.load(path) as a, np.load(twin) as b:
            assert sorted(a.files) == sorted(b.files)
            assert all(np.array_equal(a[key], b[key]) for key in a.files), path


def test_summaries_of_an_earlier_version_are_brought_up_to_date(sweep, tmp_path):
    """A sweep collected before optuna.db and the CSV exports existed: the default target collects it again."""
    earlier = tmp_path / "earlier"
    shutil.copytree(sweep, earlier, symlinks=True)
    (summary(earlier, "sgd-biased") / "optuna.db").unlink()
    jobs = planned_jobs(earlier, config=TINY)
    assert jobs.get("collect") == 1 and "train" not in jobs and "evaluate" not in jobs


def test_a_user_file_runs_as_implicit_positives(tmp_path):
    """min_rating and min_user_ratings on a user's file: prepare keeps the positives of
    users with enough of them, and a wals sweep with the iALS recipe ranks on that data."""
    from mfsweep.data import synthetic

    frame = synthetic(150, 60, 4000, seed=11)
    frame.assign(user=frame["user"] + 1000).to_csv(tmp_path / "ratings.csv", index=False)
    config = {
        "datasets": {"mine": {"source": "file", "path": "ratings.csv", "min_rating": 4, "min_user_ratings": 5}},
        "splits": {"users": {"method": "user", "folds": 1, "holdout": 2, "seed": 3}},
        "models": {"ials": {"kind": "wals", "max_epochs": 3,
                            "params": {"embedding_size": 4, "solver": "cholesky", "alpha": 1.1, "exponent": 0.0,
                                       "unobserved_weight": 0.1, "regularization": 0.0033,
                                       "regularization_scaling": "frequency", "init_std": 0.1}}},
        "experiments": [{"dataset": "mine", "split": "users", "models": ["ials"]}],
        "evaluation": {"cutoffs": [5], "validation_users": 50},
    }
    path = tmp_path / "implicit.yaml"
    path.write_text(yaml.safe_dump(config))
    best = "results/summary/mine/users/ials/best.json"
    snakemake(tmp_path, "--cores", "1", best, config=path)
    ratings = pd.read_parquet(tmp_path / "results" / "data" / "mine" / "ratings.parquet")
    users = pd.read_parquet(tmp_path / "results" / "data" / "mine" / "users.parquet")
    positives = frame[frame["rating"] >= 4]
    counts = positives.groupby("user").size()
    assert len(ratings) == counts[counts >= 5].sum() and ratings["rating"].min() >= 4
    assert users["original_id"].tolist() == sorted(counts.index[counts >= 5] + 1000)
    record = json.loads((tmp_path / best).read_text())
    assert record["params"]["regularization_scaling"] == "frequency"
    assert 0 < record["test"]["NDCG@5"] <= 1 and record["epochs_completed"] >= 1
