"""Predictions for pairs of original ids: known pairs by the model, unknown sides by its fallback."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mfsweep.data import DataError, read_pairs
from mfsweep.models import create
from mfsweep.predict import Catalog, counts, predict_pairs


def biased_model():
    model = create("sgd-biased", embedding_size=2)
    model.user_factors = np.array([[1.0, 0.0], [0.5, 2.0], [9.0, 9.0]], np.float32)
    model.item_factors = np.array([[2.0, 1.0], [0.0, -1.0]], np.float32)
    model.user_bias = np.array([0.25, -0.5, 7.0], np.float32)
    model.item_bias = np.array([0.5, -0.25], np.float32)
    model.global_bias = 3.5
    return model


def catalog():
    # users 10, 20, 30 (30 has no training rating), items "a", "b"
    users = pd.DataFrame({"user": [0, 1, 2], "original_id": [10, 20, 30]})
    items = pd.DataFrame({"item": [0, 1], "original_id": ["a", "b"]})
    train = pd.DataFrame({"user": [0, 0, 1], "item": [0, 1, 1], "rating": [4.0, 2.0, 3.0]})
    return Catalog.from_tables(users, items, train)


PAIRS = pd.DataFrame({"user": [20, 10, 99, 20, 30, 99], "item": ["a", "b", "a", "zz", "b", "zz"]})


def test_biased_model_known_pairs_and_fallbacks():
    table = predict_pairs(biased_model(), catalog(), PAIRS)
    assert list(table.columns) == ["user", "item", "prediction", "user_known", "item_known"]
    assert table["user"].tolist() == [20, 10, 99, 20, 30, 99]
    assert table["item"].tolist() == ["a", "b", "a", "zz", "b", "zz"]
    expected = [
        3.5 - 0.5 + 0.5 + (0.5 * 2.0 + 2.0 * 1.0),   # 20, a: the model
        3.5 + 0.25 - 0.25 + (1.0 * 0.0 + 0.0 * -1.0),  # 10, b: the model
        3.5 + 0.5,                                   # unknown user 99: mu + b_a
        3.5 - 0.5,                                   # unknown item zz: mu + b_20
        3.5 - 0.25,                                  # user 30 has no training rating: mu + b_b
        3.5,                                         # both unknown: mu
    ]
    np.testing.assert_allclose(table["prediction"], expected)
    assert table["user_known"].tolist() == [True, True, False, True, False, False]
    assert table["item_known"].tolist() == [True, True, True, False, True, False]
    assert counts(table) == {"pairs": 6, "unknown_user": 3, "unknown_item": 2, "fallback": 4}


def test_unbiased_model_falls_back_to_the_training_mean():
    model = biased_model()
    plain = create("sgd", embedding_size=2)
    plain.user_factors, plain.item_factors = model.user_factors, model.item_factors
    table = predict_pairs(plain, catalog(), PAIRS)
    mean = (4.0 + 2.0 + 3.0) / 3
    np.testing.assert_allclose(table["prediction"], [0.5 * 2.0 + 2.0 * 1.0, 0.0, mean, mean, mean, mean])


def test_numeric_ids_read_as_text_still_match():
    pairs = pd.DataFrame({"user": ["20", "x"], "item": ["a", "a"]})
    table = predict_pairs(biased_model(), catalog(), pairs)
    assert table["user_known"].tolist() == [True, False]
    np.testing.assert_allclose(table["prediction"], [3.5 - 0.5 + 0.5 + 3.0, 4.0])


def test_read_pairs_by_name_and_by_position(tmp_path):
    named = tmp_path / "pairs.csv"
    named.write_text("uid,mid,other\n1,7,x\n2,8.0,y\n")
    frame = read_pairs(named, columns={"user": "uid", "item": "mid"})
    assert frame.to_dict("list") == {"user": ["1", "2"], "item": ["7", "8.0"]}   # the file's text
    bare = tmp_path / "pairs.tsv"
    bare.write_text("1\t7\n2\t8\n")
    frame = read_pairs(bare, sep="\t", columns={"user": 0, "item": 1}, header=False)
    assert frame.to_dict("list") == {"user": ["1", "2"], "item": ["7", "8"]}


def test_predictions_write_the_ids_as_the_pairs_file_gives_them(tmp_path):
    from mfsweep.io import write_csv

    # 10.5 (no user of the dataset) used to turn the whole column into floats: 20 came out as 20.0;
    # 010 and 1e1 are user 10 by value, and are written as the file writes them
    lines = ["user,item", "20,a", "10.5,b", "010,b", "1e1,zz"]
    path = tmp_path / "pairs.csv"
    path.write_text("\n".join(lines) + "\n")
    table = predict_pairs(biased_model(), catalog(), read_pairs(path))
    assert table["user_known"].tolist() == [True, False, True, True]
    assert table["item_known"].tolist() == [True, True, True, False]
    write_csv(table, tmp_path / "predictions.csv")
    written = (tmp_path / "predictions.csv").read_text().splitlines()
    assert [",".join(line.split(",")[:2]) for line in written] == lines


def test_read_pairs_errors_name_the_file_and_column(tmp_path):
    with pytest.raises(DataError, match="pairs file not found: .*missing.csv"):
        read_pairs(tmp_path / "missing.csv")
    path = tmp_path / "pairs.csv"
    path.write_text("user,movie\n1,7\n")
    with pytest.raises(DataError, match=r"missing item \(column 'item'\); columns found: \['user', 'movie'\]"):
        read_pairs(path)
    path.write_text("user,item\n1,\n")
    with pytest.raises(DataError, match="column 'item' has 1 NaN or empty values"):
        read_pairs(path)


def test_which_kinds_fall_back_to_biases():
    kinds = ("als", "als-biased", "wals", "sgd", "sgd-biased", "sgd-gramian", "adam")
    assert [create(kind).biased for kind in kinds] == [False, True, False, False, True, False, True]
    assert create("adam", biased=False).biased is False


# ----- the predict rule end to end ------------------------------------------------------------
@pytest.mark.workflow
def test_predict_rule_writes_the_best_trials_predictions(tmp_path):
    from workflow_helpers import ROOT, snakemake

    from mfsweep.data import synthetic
    from mfsweep.trials import PARAM, nest_params

    ratings = synthetic(users=60, items=40, ratings=1500, seed=4)
    ratings["user"] = ratings["user"] + 1000           # original ids that are not the dense ones
    ratings["item"] = "m" + ratings["item"].astype(str)
    ratings.to_csv(tmp_path / "ratings.csv", index=False)
    known = ratings.iloc[[0, 7, 42]][["user", "item"]]
    pairs = pd.concat([known, pd.DataFrame({"user": [5, known["user"].iloc[0]], "item": [known["item"].iloc[1], "zz"]})])
    pairs.to_csv(tmp_path / "pairs.tsv", sep="\t", header=False, index=False)
    result = snakemake(tmp_path, "--cores", "2", config=ROOT / "tests" / "configs" / "predictions.yaml")

    split = tmp_path / "results" / "splits" / "shop" / "holdout" / "fold0"
    train = pd.read_parquet(split / "train.parquet")
    n_users, n_items = len(pd.read_parquet(tmp_path / "results/data/shop/users.parquet")), 40
    assert not list((tmp_path / "results" / "trials").rglob("model.npz"))   # keep_models: false
    assert "predict" in result.stderr
    for model_name in ("als-biased", "sgd"):
        table = pd.read_csv(tmp_path / "results" / "predictions" / "shop" / "holdout" / f"{model_name}.csv")
        assert table["user"].tolist() == pairs["user"].tolist() and table["item"].tolist() == pairs["item"].tolist()
        assert table["user_known"].tolist() == [True, True, True, False, True]
        assert table["item_known"].tolist() == [True, True, True, True, False]
        # the best trial retrained (ALS and one-thread SGD are deterministic) for its best epoch
        summary = tmp_path / "results" / "summary" / "shop" / "holdout" / model_name
        best = json.loads((summary / "best.json").read_text())
        row = pd.read_parquet(summary / "trials.parquet").query("trial == @best['trial']").iloc[0]
        params = nest_params(row.to_dict(), prefix=PARAM)
        model = create(best["kind"], **{**params, "epochs": int(row["best_epoch"])}).fit(train, n_users, n_items)
        dense_user = {original: dense for dense, original in enumerate(sorted(ratings["user"].unique()))}
        dense_item = {original: dense for dense, original in enumerate(sorted(ratings["item"].unique()))}
        users = [dense_user[u] for u in known["user"]]
        items = [dense_item[i] for i in known["item"]]
        np.testing.assert_allclose(table["prediction"][:3], model.predict(users, items), rtol=1e-5)
        if model.biased:
            user_bias, item_bias = model.biases()
            fallbacks = [model.global_bias + item_bias[items[1]], model.global_bias + user_bias[users[0]]]
        else:
            fallbacks = [train["rating"].mean()] * 2
        np.testing.assert_allclose(table["prediction"][3:], fallbacks, rtol=1e-5)
        log = (tmp_path / "logs" / "predict" / "shop" / "holdout" / f"{model_name}.log").read_text()
        assert "2 pairs have a user or item without training ratings (1 unknown users, 1 unknown items)" in log
