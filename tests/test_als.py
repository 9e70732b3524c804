"""ALS family: half-steps against dense least squares, objectives, determinism, peers."""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pytest
from peer_helpers import import_peer

from mfsweep.models import ParameterError, create

TOL = 1e-4


def tiny_ratings(n_users=24, n_items=15, density=0.45, seed=0) -> pd.DataFrame:
    """Random 1..5 ratings in which every user and item has at least one rating."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    mask[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    users, items = np.nonzero(mask)
    ratings = rng.integers(1, 6, len(users)).astype(np.float32)
    return pd.DataFrame({"user": users.astype(np.int32), "item": items.astype(np.int32), "rating": ratings})


def low_rank_ratings(n_users=150, n_items=90, rank=3, per_user=18, seed=1) -> pd.DataFrame:
    """Implicit-style data with latent structure: each user rates the items it scores highest
    (plus noise), with ratings 1..5 by score."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n_users, rank)) @ rng.normal(size=(rank, n_items))
    scores += rng.gumbel(size=scores.shape)
    top = np.argsort(-scores, axis=1)[:, :per_user]
    users = np.repeat(np.arange(n_users), per_user)
    items = top.ravel()
    ratings = np.clip(np.round(scores[users, items]), 1, 5).astype(np.float32)
    return pd.DataFrame({"user": users.astype(np.int32), "item": items.astype(np.int32), "rating": ratings})


def by_row(frame: pd.DataFrame, key: str):
    for row, group in frame.groupby(key):
        yield int(row), group


def ridge(X: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """argmin |X w - y|^2 + lam |w|^2 by lstsq with the penalty as extra rows."""
    k = X.shape[1]
    A = np.vstack([X, np.sqrt(lam) * np.eye(k)])
    b = np.concatenate([y, np.zeros(k)])
    return np.linalg.lstsq(A, b, rcond=None)[0]


# ----- half-steps equal dense ridge solves -------------------------------------------------------
def assert_close(actual, expected, rtol=0.0):
    """Entry-wise within TOL, or (rtol > 0) within rtol of |expected| as a vector."""
    if rtol:
        assert np.linalg.norm(actual - expected) <= rtol * np.linalg.norm(expected), (actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, atol=TOL)


def explicit_targets(model, frame: pd.DataFrame) -> np.ndarray:
    target = frame["rating"].to_numpy(np.float64) - model.global_bias
    if model.user_bias is not None:
        target = target - model.user_bias[frame["user"]] - model.item_bias[frame["item"]]
    return target


@pytest.mark.parametrize("kind, reg, rtol, scaling", [
    ("als", {"user": 0.3, "item": 0.05}, 0.0, "count"),
    ("als-biased", {"user": 0.3, "item": 0.05}, 0.0, "count"),
    # plain least squares (minimum norm where n < k), less well conditioned
    ("als", {"user": 0.0, "item": 0.0}, 1e-3, "count"),
    # a plain lambda I ridge, the same for every row
    ("als", {"user": 0.7, "item": 0.2}, 0.0, "none"),
    ("als-biased", {"user": 0.7, "item": 0.2}, 0.0, "none"),
])
def test_explicit_half_steps_are_ridge_solves(kind, reg, rtol, scaling):
    frame = tiny_ratings()
    k = 8        # rows with fewer ratings than k take the dual solve, the others the primal
    counts = np.concatenate([frame.groupby("user").size(), frame.groupby("item").size()])
    assert (counts < k).any() and (counts >= k).any()
    model = create(kind, embedding_size=k, regularization=reg, epochs=1, seed=3, regularization_scaling=scaling)
    model.fit(frame, n_users=26)          # users 24 and 25 have no ratings
    frame = frame.assign(target=explicit_targets(model, frame))

    def scale(group):
        return len(group) if scaling == "count" else 1

    # fresh item factors, so the systems stay well conditioned without regularization
    model.item_factors = np.random.default_rng(0).normal(0, 0.5, model.item_factors.shape).astype(np.float32)

    Q = model.item_factors.astype(np.float64)
    model.user_step()
    for user, group in by_row(frame, "user"):
        expected = ridge(Q[group["item"]], group["target"].to_numpy(), reg["user"] * scale(group))
        assert_close(model.user_factors[user], expected, rtol)
    assert not model.user_factors[24:].any()

    P = model.user_factors.astype(np.float64)
    model.item_step()
    for item, group in by_row(frame, "item"):
        expected = ridge(P[group["user"]], group["target"].to_numpy(), reg["item"] * scale(group))
        assert_close(model.item_factors[item], expected, rtol)


def wals_weights(model, frame: pd.DataFrame, n_users: int, n_items: int):
    """Dense (weight, target) matrices of the weighted problem, from the parameters."""
    p = model.params
    w0 = float(p["unobserved_weight"])
    W = np.full((n_users, n_items), w0)
    ratings = frame["rating"].to_numpy(np.float64)
    if p["weighting"] == "rating":
        W[frame["user"], frame["item"]] = model.confidence(ratings)
    else:       # the column weight of each item, from its number of ratings, on top of w0
        n_i = np.bincount(frame["item"], minlength=n_items)[frame["item"]]
        linear = p["confidence"] == "linear"
        W[frame["user"], frame["item"]] = w0 + (p["alpha"] / n_i if linear else (1.0 / n_i) ** p["exponent"])
    target = np.zeros((n_users, n_items))
    target[frame["user"], frame["item"]] = ratings if p["target"] == "rating" else 1.0
    return W, target


EXPLICIT_WALS = {"target": "rating", "weighting": "item_frequency", "unobserved_weight": 0.01, "alpha": 13.0}


@pytest.mark.parametrize("params", [
    {},
    {"unobserved_weight": 0.2, "alpha": 2.0, "confidence": "log", "epsilon": 0.5, "exponent": 1.5},
    EXPLICIT_WALS,
    {**EXPLICIT_WALS, "confidence": "log", "exponent": 0.3},
    {"target": "rating", "unobserved_weight": 0.05, "alpha": 0.5},
    {"weighting": "item_frequency", "alpha": 3.0, "unobserved_weight": 0.3},
])
def test_wals_half_steps_are_weighted_ridge_solves(params):
    frame = tiny_ratings(seed=4)
    n_users, n_items = 24, 15
    reg = {"user": 0.1, "item": 0.02}
    model = create("wals", embedding_size=4, regularization=reg, epochs=2, solver="cholesky", seed=5, **params)
    model.fit(frame)
    W, pref = wals_weights(model, frame, n_users, n_items)
    root = np.sqrt(W)

    Q = model.item_factors.astype(np.float64)
    model.user_step()
    for u in range(n_users):
        expected = ridge(root[u][:, None] * Q, root[u] * pref[u], reg["user"])
        np.testing.assert_allclose(model.user_factors[u], expected, atol=TOL)

    P = model.user_factors.astype(np.float64)
    model.item_step()
    for i in range(n_items):
        expected = ridge(root[:, i][:, None] * P, root[:, i] * pref[:, i], reg["item"])
        np.testing.assert_allclose(model.item_factors[i], expected, atol=TOL)


# ----- objectives ---------------------------------------------------------------------------------
def dense_explicit_objective(model, frame: pd.DataFrame) -> float:
    reg_user, reg_item = model.pair("regularization")
    P = model.user_factors.astype(np.float64)
    Q = model.item_factors.astype(np.float64)
    users, items = frame["user"].to_numpy(), frame["item"].to_numpy()
    err = explicit_targets(model, frame) - np.einsum("ij,ij->i", P[users], Q[items])
    n_u = np.bincount(users, minlength=len(P))
    n_i = np.bincount(items, minlength=len(Q))
    if model.params["regularization_scaling"] == "none":
        n_u, n_i = np.ones(len(P)), np.ones(len(Q))
    return float(err @ err + reg_user * n_u @ (P * P).sum(1) + reg_item * n_i @ (Q * Q).sum(1))


def dense_wals_loss(model, frame: pd.DataFrame) -> float:
    P = model.user_factors.astype(np.float64)
    Q = model.item_factors.astype(np.float64)
    W, pref = wals_weights(model, frame, len(P), len(Q))
    reg_user, reg_item = model.pair("regularization")
    err = pref - P @ Q.T
    total = np.sum(W * err * err) + reg_user * np.sum(P * P) + reg_item * np.sum(Q * Q)
    return float(total / W.sum())


@pytest.mark.parametrize("kind, params", [
    ("als", {"regularization": 0.05}),
    ("als-biased", {"regularization": {"user": 0.1, "item": 0.02}, "damping": 2.0}),
    ("wals", {"solver": "cholesky", "unobserved_weight": 0.5}),
    ("wals", {"solver": "cholesky"}),
    ("wals", {"solver": "cholesky", **EXPLICIT_WALS}),
    ("als", {"regularization": 0.05, "regularization_scaling": "none"}),
])
def test_objective_never_increases_and_matches_dense(kind, params):
    frame = tiny_ratings(seed=6)
    model = create(kind, embedding_size=5, epochs=8, seed=1, **params)
    losses = []
    for state in model.fit_epochs(frame):
        losses.append(state.loss)
        if kind == "wals":
            dense = dense_wals_loss(model, frame)
            np.testing.assert_allclose(model.objective(), dense, rtol=1e-6)
        else:
            dense = dense_explicit_objective(model, frame)
            np.testing.assert_allclose(model.objective(), dense, rtol=1e-6)
            dense /= len(frame)
        np.testing.assert_allclose(state.loss, dense, rtol=1e-6)
    assert all(b <= a * (1 + 1e-6) for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < losses[0]


# ----- repeatability ---------------------------------------------------------------------------------
KINDS = [("als", {}), ("als-biased", {}), ("wals", {}), ("wals", {"solver": "cholesky"})]


def factors(model):
    return model.user_factors.copy(), model.item_factors.copy()


@pytest.mark.parametrize("kind, params", KINDS)
def test_fit_equals_fit_epochs(kind, params):
    frame = tiny_ratings(seed=7)
    a = create(kind, embedding_size=6, epochs=4, seed=9, **params)
    b = create(kind, embedding_size=6, epochs=4, seed=9, **params)
    a.fit(frame)
    states = list(b.fit_epochs(frame))
    assert [s.epoch for s in states] == [1, 2, 3, 4]
    for x, y in zip(factors(a), factors(b)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kind, params", KINDS)
def test_same_seed_same_factors_for_any_thread_count(kind, params):
    frame = low_rank_ratings()
    before = numba.get_num_threads()
    try:
        results = []
        for threads in (before, before, 1):
            numba.set_num_threads(threads)
            results.append(factors(create(kind, embedding_size=8, epochs=3, seed=11, **params).fit(frame)))
    finally:
        numba.set_num_threads(before)
    for other in results[1:]:
        for x, y in zip(results[0], other):
            np.testing.assert_array_equal(x, y)
    different = create(kind, embedding_size=8, epochs=3, seed=12, **params).fit(frame)
    assert not np.array_equal(different.item_factors, results[0][1])


# ----- solvers agree --------------------------------------------------------------------------------
def test_cg_and_cholesky_agree_in_ndcg():
    from mfsweep.metrics import evaluate

    n_users, n_items = 2000, 400
    frame = low_rank_ratings(n_users=n_users, n_items=n_items, rank=4, per_user=25)
    order = np.random.default_rng(0).permutation(len(frame))
    cut = int(0.8 * len(frame))
    train, test = frame.iloc[order[:cut]], frame.iloc[order[cut:]]
    scores = {}
    for solver in ("cg", "cholesky"):
        model = create("wals", embedding_size=8, regularization=0.05, epochs=15, solver=solver, seed=2)
        model.fit(train, n_users=n_users, n_items=n_items)
        scores[solver] = evaluate(model, train, test, cutoffs=(10,))["NDCG@10"]
    assert scores["cholesky"] > 0.25
    assert abs(scores["cg"] - scores["cholesky"]) <= 1e-3, scores


# ----- biases -------------------------------------------------------------------------------------
def test_biased_biases_are_damped_means():
    frame = tiny_ratings(seed=8)
    model = create("als-biased", embedding_size=3, damping={"user": 2.0, "item": 4.0}, epochs=1).fit(frame)
    mu = frame["rating"].mean()
    item = frame.groupby("item")["rating"].agg(lambda r: (r - mu).sum() / (len(r) + 4.0))
    resid = frame["rating"] - mu - item[frame["item"]].to_numpy()
    user = resid.groupby(frame["user"]).agg(lambda r: r.sum() / (len(r) + 2.0))
    assert model.global_bias == pytest.approx(mu)
    np.testing.assert_allclose(model.item_bias, item.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(model.user_bias, user.to_numpy(), atol=1e-6)


# ----- parameters -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, params, name", [
    ("wals", {"solver": "lu"}, "solver"),
    ("wals", {"confidence": "exp"}, "confidence"),
    ("wals", {"cg_steps": 0}, "cg_steps"),
    ("wals", {"alpha": 0.0}, "alpha"),
    ("wals", {"epsilon": -1.0}, "epsilon"),
    ("wals", {"unobserved_weight": -0.5}, "unobserved_weight"),
    ("wals", {"exponent": "two"}, "exponent"),
    ("als-biased", {"damping": -1.0}, "damping"),
    ("als-biased", {"damping": {"user": 1.0, "item": -2.0}}, "damping"),
    ("als", {"regularization": {"user": -0.1, "item": 0.1}}, "regularization"),
    ("als", {"damping": 5.0}, "damping"),
    ("als", {"embedding_size": 0}, "embedding_size"),
])
def test_bad_parameters_name_themselves(kind, params, name):
    with pytest.raises(ParameterError, match=name):
        create(kind, **params)


def test_defaults_follow_the_peers():
    biased = create("als-biased")
    assert {k: biased.params[k] for k in ("embedding_size", "regularization", "epochs", "damping")} == \
        {"embedding_size": 50, "regularization": 0.1, "epochs": 10, "damping": 5.0}
    wals = create("wals")
    assert (wals.params["embedding_size"], wals.params["regularization"], wals.params["epochs"]) == (100, 0.01, 15)
    assert (wals.params["solver"], wals.params["cg_steps"], wals.params["unobserved_weight"]) == ("cg", 3, 1.0)


# ----- peers (marked `peers`: `make test-peers` installs them and runs these) ---------------------
def dense_ratings(seed=10) -> pd.DataFrame:
    """A frame in which every user and item id appears (so peers index them the same way)."""
    return tiny_ratings(n_users=40, n_items=25, density=0.4, seed=seed)


@pytest.mark.peers
def test_biased_matches_lenskit():
    import_peer("lenskit", "lenskit")
    from lenskit.als import BiasedMFScorer
    from lenskit.data import from_interactions_df
    from lenskit.training import TrainingOptions

    frame = dense_ratings()
    reg, damping = {"user": 0.2, "item": 0.05}, {"user": 3.0, "item": 7.0}
    data = from_interactions_df(frame.rename(columns={"user": "user_id", "item": "item_id"}))
    peer = BiasedMFScorer(features=12, epochs=3, regularization=reg, damping=damping)
    peer.train(data, TrainingOptions(rng=7))
    model = create("als-biased", embedding_size=12, epochs=3, regularization=reg, damping=damping, seed=7)
    model.fit(frame)
    users = peer.users.numbers(np.arange(model.n_users))
    items = peer.items.numbers(np.arange(model.n_items))
    assert model.global_bias == pytest.approx(peer.bias.global_bias)
    np.testing.assert_allclose(model.user_bias, peer.bias.user_biases[users], atol=1e-6)
    np.testing.assert_allclose(model.item_bias, peer.bias.item_biases[items], atol=1e-6)
    np.testing.assert_allclose(model.user_factors, peer.user_embeddings[users], atol=1e-4)
    np.testing.assert_allclose(model.item_factors, peer.item_embeddings[items], atol=1e-4)


@pytest.mark.peers
def test_wals_matches_implicit():
    import_peer("implicit", "implicit")
    from implicit.cpu import _als
    from implicit.cpu.als import AlternatingLeastSquares

    frame = dense_ratings(seed=11)
    model = create("wals", embedding_size=5, epochs=3, regularization=0.05, solver="cholesky", seed=3)
    loss = list(model.fit_epochs(frame))[-1].loss
    csr = model.matrix.to_scipy()
    peer = AlternatingLeastSquares(factors=5, iterations=3, regularization=0.05, use_cg=False,
                                   random_state=3, num_threads=1)
    peer.fit(csr, show_progress=False)
    np.testing.assert_allclose(model.user_factors, peer.user_factors, atol=1e-4)
    np.testing.assert_allclose(model.item_factors, peer.item_factors, atol=1e-4)
    peer_loss = _als.calculate_loss(csr, model.user_factors, model.item_factors, 0.05)
    assert loss == pytest.approx(peer_loss, rel=1e-4)
