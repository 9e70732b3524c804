"""``bpr``: one step against the gradient, the sampled negatives, the loss parts, repeatability, files, implicit."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from peer_helpers import import_peer

from mfsweep.kernels import bpr as kernels
from mfsweep.matrix import as_matrix
from mfsweep.metrics import evaluate
from mfsweep.models import MFModel, ParameterError, create


# ----- helpers ------------------------------------------------------------------------------------
def frame(users, items) -> pd.DataFrame:
    return pd.DataFrame({"user": np.asarray(users, np.int32), "item": np.asarray(items, np.int32),
                         "rating": np.ones(len(users), np.float32)})


def low_rank(n_users=60, n_items=40, per_user=8, seed=0) -> pd.DataFrame:
    """Each user rates the ``per_user`` items it scores highest under a rank-3 model, plus noise."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n_users, 3)) @ rng.normal(size=(3, n_items)) + rng.normal(0, 0.3, (n_users, n_items))
    items = np.argsort(-scores, axis=1)[:, :per_user]
    return frame(np.repeat(np.arange(n_users), per_user), items.reshape(-1))


def all_but_one(n_users=8, n_items=6) -> pd.DataFrame:
    """User u rates every item but u % n_items: its one negative is forced."""
    users, items = zip(*[(u, i) for u in range(n_users) for i in range(n_items) if i != u % n_items])
    return frame(users, items)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def triple_objective(p, qi, qj, bi, bj, reg):
    """log sigmoid(x_uij) minus the triple's L2 penalty (what one step climbs), float64."""
    reg_u, reg_i = reg
    x = p @ (qi - qj) + bi - bj
    penalty = reg_u * p @ p + reg_i * (qi @ qi + qj @ qj + bi * bi + bj * bj)
    return math.log(sigmoid(x)) - penalty / 2


# ----- one step -----------------------------------------------------------------------------------
@pytest.mark.parametrize("biased", [True, False])
def test_one_step_climbs_the_gradient_of_the_triple(biased):
    """User 0 rated items 0 and 2 of 3: its triple for the pair (0, 0) must take item 1."""
    rng = np.random.default_rng(3)
    P = rng.normal(0, 0.5, (1, 4)).astype(np.float32)
    Q = rng.normal(0, 0.5, (3, 4)).astype(np.float32)
    b = np.array([0.3, -0.2, 0.1], np.float32) if biased else np.zeros(3, np.float32)
    before = [P[0].astype(np.float64), Q[0].astype(np.float64), Q[1].astype(np.float64),
              float(b[0]), float(b[1])]
    untouched = Q[2].copy()
    lr, reg = 0.05, (0.1, 0.3)
    steps = (np.zeros(1, np.int64), np.zeros(3, np.int64))
    rated = (np.array([0, 2], np.int64), np.array([0, 2], np.int32))
    pairs = (np.array([0], np.int32), np.array([0], np.int32))
    rates = tuple(np.float32(x) for x in (lr, reg[0], reg[1], reg[1]))
    total = kernels.bpr_epoch(pairs, rated, (P, Q, b), rates, (1, np.uint64(5), biased, False), steps)

    # the gradient written out by hand: d log sigmoid(x) / dx = sigmoid(-x)
    p, qi, qj, bi, bj = before
    x = p @ (qi - qj) + (bi - bj if biased else 0.0)
    z = sigmoid(-x)
    expected = {"p": p + lr * (z * (qi - qj) - reg[0] * p), "qi": qi + lr * (z * p - reg[1] * qi),
                "qj": qj + lr * (-z * p - reg[1] * qj)}
    np.testing.assert_allclose(P[0], expected["p"], rtol=1e-5)
    np.testing.assert_allclose(Q[0], expected["qi"], rtol=1e-5)
    np.testing.assert_allclose(Q[1], expected["qj"], rtol=1e-5)
    np.testing.assert_array_equal(Q[2], untouched)
    assert total == pytest.approx(-math.log(sigmoid(x)), rel=1e-6)
    assert steps[0].tolist() == [1] and steps[1].tolist() == [1, 1, 0]
    if biased:
        assert b[0] == pytest.approx(bi + lr * (z - reg[1] * bi), rel=1e-5)
        assert b[1] == pytest.approx(bj + lr * (-z - reg[1] * bj), rel=1e-5)
    else:
        assert not b.any()

    # and the hand-written gradient is the objective's (central differences)
    h = 1e-6
    for index, name in ((0, "p"), (1, "qi"), (2, "qj")):
        for f in range(4):
            plus = [v.copy() if isinstance(v, np.ndarray) else v for v in before]
            minus = [v.copy() if isinstance(v, np.ndarray) else v for v in before]
            plus[index][f] += h
            minus[index][f] -= h
            if not biased:
                plus[3] = plus[4] = minus[3] = minus[4] = 0.0
            slope = (triple_objective(*plus, reg) - triple_objective(*minus, reg)) / (2 * h)
            assert (expected[name][f] - before[index][f]) / lr == pytest.approx(slope, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("x", [-1000.0, -60.0, -3.0, -1e-4, 0.0, 2.5, 40.0, 100.0, 1000.0])
def test_the_step_loss_is_minus_log_sigmoid_without_overflow(x):
    e = np.exp(np.float32(x)) if x < 89 else np.float32(np.inf)
    expected = math.log1p(math.exp(-x)) if x > -700 else -x
    assert kernels.minus_log_sigmoid(np.float32(x), e) == pytest.approx(expected, rel=1e-6, abs=1e-37)  # exp(x) overflows float32 above 88


# ----- negatives ----------------------------------------------------------------------------------
def test_uniform_negatives_are_the_unrated_items_evenly():
    matrix = as_matrix(low_rank(n_users=5, n_items=12, per_user=7))
    for u in range(matrix.n_users):
        lo, hi = matrix.indptr[u], matrix.indptr[u + 1]
        rated = set(matrix.indices[lo:hi].tolist())
        draws = np.array([kernels.negative(np.uint64(9), t, matrix.indices, lo, hi, matrix.n_items, False)
                          for t in range(5000)])
        counts = np.bincount(draws, minlength=matrix.n_items)
        assert not counts[sorted(rated)].any()
        unrated = counts[[i for i in range(matrix.n_items) if i not in rated]]
        # 5 unrated items, 1000 draws expected each: 4 standard deviations is 127
        assert np.abs(unrated - 1000).max() < 130, unrated


def test_popularity_negatives_follow_the_rating_counts_and_skip_rated_ones():
    data = frame([0, 1, 1, 2, 2, 2, 3, 3, 3], [0, 0, 1, 0, 1, 2, 0, 1, 3])
    matrix = as_matrix(data)
    counts = np.bincount(matrix.indices, minlength=matrix.n_items)     # 4, 3, 1, 1
    lo, hi = matrix.indptr[0], matrix.indptr[1]                       # user 0 rated item 0 only
    draws = np.array([kernels.negative(np.uint64(4), t, matrix.indices, lo, hi, matrix.n_items, True)
                      for t in range(9000)])
    seen = np.bincount(draws[draws >= 0], minlength=matrix.n_items)
    # a draw of item 0 (4 of 9 pairs) is no negative: -1, the triple is skipped
    assert (draws == -1).mean() == pytest.approx(4 / 9, abs=0.02)
    assert seen[0] == 0
    np.testing.assert_allclose(seen[1:] / 9000, counts[1:] / 9, atol=0.02)


@pytest.mark.parametrize("sampling", ["uniform", "popularity"])
def test_training_never_steps_on_a_rated_negative(sampling):
    """With every user missing one item, that item takes every negative step of the user."""
    data = all_but_one()
    model = create("bpr", embedding_size=3, epochs=1, negatives=3, sampling=sampling)
    model.fit(data)
    user_steps, item_steps = model._steps
    per_user = data.groupby("user").size().to_numpy()
    raters = np.bincount(data["item"], minlength=6)
    if sampling == "uniform":
        assert user_steps.tolist() == (3 * per_user).tolist()
        missing = np.bincount(np.arange(8) % 6, minlength=6)
        assert item_steps.tolist() == (3 * raters + 3 * per_user[0] * missing).tolist()
    else:
        assert 0 < user_steps.sum() < 3 * len(data)
        assert item_steps.sum() == 2 * user_steps.sum()
        assert (item_steps >= 0).all()


def test_a_user_who_rated_every_item_is_skipped():
    data = pd.concat([frame([0] * 4, range(4)), frame([1, 1], [0, 1])])
    model = create("bpr", embedding_size=2, epochs=2)
    states = list(model.fit_epochs(data))
    assert model._steps[0].tolist() == [0, 2]
    assert all(math.isfinite(s.loss) for s in states)


# ----- loss -------------------------------------------------------------------------------------
@pytest.mark.parametrize("item_bias", [True, False])
def test_loss_parts_are_the_objective_of_the_epoch(item_bias):
    """Forced negatives: the data part at a tiny learning rate is the loss at the initial factors,
    and the L2 part weighs each row by the steps that moved it (written out in numpy)."""
    data = all_but_one()
    reg = {"user": 0.2, "item": 0.05}
    model = create("bpr", embedding_size=4, epochs=1, learning_rate=1e-9, regularization=reg, init_std=0.5,
                   negatives=2, item_bias=item_bias, seed=4)
    state = next(model.fit_epochs(data))
    # at learning rate 1e-9 the factors hardly move: the end of the epoch stands for its start
    P, Q = model.user_factors.astype(np.float64), model.item_factors.astype(np.float64)
    b = model.item_bias.astype(np.float64) if item_bias else np.zeros(6)
    u, i = data["user"].to_numpy(), data["item"].to_numpy()
    j = u % 6
    x = (P[u] * (Q[i] - Q[j])).sum(1) + b[i] - b[j]
    data_part = np.mean(np.log1p(np.exp(-x)))
    # two steps (negatives) per pair, each with the pair's penalty / 2, over 2 N steps
    penalty = 0.2 * (P[u] ** 2).sum(1) + 0.05 * ((Q[i] ** 2).sum(1) + (Q[j] ** 2).sum(1) + b[i] ** 2 + b[j] ** 2)
    l2_part = 2 * np.sum(penalty / 2) / (2 * len(data))
    assert state.parts["data"] == pytest.approx(data_part, rel=1e-5)
    assert state.parts["l2"] == pytest.approx(l2_part, rel=1e-6)
    assert state.loss == state.parts["data"] + state.parts["l2"]
    assert set(state.parts) == {"data", "l2"}


def test_loss_falls_and_training_ranks_the_held_out_items():
    data = low_rank(n_users=80, n_items=50, per_user=10, seed=2)
    held = data.groupby("user").head(2).index
    train, test = data.drop(held), data.loc[held]
    model = create("bpr", embedding_size=8, epochs=30, learning_rate=0.05, regularization=0.01, seed=1)
    losses = [s.loss for s in model.fit_epochs(train)]
    assert losses[-1] < 0.6 * losses[0]
    assert evaluate(model, train, test, cutoffs=(10,))["NDCG@10"] > 0.3
    untrained = create("bpr", embedding_size=8, epochs=1, learning_rate=1e-9, seed=1).fit(train)
    assert evaluate(untrained, train, test, cutoffs=(10,))["NDCG@10"] < 0.25


def test_divergence_gives_non_finite_loss_without_exception():
    model = create("bpr", embedding_size=4, epochs=40, learning_rate=50.0, regularization=1.0, init_std=1.0)
    losses = [s.loss for s in model.fit_epochs(low_rank())]
    assert not math.isfinite(losses[-1])
    frozen = model.user_factors.copy()
    model._epoch(len(losses) + 1)
    np.testing.assert_array_equal(model.user_factors, frozen)


# ----- repeatability, threads, files ------------------------------------------------------------
@pytest.mark.parametrize("sampling", ["uniform", "popularity"])
def test_same_seed_same_model_whatever_the_threads(sampling, threads):
    data = low_rank(seed=6)
    fits = []
    for n in (1, 2, 1, 2):
        threads(n)
        model = create("bpr", embedding_size=6, epochs=3, seed=9, sampling=sampling, negatives=2)
        states = list(model.fit_epochs(data))
        fits.append((model.user_factors, model.item_factors, model.item_bias, [(s.loss, s.parts) for s in states]))
    for other in fits[1:]:
        for mine, theirs in zip(fits[0][:3], other[:3]):
            np.testing.assert_array_equal(mine, theirs)
        assert other[3] == fits[0][3]
    different = create("bpr", embedding_size=6, epochs=3, seed=10, sampling=sampling).fit(data)
    assert not np.array_equal(different.user_factors, fits[0][0])


def test_fit_is_fit_epochs_to_the_end():
    data = low_rank(seed=7)
    settings = dict(embedding_size=5, epochs=4, seed=3, negatives=2)
    stepped = create("bpr", **settings)
    losses = [s.loss for s in stepped.fit_epochs(data)]
    fitted = create("bpr", **settings).fit(data)
    np.testing.assert_array_equal(stepped.user_factors, fitted.user_factors)
    np.testing.assert_array_equal(stepped.item_factors, fitted.item_factors)
    np.testing.assert_array_equal(stepped.item_bias, fitted.item_bias)
    assert len(losses) == 4


def test_hogwild_trains(threads):
    """Lock-free parallel epochs train about as well as sequential ones (not repeatable)."""
    threads(2)
    data = low_rank(n_users=120, n_items=60, seed=8)
    settings = dict(embedding_size=8, epochs=30, seed=1, learning_rate=0.1)
    parallel = [s.loss for s in create("bpr", hogwild=True, **settings).fit_epochs(data)]
    sequential = [s.loss for s in create("bpr", **settings).fit_epochs(data)]
    assert all(math.isfinite(x) for x in parallel)
    assert parallel[-1] < 0.8 * parallel[0]
    assert parallel[-1] < 1.2 * sequential[-1]


@pytest.mark.parametrize("item_bias", [True, False])
def test_save_and_load_give_the_same_model(tmp_path, item_bias):
    data = low_rank(seed=9)
    model = create("bpr", embedding_size=5, epochs=3, item_bias=item_bias, sampling="popularity").fit(data)
    model.save(tmp_path / "model.npz")
    loaded = MFModel.load(tmp_path / "model.npz")
    assert loaded.kind == "bpr" and loaded.params == model.params
    users, items = data["user"].to_numpy(), data["item"].to_numpy()
    np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
    np.testing.assert_array_equal(loaded.recommend(np.arange(5), 5, exclude=data),
                                  model.recommend(np.arange(5), 5, exclude=data))
    assert (model.item_bias is not None) == item_bias


def test_item_bias_enters_the_scores():
    model = create("bpr", embedding_size=3, epochs=5, learning_rate=0.1).fit(low_rank(seed=10))
    assert np.abs(model.item_bias).max() > 0.01
    dots = model.user_factors[0] @ model.item_factors.T
    np.testing.assert_allclose(model.predict(np.zeros(40, int), np.arange(40)), dots + model.item_bias, rtol=1e-5)


# ----- parameters -------------------------------------------------------------------------------
@pytest.mark.parametrize("name, value", [
    ("negatives", 0),
    ("negatives", 1.5),
    ("negatives", True),
    ("learning_rate", 0),
    ("learning_rate", -0.01),
    ("regularization", -0.1),
    ("init_std", -1.0),
    ("item_bias", "yes"),
    ("sampling", "popular"),
    ("hogwild", 1),
    ("batch_size", 10),
])
def test_bad_parameters_name_themselves(name, value):
    with pytest.raises(ParameterError, match=name):
        create("bpr", **{name: value})


def test_defaults_follow_implicit():
    p = create("bpr").params
    assert (p["embedding_size"], p["learning_rate"], p["regularization"], p["epochs"]) == (100, 0.01, 0.01, 100)
    assert (p["negatives"], p["item_bias"], p["sampling"], p["hogwild"]) == (1, True, "uniform", False)


# ----- peer (marked `peers`: `make test-peers` installs implicit and runs this) -------------------
@pytest.fixture(scope="module")
def ml100k(tmp_path_factory):
    """ML-100K (GroupLens, or RecBole's wheel when unreachable) in an 80/20 random split."""
    from mfsweep.data.fetch import download
    from mfsweep.data.prepare import prepare
    from mfsweep.splits import split_fold

    folder = tmp_path_factory.mktemp("ml-100k")
    download("ml-100k", folder / "ml-100k.zip", retries=1)
    prepare({"name": "ml-100k", "source": "movielens"}, folder, raw=folder / "ml-100k.zip")
    ratings = pd.read_parquet(folder / "ratings.parquet")
    fold = split_fold(ratings, {"method": "random", "test_fraction": 0.2, "validation_fraction": 0.0, "seed": 42}, 0)
    return fold.train, fold.test


@pytest.mark.peers
def test_popularity_sampling_matches_implicit_on_ml100k(ml100k):
    """Same factors, learning rate, regularization and epochs (and implicit's initial spread,
    uniform(-0.5, 0.5) / factors): test NDCG@10 within 0.01, mean over three seeds each."""
    import_peer("implicit", "implicit")
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    train, test = ml100k
    factors, lr, reg, epochs = 32, 0.01, 0.01, 60
    csr = as_matrix(train).to_scipy()
    ours, theirs = [], []
    for seed in (0, 1, 2):
        model = create("bpr", embedding_size=factors, learning_rate=lr, regularization=reg, epochs=epochs,
                       init_std=1 / (factors * math.sqrt(12)), sampling="popularity", seed=seed).fit(train)
        ours.append(evaluate(model, train, test, cutoffs=(10,))["NDCG@10"])
        peer = BayesianPersonalizedRanking(factors=factors, learning_rate=lr, regularization=reg, iterations=epochs,
                                           random_state=seed, num_threads=1)
        peer.fit(csr, show_progress=False)
        # implicit's last column is the item bias (every user's is 1)
        as_ours = create("bpr", embedding_size=factors + 1, item_bias=False)
        as_ours.user_factors, as_ours.item_factors = peer.user_factors, peer.item_factors
        theirs.append(evaluate(as_ours, train, test, cutoffs=(10,))["NDCG@10"])
    assert np.mean(theirs) > 0.2
    assert abs(np.mean(ours) - np.mean(theirs)) < 0.01, (ours, theirs)
