import json
import math

import pandas as pd
import pytest

from mfsweep.analysis import collect_histories, collect_trials, select_best
from mfsweep.io import write_json, write_parquet


def metrics(trial, params, valid_rmse, test_rmse, stop="plateau", epochs=5):
    return {
        "model": "m", "kind": "als-biased", "trial": trial, "params": params, "epochs_completed": epochs,
        "best_epoch": epochs, "stop_reason": stop, "error": None, "train_seconds": 1.5, "cpu_seconds": 2.5,
        "threads": 1,
        "validation": {} if valid_rmse is None else {"RMSE": valid_rmse, "NDCG": 0.1},
        "test": None if test_rmse is None else {"RMSE": test_rmse, "NDCG": 0.2},
    }


@pytest.fixture
def trial_files(tmp_path):
    specs = {
        "aaaaaaaaaa": ({"embedding_size": 8, "regularization": {"user": 0.1, "item": 0.2}}, [0.95, 0.97], [0.96, 0.98]),
        "bbbbbbbbbb": ({"embedding_size": 16, "regularization": {"user": 0.1, "item": 0.1}}, [0.93, 0.97], [0.94, 0.97]),
        "cccccccccc": ({"embedding_size": 32, "regularization": {"user": 0.0, "item": 0.0}}, [0.90, None], [0.91, None]),
    }
    paths, histories = [], []
    for trial, (params, valid, test) in specs.items():
        for fold, (v, t) in enumerate(zip(valid, test)):
            folder = tmp_path / trial / f"fold{fold}"
            stop = "diverged" if v is None else "plateau"
            write_json(metrics(trial, params, v, t, stop), folder / "metrics.json")
            history = pd.DataFrame({"trial": trial, "epoch": [1, 2], "train_loss": [2.0, 1.0]})
            write_parquet(history, folder / "history.parquet")
            paths.append(folder / "metrics.json")
            histories.append(folder / "history.parquet")
    return paths, histories


def test_collect_gives_one_row_per_trial_and_fold(trial_files):
    trials = collect_trials(trial_files[0])
    assert len(trials) == 6
    assert list(trials[["trial", "fold"]].itertuples(index=False, name=None))[:2] == [("aaaaaaaaaa", 0), ("aaaaaaaaaa", 1)]
    row = trials.iloc[0]
    assert row["param.embedding_size"] == 8 and row["param.regularization.item"] == 0.2
    assert row["valid.RMSE"] == 0.95 and row["test.NDCG"] == 0.2
    diverged = trials[trials["stop_reason"] == "diverged"]
    assert len(diverged) == 1 and math.isnan(diverged["test.RMSE"].iloc[0])


def test_collect_reads_a_batch_of_trials_from_one_file(tmp_path):
    path = tmp_path / "b123456789" / "fold0" / "metrics.json"
    write_json({"trials": [metrics("aaaaaaaaaa", {"embedding_size": 8}, 0.9, 0.9),
                           metrics("bbbbbbbbbb", {"embedding_size": 16}, 0.8, 0.8)]}, path)
    trials = collect_trials([path])
    assert list(trials["trial"]) == ["aaaaaaaaaa", "bbbbbbbbbb"] and list(trials["fold"]) == [0, 0]


def test_collect_histories_adds_the_fold(trial_files):
    history = collect_histories(trial_files[1])
    assert list(history.columns[:3]) == ["trial", "fold", "epoch"]
    assert len(history) == 12


def test_select_best_uses_the_mean_over_folds_and_skips_unusable_trials(trial_files):
    best = select_best(collect_trials(trial_files[0]), "RMSE")
    # a: mean 0.96, b: mean 0.95, c: 0.90 on fold 0 but diverged on fold 1 (excluded)
    assert best["trial"] == "bbbbbbbbbb"
    assert best["objective"] == pytest.approx(0.95)
    assert best["validation"]["RMSE_min"] == 0.93 and best["validation"]["RMSE_max"] == 0.97
    assert best["usable_trials"] == 2 and best["trials"] == 3 and best["folds"] == 2
    assert best["validation"]["RMSE_min"] <= best["validation"]["RMSE"] <= best["validation"]["RMSE_max"]
    assert "RMSE" in best["test"]
    assert isinstance(best["params"]["regularization"], dict)
    json.dumps(best)


def test_select_best_maximizes_ranking_metrics(tmp_path):
    paths = []
    for trial, ndcg in (("aaaaaaaaaa", 0.2), ("bbbbbbbbbb", 0.3)):
        record = metrics(trial, {"embedding_size": 8}, 1.0, 1.0)
        record["validation"]["NDCG"] = ndcg
        write_json(record, tmp_path / trial / "fold0" / "metrics.json")
        paths.append(tmp_path / trial / "fold0" / "metrics.json")
    assert select_best(collect_trials(paths), "NDCG")["trial"] == "bbbbbbbbbb"


def test_select_best_with_no_usable_trial_says_why(tmp_path):
    path = tmp_path / "aaaaaaaaaa" / "fold0" / "metrics.json"
    write_json(metrics("aaaaaaaaaa", {"embedding_size": 8}, None, None, stop="failed"), path)
    best = select_best(collect_trials([path]), "RMSE")
    assert best["trial"] is None and best["usable_trials"] == 0
    assert best["reasons"] == {"failed": 1}
