"""The SGD family: gradients against finite differences, Surprise and PyTorch; losses; repeatability."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from peer_helpers import import_peer

from mfsweep.kernels import sgd as kernels
from mfsweep.matrix import as_matrix
from mfsweep.models import ParameterError, create

KINDS = ("sgd", "sgd-biased", "sgd-gramian", "adam")
PER_RATING = ("sgd", "sgd-biased", "sgd-gramian")


# ----- helpers ------------------------------------------------------------------------------------
def frame(users, items, ratings) -> pd.DataFrame:
    return pd.DataFrame({"user": np.asarray(users, np.int32), "item": np.asarray(items, np.int32),
                         "rating": np.asarray(ratings, np.float32)})


def synthetic(n_users=30, n_items=20, density=0.6, seed=0) -> pd.DataFrame:
    """Low-rank ratings around 3 on a random part of the user x item grid."""
    rng = np.random.default_rng(seed)
    scores = 3.0 + rng.normal(0, 0.7, (n_users, 3)) @ rng.normal(0, 0.7, (3, n_items))
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    ratings = np.clip(scores[users, items] + rng.normal(0, 0.1, len(users)), 1, 5)
    return frame(users, items, ratings)


def prepared(kind: str, data: pd.DataFrame, **params):
    """A model set up on ``data`` (factors drawn) without training."""
    model = create(kind, **params)
    model._setup(as_matrix(data), np.random.default_rng(model.params["seed"]))
    return model


def state(model) -> dict[str, np.ndarray]:
    """Copies of the learned parameters in float64 (biases only for biased kinds)."""
    out = {"P": model.user_factors.astype(np.float64), "Q": model.item_factors.astype(np.float64)}
    if model.user_bias is not None:
        out["bu"] = model.user_bias.astype(np.float64)
        out["bi"] = model.item_bias.astype(np.float64)
    return out


def pair(value) -> tuple[float, float]:
    return (value["user"], value["item"]) if isinstance(value, dict) else (value, value)


def objective(kind: str, params: dict, theta: dict, mu: float, data: pd.DataFrame) -> float:
    """The training objective of each kind, written independently in numpy (float64)."""
    u, i = data["user"].to_numpy(), data["item"].to_numpy()
    r = data["rating"].to_numpy(np.float64)
    P, Q = theta["P"], theta["Q"]
    pred = (P[u] * Q[i]).sum(1)
    if "bu" in theta:
        pred = pred + mu + theta["bu"][u] + theta["bi"][i]
    err = r - pred
    reg_u, reg_i = pair(params["regularization"])
    l2 = reg_u * (P[u] ** 2).sum(1) + reg_i * (Q[i] ** 2).sum(1)
    if kind == "adam":
        return float(np.mean(err ** 2 + l2))
    total = np.mean(0.5 * err ** 2 + 0.5 * l2)
    if kind == "sgd-biased":
        bias_reg = params.get("regularization_bias")
        rb_u, rb_i = pair(params["regularization"] if bias_reg is None else bias_reg)
        total += np.mean(0.5 * rb_u * theta["bu"][u] ** 2 + 0.5 * rb_i * theta["bi"][i] ** 2)
    if kind == "sgd-gramian":
        total += params["gravity"] * np.sum((P.T @ P / len(P)) * (Q.T @ Q / len(Q)))
    return float(total)


def numeric_gradient(kind, params, theta, mu, data, h=1e-6) -> dict[str, np.ndarray]:
    grad = {}
    for name, values in theta.items():
        g = np.zeros_like(values)
        for index in np.ndindex(values.shape):
            plus = {k: v.copy() for k, v in theta.items()}
            minus = {k: v.copy() for k, v in theta.items()}
            plus[name][index] += h
            minus[name][index] -= h
            g[index] = (objective(kind, params, plus, mu, data) - objective(kind, params, minus, mu, data)) / (2 * h)
        grad[name] = g
    return grad


STEP_PARAMS = {
    "sgd": dict(learning_rate=0.01, regularization={"user": 0.1, "item": 0.2}),
    "sgd-biased": dict(learning_rate=0.01, learning_rate_bias=0.03, regularization={"user": 0.1, "item": 0.2},
                       regularization_bias={"user": 0.3, "item": 0.05}),
    "sgd-gramian": dict(learning_rate=0.01, regularization={"user": 0.1, "item": 0.2}, gravity=0.7, batch_size=1),
    "adam": dict(learning_rate=0.01, regularization={"user": 0.1, "item": 0.2}, weight_decay=0.5, eps=1.0,
                 batch_size=1),
}


# ----- one step against finite differences --------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_one_step_is_minus_learning_rate_times_gradient(kind):
    data = frame([0], [0], [4.0])
    params = dict(embedding_size=3, init_std=0.5, seed=3, epochs=1, **STEP_PARAMS[kind])
    model = prepared(kind, data, **params)
    if model.user_bias is not None:                 # non-zero biases, so their L2 term counts
        model.user_bias[:] = 0.3
        model.item_bias[:] = -0.2
    before = state(model)
    mu = model.global_bias
    grad = numeric_gradient(kind, model.params, before, mu, data)
    model._epoch(1)
    after = state(model)
    lr = params["learning_rate"]
    for name in before:
        change = after[name] - before[name]
        g = grad[name]
        if kind == "adam":
            # AdamW's first step: m_hat = g, sqrt(v_hat) = |g|
            expected = -lr * params["weight_decay"] * before[name] - lr * g / (np.abs(g) + params["eps"])
        else:
            rate = params.get("learning_rate_bias", lr) if name in ("bu", "bi") else lr
            expected = -rate * g
        np.testing.assert_allclose(change, expected, rtol=2e-4, atol=2e-7, err_msg=f"{kind} {name}")


@pytest.mark.parametrize("kind", PER_RATING)
def test_epoch_of_small_steps_sums_to_full_gradient(kind):
    """Over an epoch the per-rating steps add up to -lr * N * grad F (first order in lr).

    For sgd-gramian this checks the split of the gravity gradient over each row's ratings.
    """
    data = frame([0, 0, 1, 1, 2, 2, 2, 0], [0, 1, 1, 2, 3, 0, 2, 3], [4, 3, 5, 2, 1, 4, 3, 5])
    params = dict(embedding_size=3, init_std=0.5, seed=5, epochs=1, learning_rate=2e-4,
                  regularization={"user": 0.5, "item": 0.3})
    if kind == "sgd-gramian":
        params.update(gravity=2.0, batch_size=100)     # one batch: Gramians of the starting point
    model = prepared(kind, data, **params)
    before = state(model)
    grad = numeric_gradient(kind, model.params, before, model.global_bias, data)
    model._epoch(1)
    after = state(model)
    for name in before:
        expected = -params["learning_rate"] * len(data) * grad[name]
        change = after[name] - before[name]
        np.testing.assert_allclose(change, expected, atol=0.01 * np.abs(expected).max(), err_msg=f"{kind} {name}")


# ----- independent implementations -------------------------------------------------------------
@pytest.mark.peers
def test_biased_kernel_matches_surprise_svd():
    """Two epochs of our kernel in Surprise's rating order equal scikit-surprise's SVD."""
    surprise = import_peer("surprise", "scikit-surprise")
    data = synthetic(seed=1)
    trainset = surprise.Dataset.load_from_df(
        data[["user", "item", "rating"]], surprise.Reader(rating_scale=(1, 5))).build_full_trainset()
    settings = dict(n_factors=4, lr_all=0.01, reg_all=0.05, random_state=7)
    start = surprise.SVD(n_epochs=0, **settings).fit(trainset)
    algo = surprise.SVD(n_epochs=2, **settings).fit(trainset)
    u, i, r = (np.array(column) for column in zip(*trainset.all_ratings()))
    P, Q = start.pu.astype(np.float32), start.qi.astype(np.float32)
    bu = np.zeros(trainset.n_users, np.float32)
    bi = np.zeros(trainset.n_items, np.float32)
    f32 = np.float32
    for _ in range(2):
        kernels.sgd_epoch((u.astype(np.int32), i.astype(np.int32), r.astype(np.float32)),
                          (f32(trainset.global_mean), P, Q, bu, bi), (f32(0.01),) * 2 + (f32(0.05),) * 4, True)
    for ours, theirs in ((P, algo.pu), (Q, algo.qi), (bu, algo.bu), (bi, algo.bi)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.peers
@pytest.mark.parametrize("decoupled, biased", [(True, True), (False, True), (True, False), (False, False)])
def test_adam_matches_torch(decoupled, biased):
    """AdamW (default) or Adam with coupled weight_decay (``decoupled: false``), on the biased
    model or the plain dot product (``biased: false``), against torch.optim."""
    torch = import_peer("torch", "torch")
    data = synthetic(n_users=12, n_items=9, seed=2)
    params = dict(embedding_size=5, epochs=3, learning_rate=0.02, regularization={"user": 0.05, "item": 0.1},
                  weight_decay=0.1, batch_size=7, beta1=0.8, beta2=0.99, eps=1e-6, seed=4,
                  decoupled=decoupled, biased=biased)
    model = create("adam", **params).fit(data)

    twin = prepared("adam", data, **params)           # the same initial factors and shuffles
    P = torch.nn.Parameter(torch.from_numpy(twin.user_factors.copy()))
    Q = torch.nn.Parameter(torch.from_numpy(twin.item_factors.copy()))
    bu = torch.nn.Parameter(torch.zeros(twin.n_users))
    bi = torch.nn.Parameter(torch.zeros(twin.n_items))
    optimizer = torch.optim.AdamW if decoupled else torch.optim.Adam
    opt = optimizer([P, Q, bu, bi] if biased else [P, Q], lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    for _ in range(params["epochs"]):
        kernels.shuffle(twin._shuffled, int(twin._rng.integers(2**63)))
        users, items, ratings = (torch.from_numpy(a.copy()) for a in twin._shuffled)
        for start in range(0, len(ratings), params["batch_size"]):
            batch = slice(start, start + params["batch_size"])
            u, i, r = users[batch].long(), items[batch].long(), ratings[batch]
            pred = (twin.global_bias + bu[u] + bi[i] if biased else 0.0) + (P[u] * Q[i]).sum(1)
            loss = ((r - pred) ** 2 + 0.05 * (P[u] ** 2).sum(1) + 0.1 * (Q[i] ** 2).sum(1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    for ours, theirs in ((model.user_factors, P), (model.item_factors, Q), *(
            ((model.user_bias, bu), (model.item_bias, bi)) if biased else ())):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert model.global_bias == (twin.global_bias if biased else 0.0)
    if not biased:
        assert model.user_bias is None and model.item_bias is None
        assert twin.global_bias == 0.0


# ----- losses -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_reported_loss_is_the_objective(kind):
    data = synthetic(seed=3)
    params = dict(embedding_size=5, epochs=2, seed=1, **STEP_PARAMS[kind])
    params.pop("eps", None)
    model = create(kind, **params)
    states = list(model.fit_epochs(data))
    expected = objective(kind, model.params, state(model), model.global_bias, data)
    assert states[-1].loss == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_loss_decreases_over_epochs(kind):
    settings = {
        "sgd": dict(learning_rate=0.02, regularization=0.02),
        "sgd-biased": dict(learning_rate=0.02, regularization=0.02),
        "sgd-gramian": dict(learning_rate=0.02, regularization=0.02, gravity=0.01, batch_size=50,
                            decay_pct=0.02, period=2),
        "adam": dict(learning_rate=0.02, regularization=0.02, batch_size=32),
    }[kind]
    model = create(kind, embedding_size=8, epochs=12, seed=2, **settings)
    losses = np.array([s.loss for s in model.fit_epochs(synthetic(seed=4))])
    assert np.all(np.isfinite(losses))
    assert np.all(np.diff(losses) < 0), losses
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("kind", KINDS)
def test_divergence_gives_non_finite_loss_without_exception(kind):
    rate = 1e30 if kind == "adam" else 1e3            # Adam's steps are bounded by the learning rate
    model = create(kind, embedding_size=4, epochs=4, learning_rate=rate, seed=0)
    losses = [s.loss for s in model.fit_epochs(synthetic(seed=5))]
    assert not math.isfinite(losses[-1])
    first = next(e for e, loss in enumerate(losses) if not math.isfinite(loss))
    frozen = model.user_factors.copy()
    model._epoch(len(losses) + 1)                     # no more updates once non-finite
    np.testing.assert_array_equal(model.user_factors, frozen)
    assert all(not math.isfinite(loss) for loss in losses[first:])


# ----- repeatability and threads ----------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_model_whatever_the_threads(kind, threads):
    data = synthetic(seed=6)
    fits = []
    for n in (1, 1, 2, 2):
        threads(n)
        model = create(kind, embedding_size=6, epochs=3, seed=9)
        losses = [s.loss for s in model.fit_epochs(data)]
        fits.append((model.user_factors, model.item_factors, losses))
    for other in fits[1:]:
        np.testing.assert_array_equal(fits[0][0], other[0])
        np.testing.assert_array_equal(fits[0][1], other[1])
    # the loss is bit-for-bit repeatable for a thread count; across counts, to rounding
    assert fits[0][2] == fits[1][2] and fits[2][2] == fits[3][2]
    np.testing.assert_allclose(fits[0][2], fits[2][2], rtol=1e-12)
    different = create(kind, embedding_size=6, epochs=3, seed=10).fit(data)
    assert not np.array_equal(different.user_factors, fits[0][0])


def test_parallel_and_serial_loss_agree(threads):
    threads(2)
    model = create("sgd-biased", embedding_size=6, epochs=1, seed=2).fit(synthetic(n_users=200, n_items=90))
    args = ((model._users, model._items, model._ratings),
            (np.float32(model.global_bias), model._P, model._Q, model.user_bias, model.item_bias), True)
    assert kernels.squared_error(*args) == pytest.approx(kernels.squared_error_serial(*args), rel=1e-12)


@pytest.mark.parametrize("kind", PER_RATING)
def test_hogwild_trains(kind, threads):
    """Lock-free parallel epochs train about as well as sequential ones (their result is not repeatable)."""
    threads(2)
    data = synthetic(n_users=60, n_items=40, seed=7)
    settings = dict(embedding_size=8, epochs=8, seed=1, learning_rate=0.02, regularization=0.02,
                    **({"batch_size": 200, "gravity": 0.01} if kind == "sgd-gramian" else {}))
    losses = [s.loss for s in create(kind, hogwild=True, **settings).fit_epochs(data)]
    sequential = [s.loss for s in create(kind, **settings).fit_epochs(data)]
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]
    assert losses[-1] < 1.2 * sequential[-1]


def test_factors_are_contiguous_without_padding():
    model = create("sgd-biased", embedding_size=5, epochs=1).fit(synthetic(seed=8))
    assert model.user_factors.shape == (30, 5) and model.item_factors.shape == (20, 5)
    assert model.user_factors.flags.c_contiguous and model.user_factors.dtype == np.float32
    assert not model._P[:, 5:].any() and not model._Q[:, 5:].any()


def test_shuffle_is_a_seeded_permutation_of_the_triples():
    users = np.arange(1000, dtype=np.int32)
    items = users + 1
    ratings = users.astype(np.float32) / 2
    kernels.shuffle((users, items, ratings), 11)
    assert sorted(users) == list(range(1000)) and not np.array_equal(users, np.arange(1000))
    np.testing.assert_array_equal(items, users + 1)
    np.testing.assert_array_equal(ratings, users / 2)
    again = np.arange(1000, dtype=np.int32)
    kernels.shuffle((again, again.copy(), again.astype(np.float32)), 11)
    np.testing.assert_array_equal(again, users)


# ----- parameters -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, name, value", [
    ("sgd", "learning_rate", 0),
    ("sgd", "learning_rate", -0.1),
    ("sgd", "learning_rate", "fast"),
    ("sgd", "learning_rate", {"user": 0.1, "item": 0.1}),
    ("sgd", "init_std", -1.0),
    ("sgd", "regularization", {"user": -1, "item": 0.1}),
    ("sgd", "hogwild", "yes"),
    ("sgd-biased", "learning_rate_bias", 0.0),
    ("sgd-biased", "regularization_bias", -0.5),
    ("sgd-gramian", "gravity", -1.0),
    ("sgd-gramian", "decay_pct", 1.0),
    ("sgd-gramian", "period", 0),
    ("sgd-gramian", "batch_size", 2.5),
    ("adam", "batch_size", 0),
    ("adam", "beta1", 1.0),
    ("adam", "beta2", -0.1),
    ("adam", "eps", 0.0),
    ("adam", "weight_decay", -0.01),
    ("adam", "hogwild", True),
    ("sgd", "gravity", 1.0),
])
def test_bad_parameters_name_themselves(kind, name, value):
    with pytest.raises(ParameterError, match=name):
        create(kind, **{name: value})


def test_defaults_follow_surprise():
    p = create("sgd-biased").params
    assert (p["embedding_size"], p["epochs"], p["learning_rate"], p["regularization"], p["init_std"]) == \
        (100, 20, 0.005, 0.02, 0.1)
    assert p["learning_rate_bias"] is None and p["regularization_bias"] is None and p["hogwild"] is False


@pytest.mark.parametrize("kind", KINDS)
def test_refit_on_other_data_starts_afresh(kind):
    model = create(kind, embedding_size=4, epochs=2, seed=3)
    model.fit(synthetic(n_users=10, n_items=8, seed=9))
    model.fit(synthetic(seed=9))
    fresh = create(kind, embedding_size=4, epochs=2, seed=3).fit(synthetic(seed=9))
    np.testing.assert_array_equal(model.user_factors, fresh.user_factors)
    assert model.user_factors.shape == (30, 4)
