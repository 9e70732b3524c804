import numpy as np
import pandas as pd
import pytest
from conftest import make_ratings

from mfsweep.splits import Fold, SplitError, n_folds, split_fold, write_fold

METHODS = {
    "random": {"method": "random", "test_fraction": 0.2, "validation_fraction": 0.1, "seed": 1},
    "kfold": {"method": "random", "folds": 4, "validation_fraction": 0.1, "seed": 1},
    "user": {"method": "user", "folds": 4, "holdout": 3, "validation_fraction": 0.2, "seed": 1},
    "temporal": {"method": "temporal", "test_fraction": 0.2, "validation_fraction": 0.1},
}


@pytest.fixture
def dense():
    """Every user rates every item: nothing is ever unseen in training."""
    users, items = np.meshgrid(np.arange(30, dtype=np.int32), np.arange(20, dtype=np.int32), indexing="ij")
    rng = np.random.default_rng(3)
    order = rng.permutation(users.size)
    return pd.DataFrame({
        "user": users.ravel()[order],
        "item": items.ravel()[order],
        "rating": rng.integers(1, 6, users.size).astype(np.float32),
        "timestamp": rng.integers(0, 300, users.size).astype(np.int64),
    })


def keys(frame):
    return set(zip(frame["user"].tolist(), frame["item"].tolist()))


@pytest.mark.parametrize("name", list(METHODS))
def test_parts_are_disjoint_and_cover_every_rating(tiny_ratings, name):
    settings = METHODS[name]
    for fold in range(n_folds(settings)):
        split = split_fold(tiny_ratings, settings, fold)
        train, valid, test = keys(split.train), keys(split.valid), keys(split.test)
        assert not (train & valid) and not (train & test) and not (valid & test)
        assert (train | valid | test) <= keys(tiny_ratings)
        assert len(train) + len(valid) + len(test) + sum(split.dropped.values()) == len(tiny_ratings)
        assert len(valid) > 0 and len(test) > 0
        for part in (split.valid, split.test):
            assert part["user"].isin(split.train["user"]).all()
            assert part["item"].isin(split.train["item"]).all()
        assert list(split.train.columns) == list(tiny_ratings.columns)


@pytest.mark.parametrize("name", list(METHODS))
def test_parts_keep_the_input_row_order(tiny_ratings, name):
    indexed = tiny_ratings.assign(row=np.arange(len(tiny_ratings)))
    split = split_fold(indexed, METHODS[name], 0)
    for part in (split.train, split.valid, split.test):
        assert part["row"].is_monotonic_increasing
        assert part.index.equals(pd.RangeIndex(len(part)))


def test_random_holdout_sizes(dense):
    split = split_fold(dense, {"method": "random", "test_fraction": 0.25, "validation_fraction": 0.1}, 0)
    assert sum(split.dropped.values()) == 0
    assert len(split.test) == 150 and len(split.valid) == 45 and len(split.train) == 405


def test_kfold_tests_every_rating_exactly_once(dense):
    settings = {"method": "random", "folds": 7, "validation_fraction": 0.1, "seed": 9}
    tested = pd.concat([split_fold(dense, settings, fold).test for fold in range(7)])
    assert len(tested) == len(dense) and keys(tested) == keys(dense)
    sizes = [len(split_fold(dense, settings, fold).test) for fold in range(7)]
    assert max(sizes) - min(sizes) <= 1


def test_user_holds_out_n_ratings_of_each_test_user(dense):
    settings = {"method": "user", "folds": 5, "holdout": 4, "validation_fraction": 0.25, "seed": 2}
    seen = []
    for fold in range(5):
        split = split_fold(dense, settings, fold)
        assert sum(split.dropped.values()) == 0
        per_user = split.test.groupby("user").size()
        assert len(per_user) == 6 and (per_user == 4).all()
        valid_users = split.valid.groupby("user").size()
        assert len(valid_users) == round(0.25 * 30) and (valid_users == 4).all()
        # a test user keeps the rest of its ratings in training
        assert (split.train.groupby("user").size().loc[per_user.index] >= 20 - 8).all()
        seen += per_user.index.tolist()
    assert sorted(seen) == list(range(30))


def test_user_keeps_users_with_at_most_n_ratings_in_training():
    frame = make_ratings(30, 40, 8, seed=4)
    light = frame[frame["user"] < 5].groupby("user").head(3)
    frame = pd.concat([frame[frame["user"] >= 5], light], ignore_index=True)
    settings = {"method": "user", "folds": 3, "holdout": 3, "validation_fraction": 0.0}
    for fold in range(3):
        split = split_fold(frame, settings, fold)
        assert not split.test["user"].isin(range(5)).any()
        assert (split.train[split.train["user"] < 5].groupby("user").size() == 3).all()


def test_temporal_cuts_by_time(tiny_ratings):
    split = split_fold(tiny_ratings, METHODS["temporal"], 0)
    assert split.train["timestamp"].max() <= split.valid["timestamp"].min()
    assert split.valid["timestamp"].max() <= split.test["timestamp"].min()


def test_temporal_by_hand():
    frame = pd.DataFrame({
        "user": [0, 1, 0, 1, 0, 1, 2, 1, 0, 1],
        "item": [0, 0, 1, 1, 2, 3, 0, 2, 3, 4],
        "rating": np.ones(10, np.float32),
        "timestamp": [5, 1, 2, 9, 3, 4, 9, 6, 7, 8],
    })
    # by (time, row): rows 1 2 4 5 0 7 8 9 3 6; the last 3 test, 2 of the 7 before validate
    split = split_fold(frame, {"method": "temporal", "test_fraction": 0.3, "validation_fraction": 0.3}, 0)
    assert split.train["timestamp"].tolist() == [5, 1, 2, 3, 4]
    assert split.valid["timestamp"].tolist() == [6, 7]
    # row 9 (item 4) and row 6 (user 2) are unseen in training
    assert split.test["timestamp"].tolist() == [9]
    assert split.dropped == {"test_unseen_user": 1, "test_unseen_item": 1,
                             "valid_unseen_user": 0, "valid_unseen_item": 0}


def test_validation_fraction_zero_gives_an_empty_part(tiny_ratings):
    for name, settings in METHODS.items():
        split = split_fold(tiny_ratings, {**settings, "validation_fraction": 0}, 0)
        assert len(split.valid) == 0 and list(split.valid.columns) == list(tiny_ratings.columns)


@pytest.mark.parametrize("name", list(METHODS))
def test_same_seed_same_files_byte_for_byte(tiny_ratings, tmp_path, name):
    settings = METHODS[name]
    sizes = write_fold(split_fold(tiny_ratings, settings, 0), tmp_path / "a")
    write_fold(split_fold(tiny_ratings.copy(), dict(settings), 0), tmp_path / "b")
    for part in ("train", "valid", "test"):
        assert (tmp_path / "a" / f"{part}.parquet").read_bytes() == (tmp_path / "b" / f"{part}.parquet").read_bytes()
    assert sizes["test"] == len(pd.read_parquet(tmp_path / "a" / "test.parquet"))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["test.parquet", "train.parquet", "valid.parquet"]


def test_another_seed_another_split(tiny_ratings):
    for name in ("random", "kfold", "user"):
        a = split_fold(tiny_ratings, METHODS[name], 0)
        b = split_fold(tiny_ratings, {**METHODS[name], "seed": 2}, 0)
        assert keys(a.test) != keys(b.test)


def test_n_folds_and_defaults():
    assert n_folds({"method": "random"}) == 1
    assert n_folds({"method": "random", "folds": 3}) == 3
    assert n_folds({"method": "user"}) == 5
    assert n_folds({"method": "temporal"}) == 1


@pytest.mark.parametrize("settings, key", [
    ({"method": "random", "test_fraction": 0}, "test_fraction"),
    ({"method": "random", "test_fraction": 1.0}, "test_fraction"),
    ({"method": "temporal", "test_fraction": -0.1}, "test_fraction"),
    ({"method": "random", "validation_fraction": 1}, "validation_fraction"),
    ({"method": "random", "folds": 0}, "folds"),
    ({"method": "user", "folds": 2.5}, "folds"),
    ({"method": "temporal", "folds": 2}, "folds"),
    ({"method": "user", "holdout": 0}, "holdout"),
    ({"method": "random", "seed": -1}, "seed"),
    ({"method": "shuffle"}, "method"),
    ({}, "method"),
    ({"method": "random", "test_size": 0.2}, "test_size"),
])
def test_bad_settings_name_the_key(tiny_ratings, settings, key):
    with pytest.raises(SplitError, match=key):
        split_fold(tiny_ratings, settings, 0)


def test_fold_out_of_range(tiny_ratings):
    with pytest.raises(SplitError, match="fold must be in 0..3"):
        split_fold(tiny_ratings, METHODS["kfold"], 4)


def test_empty_folds_are_errors(tiny_ratings):
    few = tiny_ratings.head(3)
    with pytest.raises(SplitError, match="folds: fold 0 would have 0 of 3"):
        split_fold(few, {"method": "random", "folds": 5}, 0)
    with pytest.raises(SplitError, match="test_fraction"):
        split_fold(few, {"method": "random", "test_fraction": 0.1}, 0)
    with pytest.raises(SplitError, match="folds: 40 users have more than holdout=5"):
        split_fold(tiny_ratings, {"method": "user", "folds": 41}, 0)
    with pytest.raises(SplitError, match="validation_fraction"):
        split_fold(tiny_ratings, {"method": "random", "validation_fraction": 0.0001}, 0)


def test_fold_is_a_dataclass(tiny_ratings):
    split = split_fold(tiny_ratings, METHODS["random"], 0)
    assert isinstance(split, Fold) and set(split.dropped) == {
        "test_unseen_user", "test_unseen_item", "valid_unseen_user", "valid_unseen_item"}
