import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from test_plots import best_json, in_rounds, trial_rows

from mfsweep import trials as trials_module
from mfsweep.trials import (
    Best,
    best_row,
    collect_histories,
    collect_trials,
    flatten_params,
    higher_is_better,
    lower_is_better,
    metric_names,
    model_metric,
    nest_params,
    proposal_order,
    ranked_rows,
    search_progress,
    rating_rows,
    select_best,
)


def metrics(trial, params, valid_rmse, test_rmse, stop="plateau", epochs=5):
    return {
        "model": "m", "kind": "als-biased", "trial": trial, "params": params, "epochs_completed": epochs,
        "best_epoch": epochs, "stop_reason": stop, "error": None, "train_seconds": 1.5, "cpu_seconds": 2.5,
        "threads": 1,
        "validation": {} if valid_rmse is None else {"RMSE": valid_rmse, "NDCG": 0.1},
        "test": None if test_rmse is None else {"RMSE": test_rmse, "NDCG": 0.2},
    }


@pytest.fixture
def trial_files():
    """(fold, record) and (fold, history) pairs of three trials on two folds."""
    specs = {
        "aaaaaaaaaa": ({"embedding_size": 8, "regularization": {"user": 0.1, "item": 0.2}}, [0.95, 0.97], [0.96, 0.98]),
        "bbbbbbbbbb": ({"embedding_size": 16, "regularization": {"user": 0.1, "item": 0.1}}, [0.93, 0.97], [0.94, 0.97]),
        "cccccccccc": ({"embedding_size": 32, "regularization": {"user": 0.0, "item": 0.0}}, [0.90, None], [0.91, None]),
    }
    records, histories = [], []
    for trial, (params, valid, test) in specs.items():
        for fold, (v, t) in enumerate(zip(valid, test)):
            stop = "diverged" if v is None else "plateau"
            records.append((fold, metrics(trial, params, v, t, stop)))
            histories.append((fold, pd.DataFrame({"trial": trial, "epoch": [1, 2], "train_loss": [2.0, 1.0]})))
    return records, histories


def test_collect_gives_one_row_per_trial_and_fold(trial_files):
    trials = collect_trials(trial_files[0])
    assert len(trials) == 6
    assert list(trials[["trial", "fold"]].itertuples(index=False, name=None))[:2] == [("aaaaaaaaaa", 0), ("aaaaaaaaaa", 1)]
    row = trials.iloc[0]
    assert row["param.embedding_size"] == 8 and row["param.regularization.item"] == 0.2
    assert row["valid.RMSE"] == 0.95 and row["test.NDCG"] == 0.2
    diverged = trials[trials["stop_reason"] == "diverged"]
    assert len(diverged) == 1 and math.isnan(diverged["test.RMSE"].iloc[0])


def test_collect_orders_rows_by_trial_then_fold():
    trials = collect_trials([(1, metrics("bbbbbbbbbb", {"embedding_size": 16}, 0.8, 0.8)),
                             (0, metrics("bbbbbbbbbb", {"embedding_size": 16}, 0.8, 0.8)),
                             (0, metrics("aaaaaaaaaa", {"embedding_size": 8}, 0.9, 0.9))])
    assert list(trials["trial"]) == ["aaaaaaaaaa", "bbbbbbbbbb", "bbbbbbbbbb"] and list(trials["fold"]) == [0, 0, 1]


def test_collect_histories_adds_the_fold(trial_files):
    history = collect_histories(trial_files[1])
    assert list(history.columns[:3]) == ["trial", "fold", "epoch"]
    assert len(history) == 12


def test_select_best_uses_the_mean_over_folds_and_skips_unusable_trials(trial_files):
    best = select_best(collect_trials(trial_files[0]), "RMSE").to_json()
    # a: mean 0.96, b: mean 0.95, c: 0.90 on fold 0 but diverged on fold 1 (excluded)
    assert best["trial"] == "bbbbbbbbbb"
    assert best["objective"] == pytest.approx(0.95)
    assert best["validation"]["RMSE_min"] == 0.93 and best["validation"]["RMSE_max"] == 0.97
    assert best["usable_trials"] == 2 and best["trials"] == 3 and best["folds"] == 2
    assert best["validation"]["RMSE_min"] <= best["validation"]["RMSE"] <= best["validation"]["RMSE_max"]
    assert "RMSE" in best["test"]
    assert isinstance(best["params"]["regularization"], dict)
    json.dumps(best)


def test_best_row_flattens_the_best_record_for_best_csv(trial_files, tmp_path):
    from mfsweep.io import write_csv

    best = select_best(collect_trials(trial_files[0]), "RMSE").to_json()
    row = best_row(best)
    assert row["trial"] == "bbbbbbbbbb" and row["objective"] == pytest.approx(0.95)
    assert row["valid.RMSE_min"] == 0.93 and row["test.RMSE"] == best["test"]["RMSE"]
    assert {k for k in row if k.startswith("param.")} == set(flatten_params(best["params"]))
    write_csv(pd.DataFrame([row]), tmp_path / "best.csv")
    back = pd.read_csv(tmp_path / "best.csv")
    assert back.loc[0, "trial"] == "bbbbbbbbbb" and back.loc[0, "valid.RMSE_max"] == 0.97
    failed = best_row(select_best(collect_trials([(0, metrics("aaaaaaaaaa", {"embedding_size": 8}, None, None,
                                                                      stop="failed"))]), "RMSE").to_json())
    assert failed["trial"] is None and failed["reasons.failed"] == 1


def test_select_best_maximizes_ranking_metrics():
    records = []
    for trial, ndcg in (("aaaaaaaaaa", 0.2), ("bbbbbbbbbb", 0.3)):
        record = metrics(trial, {"embedding_size": 8}, 1.0, 1.0)
        record["validation"]["NDCG"] = ndcg
        records.append((0, record))
    assert select_best(collect_trials(records), "NDCG").trial == "bbbbbbbbbb"


def test_select_best_with_no_usable_trial_says_why():
    record = metrics("aaaaaaaaaa", {"embedding_size": 8}, None, None, stop="failed")
    best = select_best(collect_trials([(0, record)]), "RMSE").to_json()
    assert best["trial"] is None and best["usable_trials"] == 0
    assert best["reasons"] == {"failed": 1}


def test_a_usable_and_an_unusable_best_fill_one_key_set(trial_files):
    usable = select_best(collect_trials(trial_files[0]), "RMSE").to_json()
    record = metrics("aaaaaaaaaa", {"embedding_size": 8}, None, None, stop="failed")
    unusable = select_best(collect_trials([(0, record), (1, record)]), "RMSE").to_json()
    keys = [f.name for f in dataclasses.fields(Best)]
    assert list(unusable) == keys and list(usable) == [k for k in keys if k != "reasons"]
    assert list(usable) == ["model", "kind", "trial", "selection_metric", "objective", "trials", "usable_trials",
                            "folds", "params", "epochs_completed", "stop_reason", "train_seconds", "cpu_seconds",
                            "validation", "test"]  # best.json and the columns of best.csv, as before
    assert unusable["folds"] is None and unusable["reasons"] == {"failed": 2}


def test_a_trial_missing_its_metric_on_a_fold_is_not_ranked():
    partial = metrics("aaaaaaaaaa", {"embedding_size": 8}, None, None)  # no validation values on fold 1
    trials = collect_trials([(0, metrics("aaaaaaaaaa", {"embedding_size": 8}, 0.5, 0.5)), (1, partial),
                             (0, metrics("bbbbbbbbbb", {"embedding_size": 16}, 0.9, 0.9)),
                             (1, metrics("bbbbbbbbbb", {"embedding_size": 16}, 0.9, 0.9))])
    assert select_best(trials, "RMSE").trial == "bbbbbbbbbb"
    assert list(ranked_rows(trials, "RMSE")["rank"].astype(object).fillna(0)) == [1, 1, 0, 0]


def test_ranked_rows_follow_the_ranking_of_select_best(trial_files):
    trials = collect_trials(trial_files[0])
    rows = ranked_rows(trials, "RMSE")
    assert rows["trial"].iloc[0] == select_best(trials, "RMSE").trial
    ranks = rows.groupby("trial")["rank"].first()
    assert (ranks["bbbbbbbbbb"], ranks["aaaaaaaaaa"]) == (1, 2) and pd.isna(ranks["cccccccccc"])
    assert rows["mean valid.RMSE"].iloc[0] == pytest.approx(0.95)


@pytest.mark.parametrize(("metric", "lower"), [("RMSE", True), ("MAE_user", True), ("train_loss", True),
                                               ("NDCG", False), ("NDCG@10", False), ("Recall@5", False),
                                               ("RecipRank", False), ("Coverage@100", False)])
def test_metric_direction_has_one_answer(metric, lower):
    assert lower_is_better(metric) is lower and higher_is_better(metric) is (not lower)


def test_an_unknown_metric_has_no_direction():
    with pytest.raises(ValueError, match="unknown metric 'AUC'"):
        lower_is_better("AUC")


def test_every_evaluated_metric_has_a_direction():
    assert all(isinstance(lower_is_better(name), bool) for name in metric_names([1, 10]))


def test_params_flatten_and_nest_back():
    params = {"embedding_size": 8, "regularization": {"user": 0.1, "item": 0.2}}
    flat = flatten_params(params)
    assert flat == {"param.embedding_size": 8, "param.regularization.user": 0.1, "param.regularization.item": 0.2}
    assert nest_params(flat, prefix="param.") == params
    assert nest_params({**flat, "param.damping": math.nan, "valid.RMSE": 1.0}, prefix="param.") == params


def test_nest_params_leaves_out_every_kind_of_missing_value():
    # a table row gives pd.NA for a nullable column and a numpy NaN for a float32 one
    flat = {"param.embedding_size": np.int64(8), "param.a": pd.NA, "param.b": np.float32("nan"), "param.c": None}
    params = nest_params(flat, prefix="param.")
    assert params == {"embedding_size": 8} and type(params["embedding_size"]) is int


@pytest.mark.parametrize(("flat", "message"), [
    ({"regularization.users": 1}, "must end in .user or .item"),
    ({"regularization": 1, "regularization.user": 2}, "given both as a whole"),
])
def test_malformed_dotted_names_are_named(flat, message):
    with pytest.raises(ValueError, match=message):
        nest_params(flat)


def test_selection_metric_follows_the_kind_and_the_config():
    assert model_metric({"kind": "wals"}) == "NDCG" and model_metric({"kind": "als"}) == "RMSE"
    assert model_metric({"kind": "bpr"}) == "NDCG"
    assert model_metric({"kind": "als", "early_stopping": {"metric": "MAE"}}) == "MAE"


def test_rating_rows_tell_explicit_from_implicit_wals():
    table = pd.DataFrame({"kind": ["als", "wals", "wals"], "param.target": [None, "rating", "preference"]})
    assert rating_rows(table).tolist() == [True, True, False]
    assert rating_rows(table.drop(columns="param.target")).tolist() == [True, False, False]
    assert rating_rows(pd.DataFrame({"kind": ["bpr", "sgd"]})).tolist() == [False, True]


def test_proposal_order_is_round_then_position_one_row_a_trial():
    # trial ids sort the other way round, and each trial has two folds
    rows = pd.DataFrame({"trial": ["a", "a", "b", "b", "c", "c"], "fold": [0, 1] * 3,
                         "round": [1, 1, 0, 0, 0, 0], "proposed": [0, 0, 1, 1, 0, 0]})
    order = proposal_order(rows.iloc[::-1])
    assert list(order.index) == ["c", "b", "a"]
    assert order.to_dict("index") == {"c": {"round": 0, "proposed": 0}, "b": {"round": 0, "proposed": 1},
                                      "a": {"round": 1, "proposed": 0}}


def halving_tables():
    """Two trials on two folds of a halving search: t0 trained 1 epoch in round 1 and on to 3 in
    round 2; t1 1 epoch in round 1 only. RMSE by epoch is the same on both folds but for 0.1."""
    trials = pd.DataFrame({"trial": ["t0", "t0", "t1", "t1"], "fold": [0, 1, 0, 1], "round": 1,
                           "proposed": [0, 0, 1, 1], "train_seconds": 1.0, "epochs_completed": [3, 3, 1, 1],
                           "stop_reason": ["max_epochs", "max_epochs", "rung", "rung"],
                           "valid.RMSE": [0.7, 0.8, 0.85, 0.95]})
    rows = [("t0", fold, epoch, 1 if epoch == 1 else 2, value + 0.1 * fold)
            for fold in (0, 1) for epoch, value in ((1, 0.9), (2, 0.7), (3, 0.75))]
    rows += [("t1", fold, 1, 1, 0.85 + 0.1 * fold) for fold in (0, 1)]
    history = pd.DataFrame(rows, columns=["trial", "fold", "epoch", "round", "RMSE"]).assign(seconds=0.5)
    return trials, history


def test_search_progress_of_a_halving_search_counts_a_trial_a_rung():
    trials, history = halving_tables()
    progress = search_progress(trials, "RMSE", history)
    assert list(zip(progress["round"], progress["trial"])) == [(1, "t0"), (1, "t1"), (2, "t0")]
    assert progress["value"].tolist() == pytest.approx([0.95, 0.9, 0.75])   # t0's best up to epoch 1, then 3
    assert progress["best"].tolist() == pytest.approx([0.95, 0.9, 0.75])
    assert progress["epochs"].tolist() == [2, 2, 4] and progress["total_epochs"].tolist() == [2, 4, 8]
    assert progress["seconds"].tolist() == [1.0, 1.0, 2.0] and progress["trials"].tolist() == [1, 2, 3]


def test_search_progress_without_rungs_is_a_trial_a_row_with_its_epochs():
    trials, history = halving_tables()
    progress = search_progress(trials, "RMSE", history.drop(columns="round"))
    assert progress["trial"].tolist() == ["t0", "t1"]
    assert progress["epochs"].tolist() == [6, 2] and progress["total_epochs"].tolist() == [6, 8]
    assert progress["value"].tolist() == pytest.approx([0.75, 0.9])
    assert search_progress(trials, "RMSE").equals(progress)

# ----- the tables of tests/test_plots.py's trials ------------------------------------------
@pytest.fixture
def trials():
    return trial_rows()


def test_trial_table_marks_unusable_trials_and_averages_folds(trials):
    table = trials_module.trial_table(trials, "RMSE").set_index("trial")
    assert list(table["status"]) == ["ok", "ok", "ok", "ok", "diverged", "failed"]
    assert table.loc["t02", "mean"] == pytest.approx(0.94)
    assert (table.loc["t02", "min"], table.loc["t02", "max"]) == (0.93, 0.95)
    assert math.isnan(table.loc["t05", "mean"]) and math.isnan(table.loc["t06", "mean"])
    assert table.loc["t03", "epochs_completed"] == 10
    assert trials_module.best_trial(table.reset_index(), "RMSE") == "t02"
    assert trials_module.best_trial(table.reset_index(), "NDCG@10") == "t01"  # all tie: first in id order


def test_tuned_parameters_are_those_with_more_than_one_value(trials):
    assert trials_module.tuned_parameters(trials) == ["param.embedding_size", "param.learning_rate",
                                              "param.regularization.user"]


def test_compare_gives_one_row_per_model_with_test_metrics_in_order():
    frame = trials_module.compare([best_json("als-biased", "aaaaaaaaaa", 0.91, 3.0),
                           best_json("sgd-biased", "bbbbbbbbbb", 0.93, 12.0),
                           best_json("sgd", None, None, None)])
    assert list(frame["model"]) == ["als-biased", "sgd-biased", "sgd"]
    metrics = [c for c in frame.columns if c.startswith("test.")]
    assert metrics[:4] == ["test.RMSE", "test.RMSE_max", "test.RMSE_min", "test.MAE"]
    assert metrics.index("test.NDCG") < metrics.index("test.NDCG@10") < metrics.index("test.Recall@10")
    assert frame.loc[0, "test.RMSE"] == 0.91 and frame.loc[1, "train_seconds"] == 12.0
    assert pd.isna(frame.loc[2, "trial"]) and math.isnan(frame.loc[2, "test.RMSE"])
    with pytest.raises(ValueError, match="no best.json"):
        trials_module.compare([])


def test_search_progress_table_takes_proposal_order_and_the_best_so_far(trials):
    progress = trials_module.search_progress(in_rounds(trials).iloc[::-1], "RMSE")
    assert list(progress["trial"]) == ["t01", "t02", "t03", "t04", "t05", "t06"]
    # means: t01 0.98, t02 0.94, t03 0.97, t04 0.94 (no strict gain), t05 diverged, t06 failed
    assert progress["best"].tolist() == pytest.approx([0.98, 0.94, 0.94, 0.94, 0.94, 0.94])
    assert progress["value"].isna().tolist() == [False] * 4 + [True] * 2
    seconds = trials.groupby("trial")["train_seconds"].sum()
    assert progress["total_seconds"].tolist() == pytest.approx(seconds.cumsum().tolist())
    higher = trials_module.search_progress(in_rounds(trials), "NDCG@10")
    assert higher["best"].tolist() == pytest.approx([0.1] * 6)
