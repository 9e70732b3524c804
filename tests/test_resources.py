"""Job resources: monotone in every size, sane at the MovieLens sizes, covering the measurements."""

import itertools

import numpy as np
import pandas as pd
import pytest

from mfsweep.data.movielens import MOVIELENS
from mfsweep.models import KINDS
from mfsweep.pipeline import resources as res

KINDS_ = sorted(KINDS)
# (training ratings, users, items) of the 72% training part of ML-100K, ML-1M, ML-10M, ML-32M.
SIZES = [(72_000, 943, 1682), (720_000, 6040, 3706), (7_200_000, 69_878, 10_677), (23_000_000, 200_948, 87_585)]


def test_every_model_kind_has_a_size():
    assert set(res.FACTOR_COPIES) == set(KINDS)


def test_every_movielens_release_sizes_its_prepare_job():
    for name, release in MOVIELENS.items():
        assert res.dataset_ratings({"source": "movielens", "name": name}) == release.n_ratings > 0


def grid(**axes):
    """Every point of a grid, with the next point along each axis."""
    keys = list(axes)
    for values in itertools.product(*axes.values()):
        point = dict(zip(keys, values))
        for key in keys:
            index = axes[key].index(point[key])
            if index + 1 < len(axes[key]):
                yield key, point, {**point, key: axes[key][index + 1]}


AXES = dict(n_ratings=[10_000, 1_000_000, 20_000_000], n_users=[1000, 100_000], n_items=[1000, 50_000],
            embedding_size=[8, 64, 512])


@pytest.mark.parametrize("kind", KINDS_)
def test_train_memory_never_falls_as_any_size_grows(kind):
    for key, point, bigger in grid(**AXES):
        assert res.train_mem_mb(**bigger, kind=kind) >= res.train_mem_mb(**point, kind=kind), (key, point)
    base = dict(n_ratings=5_000_000, n_users=30_000, n_items=15_000, embedding_size=64, kind=kind)
    for key, bigger in (("n_ratings", 20_000_000), ("embedding_size", 1024), ("n_users", 300_000)):
        assert res.train_mem_mb(**{**base, key: bigger}) > res.train_mem_mb(**base), key


@pytest.mark.parametrize("kind", KINDS_)
def test_train_runtime_never_falls_as_any_size_grows(kind):
    for key, point, bigger in grid(**AXES, max_epochs=[1, 30]):
        assert res.train_runtime_min(**bigger, kind=kind) >= res.train_runtime_min(**point, kind=kind), (key, point)
    base = dict(n_ratings=5_000_000, embedding_size=64, max_epochs=20, kind=kind, n_users=30_000, n_items=15_000)
    for key, bigger in (("n_ratings", 50_000_000), ("embedding_size", 1024), ("max_epochs", 200),
                        ("n_items", 1_000_000)):
        assert res.train_runtime_min(**{**base, key: bigger}) > res.train_runtime_min(**base), key


def test_evaluate_never_falls_as_any_size_grows():
    for key, point, bigger in grid(**AXES):
        assert res.evaluate_mem_mb(**bigger) >= res.evaluate_mem_mb(**point), (key, point)
        assert res.evaluate_runtime_min(**bigger) >= res.evaluate_runtime_min(**point), (key, point)


def test_evaluate_split_and_prepare_grow_with_the_ratings():
    small, large = 1_000_000, 20_000_000
    assert res.evaluate_mem_mb(large, 60_000, 20_000, 64) > res.evaluate_mem_mb(small, 60_000, 20_000, 64)
    assert res.evaluate_mem_mb(small, 60_000, 20_000, 256) > res.evaluate_mem_mb(small, 60_000, 20_000, 64)
    assert res.evaluate_runtime_min(small, 64, 200_000, 80_000) > res.evaluate_runtime_min(small, 64, 60_000, 20_000)
    assert res.evaluate_runtime_min(large, 64) > res.evaluate_runtime_min(small, 64)
    for memory in (res.split_mem_mb, res.prepare_mem_mb):
        assert memory(large) > memory(small)
    for runtime in (res.split_runtime_min, res.prepare_runtime_min):
        assert runtime(5 * large) > runtime(large)


def test_threads_never_fall_as_data_grows_and_stay_in_bounds():
    counts = [0, 1, 10_000, 999_999, 1_000_000, 5_000_000, 20_000_000, 10**9]
    values = [res.prepare_threads(n) for n in counts]
    assert values == sorted(values) and values[0] == 1 and max(values) <= 8


def test_small_jobs_get_the_floors():
    assert res.train_mem_mb(3000, 120, 80, 8, "als-biased") == res.MIN_MEM_MB
    assert res.train_runtime_min(3000, 8, 4, "sgd-biased") == res.MIN_RUNTIME_MIN
    assert res.evaluate_mem_mb(3000, 120, 80, 8) == res.MIN_MEM_MB
    assert res.split_mem_mb(3000) == res.MIN_MEM_MB and res.prepare_runtime_min(3000) == res.MIN_RUNTIME_MIN


@pytest.mark.parametrize("kind", KINDS_)
def test_movielens_sizes_ask_for_sane_amounts(kind):
    for (n, users, items), k in itertools.product(SIZES, (16, 256)):
        memory = res.train_mem_mb(n, users, items, k, kind)
        runtime = res.train_runtime_min(n, k, 30, kind, n_users=users, n_items=items)
        assert res.MIN_MEM_MB <= memory <= 16_000, (n, k, memory)
        assert res.MIN_RUNTIME_MIN <= runtime <= 2 * 24 * 60, (n, k, runtime)
        assert memory % 100 == 0 and isinstance(memory, int) and isinstance(runtime, int)
    n, users, items = SIZES[0]
    assert res.train_mem_mb(n, users, items, 64, kind) <= 1500
    assert res.train_runtime_min(n, 64, 30, kind, n_users=users, n_items=items) <= 10


# Measured on 5M synthetic ratings (3.6M training; 30000 users, 15000 items; one thread):
# peak RSS of train + evaluate in one process, and CPU seconds of one epoch (module docstring).
MEASURED = [("als-biased", 64, 719, 0.68), ("als-biased", 256, 769, 6.3), ("wals", 256, 781, 1.9),
            ("sgd-biased", 64, 751, 0.12), ("sgd-biased", 256, 796, 0.31), ("sgd-gramian", 64, 725, 6.2),
            ("adam", 64, 769, 5.6), ("adam", 256, 831, 22.5), ("bpr", 64, 624, 1.25), ("bpr", 256, 686, 1.75)]


@pytest.mark.parametrize("kind, k, peak_mb, epoch_s", MEASURED)
def test_estimates_cover_the_measurements(kind, k, peak_mb, epoch_s):
    memory = res.train_mem_mb(3_600_000, 30_000, 15_000, k, kind)
    assert memory >= res.SNAKEMAKE_MB + peak_mb * 1.2
    estimate = res.epoch_seconds(3_600_000, 45_000, k, kind, res.default_param(kind, "batch_size", 1))
    assert 0.8 * epoch_s <= estimate <= 5 * epoch_s


def test_a_batch_of_trials_adds_its_runtimes_and_keeps_every_best_state():
    one = res.train_runtime_min(5_000_000, 128, 30, "als-biased", n_users=30_000, n_items=15_000)
    four = res.train_runtime_min(5_000_000, [128] * 4, 30, "als-biased", n_users=30_000, n_items=15_000)
    assert 3 * one <= four <= 4 * one
    mixed = res.train_mem_mb(5_000_000, 300_000, 150_000, [16, 256, 64], "adam")
    assert mixed > res.train_mem_mb(5_000_000, 300_000, 150_000, 256, "adam")
    assert res.train_mem_mb(5_000_000, 30_000, 15_000, np.array([64, 64]), "als") > 0


def test_embedding_sizes_of_a_unit_fill_in_the_kind_default():
    from mfsweep.models import create

    for kind in KINDS_:
        default = create(kind).embedding_size
        assert res.embedding_sizes(kind, [{"embedding_size": 8}, {"seed": 1}]) == [8, default]


def test_a_searched_batch_size_sizes_the_runtime_by_its_smallest_value():
    assert res.smallest_batch("adam", [{"batch_size": 256}, {"batch_size": 32}, {}]) == 32
    assert res.smallest_batch("adam", [{"seed": 1}]) == 1024          # adam's default
    assert res.smallest_batch("als", [{"embedding_size": 8}]) is None
    slow = res.train_runtime_min(5_000_000, 64, 20, "adam", 300_000, 150_000, batch_size=32)
    assert slow > res.train_runtime_min(5_000_000, 64, 20, "adam", 300_000, 150_000, batch_size=1024)


def test_bpr_runtime_grows_with_the_most_negatives_of_a_unit():
    assert res.most_negatives("bpr", [{"negatives": 3}, {}]) == 3
    assert res.most_negatives("bpr", [{"seed": 1}]) == 1                # bpr's default
    assert res.most_negatives("sgd", [{"embedding_size": 8}]) is None
    one = res.epoch_seconds(3_600_000, 45_000, 64, "bpr")
    assert res.epoch_seconds(3_600_000, 45_000, 64, "bpr", negatives=5) == pytest.approx(5 * one)
    many = res.train_runtime_min(5_000_000, 64, 20, "bpr", 300_000, 150_000, negatives=5)
    assert many > res.train_runtime_min(5_000_000, 64, 20, "bpr", 300_000, 150_000)


def test_parquet_rows_of_a_missing_file_name_the_file(tmp_path):
    pd.DataFrame({"user": [1, 2]}).to_parquet(tmp_path / "a.parquet")
    assert res.parquet_rows(tmp_path / "a.parquet") == 2
    missing = str(tmp_path / "b.parquet")
    with pytest.raises(FileNotFoundError) as error:
        res.parquet_rows(missing)
    assert error.value.filename == missing


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown model kind 'svd'"):
        res.train_mem_mb(1000, 10, 10, 8, "svd")
    with pytest.raises(ValueError, match="n_ratings must be an integer >= 0"):
        res.split_mem_mb(-1)
    with pytest.raises(ValueError, match="embedding_size must be an integer >= 1"):
        res.train_runtime_min(1000, 0, 10, "als")
    with pytest.raises(ValueError, match="max_epochs"):
        res.train_runtime_min(1000, 8, True, "als")
    with pytest.raises(ValueError, match="no sizes"):
        res.evaluate_mem_mb(1000, 10, 10, [])


def test_dataset_ratings_before_prepare(tmp_path):
    assert res.dataset_ratings({"source": "movielens", "name": "ml-1m"}) == 1_000_209
    assert res.dataset_ratings({"source": "synthetic", "users": 10, "items": 10, "ratings": 77}) == 77
    frame = pd.DataFrame({"user": [1, 2, 3], "item": [4, 5, 6], "rating": [1.0, 2.0, 3.0]})
    frame.to_parquet(tmp_path / "r.parquet")
    assert res.dataset_ratings({"source": "file", "path": str(tmp_path / "r.parquet")}) == 3
    csv = tmp_path / "r.csv"
    csv.write_text("userId,movieId,rating,timestamp\n" + "1,31,2.5,1260759144\n" * 100)
    assert 100 <= res.dataset_ratings({"source": "file", "path": "elsewhere.csv"}, path=csv) <= 200
    with pytest.raises(ValueError, match="not found"):
        res.dataset_ratings({"source": "file", "path": str(tmp_path / "missing.csv")})
    with pytest.raises(ValueError, match="unknown MovieLens dataset 'ml-5m'"):
        res.dataset_ratings({"source": "movielens", "name": "ml-5m"})
    with pytest.raises(ValueError, match="unknown dataset source"):
        res.dataset_ratings({"source": "kaggle"})
