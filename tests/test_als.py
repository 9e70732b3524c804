"""ALS family: half-steps against dense least squares, objectives, determinism, peers."""

from __future__ import annotations

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


def wals_row_regs(model, frame: pd.DataFrame, n_users: int, n_items: int):
    """Each user's and each item's regularization, from the parameters: reg, or with
    ``regularization_scaling: frequency`` reg * (n + w0 * N)^nu (Rendle et al. 2022)."""
    p = model.params
    reg_user, reg_item = model.pair("regularization")
    n_u = np.bincount(frame["user"], minlength=n_users)
    n_i = np.bincount(frame["item"], minlength=n_items)
    if p["regularization_scaling"] == "none":
        return np.full(n_users, reg_user), np.full(n_items, reg_item)
    w0, nu = p["unobserved_weight"], p["regularization_exponent"]
    return reg_user * (n_u + w0 * n_items) ** nu, reg_item * (n_i + w0 * n_users) ** nu


EXPLICIT_WALS = {"target": "rating", "weighting": "item_frequency", "unobserved_weight": 0.01, "alpha": 13.0}
IALS = {"regularization_scaling": "frequency", "unobserved_weight": 0.1, "regularization_exponent": 1.0}


@pytest.mark.parametrize("params", [
    {},
    {"unobserved_weight": 0.2, "alpha": 2.0, "confidence": "log", "epsilon": 0.5, "exponent": 1.5},
    EXPLICIT_WALS,
    {**EXPLICIT_WALS, "confidence": "log", "exponent": 0.3},
    {"target": "rating", "unobserved_weight": 0.05, "alpha": 0.5},
    {"weighting": "item_frequency", "alpha": 3.0, "unobserved_weight": 0.3},
    # the iALS recipe: each row's regularization scaled by (n + w0 N)^nu, with either solver
    # (CG with more steps than factors reaches the exact solve)
    {**IALS, "solver": "cholesky"},
    {**IALS, "solver": "cg", "cg_steps": 8},
    {**IALS, "solver": "cholesky", "regularization_exponent": 0.6, "unobserved_weight": 0.7,
     "alpha": 1.1, "exponent": 0.0, "init_std": 0.2},
    {**IALS, "solver": "cg", "cg_steps": 8, "regularization_exponent": 0.6, "unobserved_weight": 0.7,
     **EXPLICIT_WALS},
])
def test_wals_half_steps_are_weighted_ridge_solves(params):
    frame = tiny_ratings(seed=4)
    n_users, n_items = 24, 15
    reg = {"user": 0.1, "item": 0.02}
    params = {"solver": "cholesky", **params}
    model = create("wals", embedding_size=4, regularization=reg, epochs=2, seed=5, **params)
    model.fit(frame)
    W, pref = wals_weights(model, frame, n_users, n_items)
    root = np.sqrt(W)
    lam_user, lam_item = wals_row_regs(model, frame, n_users, n_items)
    if params.get("regularization_scaling") == "frequency":   # the rows' regularizations differ
        assert np.ptp(lam_user) > 0 and np.ptp(lam_item) > 0

    Q = model.item_factors.astype(np.float64)
    model.user_step()
    for u in range(n_users):
        expected = ridge(root[u][:, None] * Q, root[u] * pref[u], lam_user[u])
        np.testing.assert_allclose(model.user_factors[u], expected, atol=TOL)

    P = model.user_factors.astype(np.float64)
    model.item_step()
    for i in range(n_items):
        expected = ridge(root[:, i][:, None] * P, root[:, i] * pref[:, i], lam_item[i])
        np.testing.assert_allclose(model.item_factors[i], expected, atol=TOL)


def test_wals_maps_onto_the_ials_update():
    """iALS (Rendle et al. 2022) solves x_u = (w0 G + lam_u I + sum_i y_i y_i^T)^-1 sum_i y_i:
    loss (1 - d)^2 on rated pairs plus w0 d^2 on every pair. wals with constant confidence
    alpha = 1 + w0 (exponent 0) and regularization (1 + w0) lam gives the same model with
    factors scaled by sqrt(1 + w0) (the mapping config/references/ials-ml20m.yaml uses)."""
    frame = tiny_ratings(seed=4)
    n_users, n_items = 24, 15
    w0, lam, nu = 0.1, 0.003, 1.0
    s = 1.0 + w0
    model = create("wals", embedding_size=4, epochs=2, seed=5, solver="cholesky", alpha=s, exponent=0.0,
                   unobserved_weight=w0, regularization=s * lam, regularization_scaling="frequency",
                   regularization_exponent=nu)
    model.fit(frame)
    Y = model.item_factors.astype(np.float64) / np.sqrt(s)      # the iALS item factors
    model.user_step()
    for user, group in by_row(frame, "user"):
        Yu = Y[group["item"]]
        lam_u = lam * (len(group) + w0 * n_items) ** nu
        A = w0 * Y.T @ Y + lam_u * np.eye(4) + Yu.T @ Yu
        expected = np.linalg.solve(A, Yu.sum(axis=0))
        np.testing.assert_allclose(model.user_factors[user] / np.sqrt(s), expected, atol=TOL)
    assert len(frame["user"].unique()) == n_users


def test_wals_init_std_draws_normal_factors_users_first():
    from mfsweep.matrix import as_matrix

    frame = tiny_ratings(seed=4)
    model = create("wals", embedding_size=6, init_std=0.25, seed=8)
    model._setup(as_matrix(frame), np.random.default_rng(8))
    rng = np.random.default_rng(8)
    np.testing.assert_array_equal(model.user_factors, rng.standard_normal((24, 6), dtype=np.float32) * 0.25)
    np.testing.assert_array_equal(model.item_factors, rng.standard_normal((15, 6), dtype=np.float32) * 0.25)


#: wals with its defaults on tiny_ratings(seed=4), k=3, 2 epochs, seed 5, regularization
#: {user: 0.1, item: 0.02}: the item factors and loss computed before regularization_scaling
#: and init_std existed (float32 to 1e-6: a change of formula shows; a change of the last
#: bit from another CPU's vector width does not).
DEFAULT_WALS_ITEMS = {
    "cg": (0.14191229181982656, [
        [0.6512725, -0.2515314, 0.2577863], [-0.16228494, -0.32580492, 1.1243775],
        [-0.8991398, 0.92841655, 0.54059154], [0.10413015, -0.056294084, 0.7859997],
        [0.38508084, 0.41037634, -0.33917937], [0.32033578, -0.6444658, 1.0236981],
        [0.38345006, 0.2968658, -0.13624248], [-0.16561326, 0.43599182, 0.51946133],
        [1.0056232, -0.55134636, -0.09940919], [0.35570198, 0.69584084, -0.6717405],
        [0.71102715, 0.2945277, -0.5362516], [-0.49733758, 0.64551467, 0.7349244],
        [0.39047506, -0.47515872, 0.59135103], [0.6171521, -0.61446047, 0.6942267],
        [1.2296373, -0.368488, -0.5187268]]),
    "cholesky": (0.1419099209955263, [
        [0.6512507, -0.25146586, 0.2578122], [-0.16250464, -0.32558078, 1.1243832],
        [-0.8990594, 0.9283543, 0.5405112], [0.10407706, -0.056213222, 0.7859945],
        [0.38522765, 0.4102514, -0.33911273], [0.32026133, -0.6444604, 1.0237428],
        [0.38382417, 0.29650638, -0.13623005], [-0.16563961, 0.43602625, 0.5194627],
        [1.0056504, -0.5513172, -0.09941119], [0.3556093, 0.69617397, -0.6718974],
        [0.7111705, 0.29453415, -0.536317], [-0.49720043, 0.6454264, 0.73486924],
        [0.39059496, -0.4755159, 0.5915215], [0.61703414, -0.6142832, 0.69423044],
        [1.2297198, -0.36845607, -0.51874375]]),
}


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_wals_defaults_keep_their_factors(solver):
    frame = tiny_ratings(seed=4)
    common = dict(embedding_size=3, epochs=2, seed=5, solver=solver, regularization={"user": 0.1, "item": 0.02})
    default = create("wals", **common)
    loss = list(default.fit_epochs(frame))[-1].loss
    expected_loss, expected_items = DEFAULT_WALS_ITEMS[solver]
    np.testing.assert_allclose(default.item_factors, np.array(expected_items, np.float32), atol=1e-6)
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    explicit = create("wals", regularization_scaling="none", regularization_exponent=1.0, init_std=None, **common)
    explicit.fit(frame)
    for x, y in zip(factors(default), factors(explicit)):
        np.testing.assert_array_equal(x, y)


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
    lam_user, lam_item = wals_row_regs(model, frame, len(P), len(Q))
    err = pref - P @ Q.T
    total = np.sum(W * err * err) + lam_user @ np.sum(P * P, axis=1) + lam_item @ np.sum(Q * Q, axis=1)
    return float(total / W.sum())


@pytest.mark.parametrize("kind, params", [
    ("als", {"regularization": 0.05}),
    ("als-biased", {"regularization": {"user": 0.1, "item": 0.02}, "damping": 2.0}),
    ("wals", {"solver": "cholesky", "unobserved_weight": 0.5}),
    ("wals", {"solver": "cholesky"}),
    ("wals", {"solver": "cholesky", **EXPLICIT_WALS}),
    ("als", {"regularization": 0.05, "regularization_scaling": "none"}),
    ("wals", {"solver": "cholesky", **IALS, "regularization": 0.02}),
    ("wals", {"solver": "cholesky", **IALS, "regularization_exponent": 0.5, "init_std": 0.1}),
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
def factors(model):
    return model.user_factors.copy(), model.item_factors.copy()


# fit against fit_epochs, and one seed on any thread count: tests/test_model_contract.py, for every kind


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
    ("wals", {"regularization_scaling": "count"}, "regularization_scaling"),
    ("wals", {"regularization_exponent": -1.0}, "regularization_exponent"),
    ("wals", {"regularization_exponent": "1"}, "regularization_exponent"),
    ("wals", {"init_std": 0.0}, "init_std"),
    ("wals", {"init_std": "0.1"}, "init_std"),
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
