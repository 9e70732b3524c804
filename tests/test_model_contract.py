"""The model contract: what every kind of ``mfsweep.models.KINDS`` promises, checked for each.

Every kind (and the variants of ``VARIANTS``) on the same small ratings:

- a model's ``kind`` is its key in KINDS;
- ``fit`` is ``fit_epochs`` run to the end, bit for bit; ``fit_epochs`` yields epochs 1..n
  with finite losses;
- the loss parts add up to the loss and become the history's ``loss_*`` columns;
- a seed gives the same model on one numba thread or two; another seed, another model;
- an unknown parameter, ``embedding_size: 0``, ``epochs: 0`` and a negative
  ``regularization`` are refused with a ParameterError naming the parameter;
- ``save`` then ``MFModel.load`` scores and ranks as before, also from a file of several
  trials stored under ``{trial}/`` (model.npz of a batch);
- ``recommend`` leaves out the excluded (training) items, best first, and pads with -1 only
  when no candidate is left;
- ``predict`` gives finite float64 scores.

- continuation: a training stopped after some epochs, saved to an npz file and continued
  from it in a fresh model gives, bit for bit, what training straight to the end gives: at the
  model level (``training_state`` and ``fit_epochs(resume=)``, on one thread and two) and at
  the trial level (``run_trial(resume=)`` with validation and early stopping: history, best
  epoch, best state, stop reason), also for the options of ``CONTINUATION_VARIANTS``.

A kind added to ``KINDS`` runs the contract with ``SMALL`` alone until it has a row in
``VARIANTS``, and ``test_every_kind_has_a_row_in_the_contract_table`` fails until it does.
"""

from __future__ import annotations

import math
import re

import numba
import numpy as np
import pandas as pd
import pytest
from conftest import make_ratings

from mfsweep.io import write_npz
from mfsweep.metrics import Evaluator
from mfsweep.models import KINDS, MFModel, ParameterError, create
from mfsweep.pipeline.jobs import model_arrays
from mfsweep.train import LOSS_PARTS, Checkpoint, Plateau, run_trial
from mfsweep.trials import selection_metric

#: What every model in the contract is built with: small and quick.
SMALL = {"embedding_size": 4, "epochs": 3, "seed": 5}

#: kind -> {variant name: parameters beyond SMALL}; every kind of KINDS needs a row.
VARIANTS: dict[str, dict[str, dict]] = {
    "als": {"": {}},
    "als-biased": {"": {}},
    "wals": {
        "cg": {"solver": "cg"},
        "cholesky": {"solver": "cholesky"},
        "rating-target": {"target": "rating"},
        "frequency-scaling": {"regularization_scaling": "frequency"},
    },
    "sgd": {"": {}},
    "sgd-biased": {"": {}},
    "sgd-gramian": {"": {"batch_size": 64}},     # several Gramian steps an epoch
    "adam": {"": {"batch_size": 64}},
    "bpr": {"": {}},
}

#: More options whose state continuation must carry (schedules, moments, sampling), beyond VARIANTS.
#: (``hogwild`` is left out: on two threads its updates race, so no two runs are equal.)
CONTINUATION_VARIANTS: dict[str, dict[str, dict]] = {
    "wals": {"log-frequency-normal": {"confidence": "log", "weighting": "item_frequency", "init_std": 0.1}},
    "sgd-gramian": {"schedule": {"batch_size": 64, "period": 3, "decay_pct": 0.2}},   # lr steps mid-epoch
    "adam": {"coupled": {"batch_size": 64, "decoupled": False}, "unbiased": {"batch_size": 64, "biased": False}},
    "bpr": {"popularity": {"sampling": "popularity", "negatives": 2}, "no-bias": {"item_bias": False}},
}

N_USERS, N_ITEMS = 41, 30


def training_ratings() -> pd.DataFrame:
    """40 users with 12 of the 30 items each, and user 40, who rated every item."""
    full = pd.DataFrame({
        "user": np.full(N_ITEMS, N_USERS - 1, np.int32),
        "item": np.arange(N_ITEMS, dtype=np.int32),
        "rating": np.tile(np.float32([1.0, 3.0, 4.5]), N_ITEMS // 3),
        "timestamp": np.arange(N_ITEMS, dtype=np.int64),
    })
    return pd.concat([make_ratings(N_USERS - 1, N_ITEMS, 12, seed=4), full], ignore_index=True)


TRAIN = training_ratings()
USERS = np.array([0, 1, 7, 23, N_USERS - 1])   # a few users, the one who rated everything among them


def cases(table: dict[str, dict[str, dict]]):
    for kind in KINDS:
        for name, params in table.get(kind, {"": {}}).items():
            yield pytest.param(kind, params, id=f"{kind}-{name}" if name else kind)


CASES = list(cases(VARIANTS))
CONTINUATION_CASES = CASES + [case for case in cases(CONTINUATION_VARIANTS) if case.id not in
                              {c.id for c in CASES}]


def build(kind: str, params: dict, **overrides):
    return create(kind, **{**SMALL, **params, **overrides})


def fitted(kind: str, params: dict, **overrides) -> MFModel:
    return build(kind, params, **overrides).fit(TRAIN)


def assert_same_model(a: MFModel, b: MFModel) -> None:
    """Factors, biases, kind and parameters equal, bit for bit."""
    sa, sb = a.state(), b.state()
    assert sa.keys() == sb.keys()
    for name in sa:
        np.testing.assert_array_equal(sa[name], sb[name], err_msg=name)


def all_pairs(users: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(users, n_items), np.tile(np.arange(n_items), len(users))


# ----- the table --------------------------------------------------------------------------------------
def test_every_kind_has_a_row_in_the_contract_table():
    missing = [kind for kind in KINDS if kind not in VARIANTS]
    assert not missing, (f"model kinds without a row in VARIANTS of tests/test_model_contract.py: "
                         f"{', '.join(missing)}; add their small-run parameters there")
    stale = [kind for kind in VARIANTS if kind not in KINDS]
    assert not stale, f"VARIANTS names kinds that mfsweep.models.KINDS lacks: {', '.join(stale)}"


# ----- training ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, params", CASES)
def test_fit_is_fit_epochs_to_the_end(kind, params):
    stepped = build(kind, params)
    assert stepped.kind == kind, "a model's kind is its key in KINDS (load builds it from the stored kind)"
    states = list(stepped.fit_epochs(TRAIN))
    assert [s.epoch for s in states] == list(range(1, SMALL["epochs"] + 1))
    assert all(s.model is stepped for s in states)
    assert all(math.isfinite(s.loss) for s in states), [s.loss for s in states]
    assert_same_model(stepped, fitted(kind, params))


@pytest.mark.parametrize("kind, params", CASES)
def test_loss_parts_add_up_to_the_loss_and_become_history_columns(kind, params):
    states = list(build(kind, params).fit_epochs(TRAIN))
    for s in states:
        assert {"data", "l2"} <= s.parts.keys(), s.parts
        assert all(math.isfinite(v) for v in s.parts.values()), s.parts
        assert sum(s.parts.values()) == pytest.approx(s.loss, rel=1e-9, abs=1e-12), (s.epoch, s.parts, s.loss)
    columns = [f"loss_{name}" for name in states[0].parts]
    assert set(columns) <= set(LOSS_PARTS), f"parts {columns} are not history columns {LOSS_PARTS}"
    # the epoch loop writes them as its history's columns, beside the same losses
    result = run_trial(build(kind, params), TRAIN, None, Plateau("train_loss", patience=SMALL["epochs"] + 1))
    history = result.history
    assert result.stop_reason == "max_epochs" and list(history["epoch"]) == [s.epoch for s in states]
    assert [c for c in history.columns if c.startswith("loss_")] == [c for c in LOSS_PARTS if c in columns]
    assert list(history["train_loss"]) == [s.loss for s in states]
    for name in states[0].parts:
        assert list(history[f"loss_{name}"]) == [s.parts[name] for s in states]


@pytest.mark.parametrize("kind, params", CASES)
def test_same_seed_same_model_on_one_or_two_threads(kind, params, threads):
    threads(1)
    one = fitted(kind, params)
    threads(2)
    assert numba.get_num_threads() == 2, "numba's pool has one thread: run with NUMBA_NUM_THREADS=2 or more"
    two = fitted(kind, params)
    assert_same_model(one, two)
    other = fitted(kind, params, seed=SMALL["seed"] + 1)
    assert not np.array_equal(other.user_factors, one.user_factors)
    assert not np.array_equal(other.item_factors, one.item_factors)


# ----- parameters -------------------------------------------------------------------------------------
BAD = [
    pytest.param({"no_such_parameter": 1}, r"unknown parameter\(s\) no_such_parameter\b", id="unknown"),
    pytest.param({"embedding_size": 0}, r"\bembedding_size must\b", id="embedding_size"),
    pytest.param({"epochs": 0}, r"\bepochs must\b", id="epochs"),
    pytest.param({"regularization": -0.1}, r"\bregularization must\b", id="regularization"),
]


@pytest.mark.parametrize("bad, message", BAD)
@pytest.mark.parametrize("kind, params", CASES)
def test_bad_parameters_are_refused_by_name(kind, params, bad, message):
    with pytest.raises(ParameterError, match=rf"^{re.escape(kind)}: .*{message}"):
        build(kind, params, **bad)


# ----- files ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, params", CASES)
def test_save_and_load_give_the_same_scores_and_rankings(kind, params, tmp_path):
    model = fitted(kind, params)
    model.save(tmp_path / "model.npz")
    loaded = MFModel.load(tmp_path / "model.npz")
    assert type(loaded) is type(model) and loaded.params == model.params
    users, items = all_pairs(USERS, N_ITEMS)
    np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
    np.testing.assert_array_equal(loaded.recommend(USERS, 10, exclude=TRAIN), model.recommend(USERS, 10, exclude=TRAIN))
    np.testing.assert_array_equal(loaded.recommend(USERS, 10), model.recommend(USERS, 10))


@pytest.mark.parametrize("kind, params", CASES)
def test_load_with_a_prefix_reads_that_trial(kind, params, tmp_path):
    models = {"0003": fitted(kind, params), "0007": fitted(kind, params, seed=SMALL["seed"] + 1)}
    write_npz(tmp_path / "model.npz", **model_arrays({trial: m.state() for trial, m in models.items()}))
    users, items = all_pairs(USERS, N_ITEMS)
    for trial, model in models.items():
        loaded = MFModel.load(tmp_path / "model.npz", prefix=f"{trial}/")
        assert type(loaded) is type(model) and loaded.params == model.params
        np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
    assert not np.array_equal(models["0003"].predict(users, items), models["0007"].predict(users, items))


# ----- scoring ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, params", CASES)
def test_recommend_leaves_out_the_excluded_items_and_pads_only_when_none_is_left(kind, params):
    model = fitted(kind, params)
    users = np.arange(N_USERS)
    rated = TRAIN.groupby("user")["item"].agg(set)
    for n in (10, N_ITEMS):
        top = model.recommend(users, n, exclude=TRAIN)
        assert top.shape == (N_USERS, n)
        for user, row in zip(users, top):
            candidates = sorted(set(range(N_ITEMS)) - rated[user])
            shown = row[row >= 0]
            assert np.array_equal(row, np.concatenate([shown, np.full(n - len(shown), -1)])), row
            assert len(shown) == min(n, len(candidates)), (user, row)
            assert set(shown) <= set(candidates), (user, row)
            scores = model.predict(np.full(len(shown), user), shown)
            assert np.all(np.diff(scores) <= 1e-5 * (1 + np.abs(scores[1:]))), (user, scores)
    assert (model.recommend([N_USERS - 1], 5, exclude=TRAIN) == -1).all()   # rated every item
    unfiltered = model.recommend(users, N_ITEMS)
    assert (np.sort(unfiltered, axis=1) == np.arange(N_ITEMS)).all()


@pytest.mark.parametrize("kind, params", CASES)
def test_predict_gives_finite_float64(kind, params):
    model = fitted(kind, params)
    users, items = all_pairs(np.arange(N_USERS), N_ITEMS)
    scores = model.predict(users, items)
    assert scores.dtype == np.float64 and scores.shape == (N_USERS * N_ITEMS,)
    assert np.isfinite(scores).all()


# ----- continuation -----------------------------------------------------------------------------------
#: Validation ratings for the trial-level case: 3 more items of each of the 40 users.
VALID = make_ratings(N_USERS - 1, N_ITEMS, 3, seed=9)


def through_npz(arrays: dict, path) -> dict:
    """``arrays`` written as a file is (mfsweep.io.write_npz), read back with np.load."""
    write_npz(path, **arrays)
    with np.load(path) as npz:
        return dict(npz)


def assert_same_arrays(a: dict, b: dict) -> None:
    assert a.keys() == b.keys(), sorted(set(a) ^ set(b))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("kind, params", CONTINUATION_CASES)
def test_training_continued_from_a_file_is_training_straight_through(kind, params, n_threads, threads, tmp_path):
    threads(n_threads)
    assert numba.get_num_threads() == n_threads, "numba's pool has one thread: run with NUMBA_NUM_THREADS=2 or more"
    total, split = 5, 2
    straight = build(kind, params, epochs=total)
    states = [(s.epoch, s.loss, s.parts) for s in straight.fit_epochs(TRAIN)]
    first = build(kind, params, epochs=split).fit(TRAIN)
    saved = through_npz(first.training_state(), tmp_path / "training.npz")
    assert int(saved["epoch"]) == split
    resumed = build(kind, params, epochs=total)
    assert [(s.epoch, s.loss, s.parts) for s in resumed.fit_epochs(TRAIN, resume=saved)] == states[split:]
    assert_same_model(resumed, straight)
    # and what would decide further epochs (random streams, steps, moments) is the same too
    assert_same_arrays(resumed.training_state(), straight.training_state())


def continued_trial(kind: str, params: dict, split: int, total: int, evaluate, metric: str, path):
    """A trial run to ``split`` epochs, its checkpoint through a file, continued to ``total``."""
    first = run_trial(build(kind, params, epochs=split), TRAIN, evaluate, Plateau(metric, 2, 0.01))
    assert first.stop_reason == "max_epochs" and first.checkpoint is not None
    checkpoint = Checkpoint.from_arrays(through_npz(first.checkpoint.to_arrays(), path))
    return run_trial(build(kind, params, epochs=total), TRAIN, evaluate, Plateau(metric, 2, 0.01), resume=checkpoint)


TIMINGS = ["seconds", "cpu_seconds", "eval_seconds"]


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("kind, params", CONTINUATION_CASES)
def test_trial_continued_from_a_checkpoint_is_the_trial_run_straight_through(kind, params, n_threads, threads,
                                                                           tmp_path):
    threads(n_threads)
    assert numba.get_num_threads() == n_threads, "numba's pool has one thread: run with NUMBA_NUM_THREADS=2 or more"
    total, metric = 12, selection_metric(kind, params)
    evaluate = Evaluator(TRAIN, VALID, cutoffs=(5,))
    straight = run_trial(build(kind, params, epochs=total), TRAIN, evaluate, Plateau(metric, 2, 0.01))
    assert straight.stop_reason == "plateau", "the case is to stop early, after the split"
    # split after the first epoch and just before the stop (where the plateau's state decides it)
    for split in sorted({1, straight.epochs_completed - 1}):
        resumed = continued_trial(kind, params, split, total, evaluate, metric, tmp_path / f"{split}.npz")
        pd.testing.assert_frame_equal(resumed.history.drop(columns=TIMINGS), straight.history.drop(columns=TIMINGS),
                                      check_exact=True)
        assert (resumed.stop_reason, resumed.epochs_completed, resumed.best_epoch, resumed.validation) == (
            straight.stop_reason, straight.epochs_completed, straight.best_epoch, straight.validation), split
        assert_same_arrays(resumed.best_state, straight.best_state)
        assert_same_arrays(resumed.checkpoint.training, straight.checkpoint.training)


@pytest.mark.parametrize("kind, params", CASES)
def test_a_checkpoint_survives_an_npz_file(kind, params, tmp_path):
    metric = selection_metric(kind, params)
    result = run_trial(build(kind, params), TRAIN, Evaluator(TRAIN, VALID, cutoffs=(5,)), Plateau(metric, 5, 0.01))
    checkpoint = result.checkpoint
    arrays = checkpoint.to_arrays()
    assert not [name for name, value in arrays.items() if np.asarray(value).dtype == object]
    # stored under a trial's prefix in a file of several, as model.npz holds its trials
    write_npz(tmp_path / "checkpoints.npz", **model_arrays({"0003": arrays, "0007": arrays}))
    with np.load(tmp_path / "checkpoints.npz") as npz:
        back = Checkpoint.from_arrays(npz, prefix="0003/")
    assert_same_arrays(back.training, checkpoint.training)
    assert_same_arrays(back.best_state, checkpoint.best_state)
    pd.testing.assert_frame_equal(back.history, checkpoint.history, check_exact=True)
    assert list(back.history.columns) == list(result.history.columns) and len(back.history) == SMALL["epochs"]
    assert (back.plateau_best, back.plateau_best_epoch, back.train_seconds, back.cpu_seconds, back.stop_reason) == (
        checkpoint.plateau_best, checkpoint.plateau_best_epoch, checkpoint.train_seconds, checkpoint.cpu_seconds,
        checkpoint.stop_reason)
