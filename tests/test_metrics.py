"""Rating and ranking metrics: hand-computed cases, edge cases, and ir-measures on the same rankings."""

from __future__ import annotations

import math
from types import SimpleNamespace

import ir_measures
import numpy as np
import pandas as pd
import pytest

from mfsweep.matrix import RatingMatrix
from mfsweep.metrics import Evaluator, evaluate, top_items
from mfsweep.trials import higher_is_better, metric_names


def model(user_factors, item_factors, user_bias=None, item_bias=None, global_bias=0.0):
    as32 = lambda a: None if a is None else np.asarray(a, dtype=np.float32)  # noqa: E731
    return SimpleNamespace(user_factors=np.atleast_2d(as32(user_factors)), item_factors=as32(item_factors),
                           user_bias=as32(user_bias), item_bias=as32(item_bias), global_bias=global_bias)


def scored(item_scores, n_users=1):
    """A model whose every user scores item i as item_scores[i] (k = 1, user factor 1)."""
    return model(np.ones((n_users, 1)), np.asarray(item_scores, dtype=np.float64)[:, None])


def frame(rows):
    return pd.DataFrame(rows, columns=["user", "item", "rating"]).astype(
        {"user": np.int32, "item": np.int32, "rating": np.float32})


def dcg(ranks):
    return sum(1.0 / math.log2(r + 1) for r in ranks)


# ----- names -------------------------------------------------------------------------

def test_metric_names_order():
    assert metric_names((10, 100)) == [
        "RMSE", "MAE", "RMSE_user", "MAE_user", "NDCG",
        "NDCG@10", "Precision@10", "Recall@10", "HitRate@10", "Coverage@10",
        "NDCG@100", "Precision@100", "Recall@100", "HitRate@100", "Coverage@100",
        "RBP", "RecipRank",
    ]


def test_higher_is_better():
    assert not any(higher_is_better(n) for n in ("RMSE", "MAE", "RMSE_user", "MAE_user"))
    assert all(higher_is_better(n) for n in metric_names([5])[4:])
    with pytest.raises(ValueError, match="unknown metric"):
        higher_is_better("AUC")


@pytest.mark.parametrize("cutoffs", [(0,), (10, 10), (2.5,)])
def test_bad_cutoffs(cutoffs):
    with pytest.raises(ValueError, match="cutoffs"):
        metric_names(cutoffs)


# ----- hand-computed -----------------------------------------------------------------

def test_hand_computed_single_user():
    # score order 0, 3, 2, 4, 5, 1; item 3 was rated in training, so candidates rank 0, 2, 4, 5, 1
    m = scored([0.875, 0.125, 0.5, 0.75, 0.25, 0.1875])
    train = frame([(0, 3, 4.0)])
    truth = frame([(0, 2, 4.0), (0, 1, 5.0)])   # relevant ranks 2 and 5
    result = Evaluator(train, truth, cutoffs=(1, 3))(m)
    assert list(result) == metric_names((1, 3))
    ideal = 1 + 1 / math.log2(3)
    expected = {
        "RMSE": math.sqrt((3.5 ** 2 + 4.875 ** 2) / 2), "MAE": (3.5 + 4.875) / 2,
        "RMSE_user": math.sqrt((3.5 ** 2 + 4.875 ** 2) / 2), "MAE_user": (3.5 + 4.875) / 2,
        "NDCG": dcg([2, 5]) / ideal,
        "NDCG@1": 0.0, "Precision@1": 0.0, "Recall@1": 0.0, "HitRate@1": 0.0, "Coverage@1": 1 / 6,
        "NDCG@3": dcg([2]) / ideal, "Precision@3": 1 / 3, "Recall@3": 1 / 2, "HitRate@3": 1.0,
        "Coverage@3": 3 / 6,
        "RBP": 0.15 * (0.85 ** 1 + 0.85 ** 4), "RecipRank": 1 / 2,
    }
    assert result == pytest.approx(expected, abs=1e-12)


def test_hand_computed_two_users_means_and_biases():
    # user 0 ranks items 0,1,2,3 (factor +1); user 1 ranks 3,2,1,0 (factor -1); item bias 0
    m = model([[1.0], [-1.0]], [[3.0], [2.0], [1.0], [0.0]], user_bias=[0.5, 1.0], global_bias=2.0)
    train = frame([(0, 0, 1.0), (1, 0, 1.0)])
    truth = frame([(0, 2, 5.0), (1, 2, 3.0), (1, 1, 3.0)])
    result = Evaluator(train, truth, cutoffs=(1,))(m)
    # predictions: u0,i2 = 2 + .5 + 1 = 3.5 (err -1.5); u1,i2 = 2 + 1 - 1 = 2 (err -1); u1,i1 = 2 + 1 - 2 = 1 (err -2)
    assert result["RMSE"] == pytest.approx(math.sqrt((1.5 ** 2 + 1 + 4) / 3))
    assert result["MAE"] == pytest.approx(4.5 / 3)
    assert result["RMSE_user"] == pytest.approx((1.5 + math.sqrt(2.5)) / 2)
    assert result["MAE_user"] == pytest.approx((1.5 + 1.5) / 2)
    # user 0 candidates 1,2,3: item 2 at rank 2; user 1 candidates 3,2,1: items 2,1 at ranks 2,3
    assert result["RecipRank"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert result["NDCG"] == pytest.approx((dcg([2]) / 1 + dcg([2, 3]) / dcg([1, 2])) / 2)
    assert result["Precision@1"] == 0.0 and result["HitRate@1"] == 0.0
    assert result["Coverage@1"] == pytest.approx(2 / 4)   # top-1 items: 1 (user 0), 3 (user 1)
    assert result["RBP"] == pytest.approx((0.15 * 0.85 + 0.15 * (0.85 + 0.85 ** 2)) / 2)


def test_ties_break_by_lower_item_id():
    m = scored([1.0, 2.0, 2.0, 0.0, 2.0])
    assert top_items(m, [0], 5, None).tolist() == [[1, 2, 4, 0, 3]]
    truth = frame([(0, 4, 1.0)])
    result = Evaluator(frame([]), truth, cutoffs=(2, 3))(m)
    assert result["RecipRank"] == pytest.approx(1 / 3)
    assert result["HitRate@2"] == 0.0 and result["HitRate@3"] == 1.0


def test_nan_scores_rank_last():
    m = scored([np.nan, 1.0, np.nan, 0.5])
    assert top_items(m, [0], 4, None).tolist() == [[1, 3, 0, 2]]
    result = Evaluator(frame([]), frame([(0, 2, 1.0)]), cutoffs=(1,))(m)
    assert result["RecipRank"] == pytest.approx(1 / 4)


def test_fewer_candidates_than_k():
    m = scored([0.5, 0.25, 0.75])
    train = RatingMatrix.from_frame(frame([(0, 2, 1.0)]), 1, 3)
    assert top_items(m, [0], 4, train).tolist() == [[0, 1, -1, -1]]
    result = Evaluator(train, frame([(0, 1, 1.0)]), cutoffs=(10,))(m)
    assert result["Precision@10"] == pytest.approx(1 / 10)    # divided by k, not by the 2 candidates
    assert result["Recall@10"] == 1.0 and result["HitRate@10"] == 1.0
    assert result["NDCG@10"] == pytest.approx(dcg([2]))
    assert result["Coverage@10"] == pytest.approx(2 / 3)


def test_users_without_relevant_items_are_skipped_and_counted():
    m = scored([0.5, 0.25, 0.75], n_users=4)
    train = frame([(1, 0, 5.0), (2, 0, 5.0), (2, 1, 5.0), (2, 2, 5.0)])
    truth = frame([
        (0, 1, 5.0),        # ranked: item 1 is third of three candidates
        (1, 0, 5.0),        # its only truth item was rated in training: skipped
        (2, 2, 4.0),        # rated every item in training, no candidate: skipped
        (3, 2, 2.0),        # below the threshold: skipped
    ])
    ev = Evaluator(train, truth, cutoffs=(1,), relevance_threshold=3)
    assert (ev.n_users, ev.n_skipped) == (1, 3)
    result = ev(m)
    assert result["RecipRank"] == pytest.approx(1 / 3)
    errors = np.array([0.25 - 5, 0.5 - 5, 0.75 - 4, 0.75 - 2])   # every truth row counts for rating
    assert result["RMSE"] == pytest.approx(np.sqrt(np.mean(errors ** 2)))
    assert result["MAE_user"] == pytest.approx(np.mean(np.abs(errors)))


def test_no_ranked_user_gives_nan_ranking_metrics():
    result = Evaluator(frame([]), frame([(0, 0, 1.0)]), cutoffs=(1,), relevance_threshold=4)(scored([1.0]))
    assert math.isnan(result["NDCG"]) and math.isnan(result["Recall@1"])
    assert result["Coverage@1"] == 0.0 and result["RMSE"] == 0.0


def test_relevance_threshold():
    m = scored([0.875, 0.75, 0.5, 0.25])
    truth = frame([(0, 0, 5.0), (0, 1, 3.0), (0, 3, 4.0)])
    everything = Evaluator(frame([]), truth, cutoffs=(2,))(m)
    assert everything["Recall@2"] == pytest.approx(2 / 3)
    assert everything["NDCG"] == pytest.approx(dcg([1, 2, 4]) / dcg([1, 2, 3]))
    liked = Evaluator(frame([]), truth, cutoffs=(2,), relevance_threshold=4)(m)
    assert liked["Recall@2"] == pytest.approx(1 / 2)
    assert liked["NDCG"] == pytest.approx(dcg([1, 4]) / dcg([1, 2]))
    assert liked["RMSE"] == everything["RMSE"]


def test_errors_name_the_problem():
    m = scored([1.0, 2.0])
    with pytest.raises(ValueError, match="rating"):
        Evaluator(frame([]), pd.DataFrame({"user": [0], "item": [0]}))
    with pytest.raises(ValueError, match="item ids go up to 5, but the model has 2 items"):
        Evaluator(frame([]), frame([(0, 5, 1.0)]))(m)
    with pytest.raises(ValueError, match="user ids go up to 1, but the model has 1 users"):
        Evaluator(frame([]), frame([(1, 0, 1.0)]))(m)
    with pytest.raises(ValueError, match="exclude: item ids go up to 2"):
        top_items(m, [0], 1, frame([(0, 2, 1.0)]))
    with pytest.raises(ValueError, match="users"):
        top_items(m, [3], 1, None)
    with pytest.raises(ValueError, match="n must be"):
        top_items(m, [0], -1, None)


# ----- against independent implementations --------------------------------------------

def random_problem(seed=7, n_users=50, n_items=200, k=4):
    """Factors on a 1/4 grid, so float32 scores are exact and ties are common."""
    rng = np.random.default_rng(seed)
    m = model(rng.integers(-4, 5, (n_users, k)) / 4, rng.integers(-4, 5, (n_items, k)) / 4,
              item_bias=rng.integers(-2, 3, n_items) / 4, user_bias=rng.normal(size=n_users), global_bias=3.0)
    pairs = np.unique(np.column_stack([rng.integers(0, n_users, 3000), rng.integers(0, n_items, 3000)]), axis=0)
    ratings = rng.integers(1, 6, len(pairs)).astype(np.float32)
    in_test = rng.random(len(pairs)) < 0.25
    rows = lambda mask: frame(np.column_stack([pairs[mask], ratings[mask]]))  # noqa: E731
    train, test = rows(~in_test), rows(in_test)
    test = pd.concat([test, frame([(0, 5, 4.0), (0, 5, 2.0)])])   # a repeated pair counts once in relevance
    train = RatingMatrix.from_frame(train, n_users, n_items)
    return m, train, test


def reference_rankings(m, train):
    """Every user's candidates by (score desc, item asc), from exact float64 scores and a full sort."""
    scores = m.user_factors.astype(np.float64) @ m.item_factors.T.astype(np.float64) + m.item_bias
    rankings = []
    for u in range(scores.shape[0]):
        rated = train.indices[train.indptr[u]:train.indptr[u + 1]]
        items = np.setdiff1d(np.arange(scores.shape[1]), rated)
        rankings.append(items[np.lexsort((items, -scores[u, items]))])
    return rankings


@pytest.mark.parametrize("threshold", [None, 4])
def test_against_ir_measures(threshold):
    m, train, test = random_problem()
    ev = Evaluator(train, test, cutoffs=(5, 20), relevance_threshold=threshold)
    result = ev(m)
    rankings = reference_rankings(m, train)
    relevant = {}
    for u, i, r in test[["user", "item", "rating"]].itertuples(index=False):
        if (threshold is None or r >= threshold) and i in set(rankings[u].tolist()):
            relevant.setdefault(int(u), set()).add(int(i))
    assert ev.n_users == len(relevant) and ev.n_skipped == test["user"].nunique() - len(relevant)
    qrels = [ir_measures.Qrel(str(u), str(i), 1) for u, items in relevant.items() for i in items]
    run = [ir_measures.ScoredDoc(str(u), str(i), -float(pos))
           for u in relevant for pos, i in enumerate(rankings[u])]
    measures = {"NDCG": ir_measures.nDCG, "RecipRank": ir_measures.RR}
    for k in (5, 20):
        measures.update({f"NDCG@{k}": ir_measures.nDCG @ k, f"Precision@{k}": ir_measures.P @ k,
                         f"Recall@{k}": ir_measures.R @ k})
    theirs = ir_measures.calc_aggregate(list(measures.values()), qrels, run)
    for name, measure in measures.items():
        assert result[name] == pytest.approx(theirs[measure], abs=1e-9), name
    # RBP, HitRate, Coverage: direct formulas on the same rankings
    positions = {u: {int(i): p + 1 for p, i in enumerate(rankings[u])} for u in relevant}
    rbp = [0.15 * sum(0.85 ** (positions[u][i] - 1) for i in items) for u, items in relevant.items()]
    assert result["RBP"] == pytest.approx(np.mean(rbp), abs=1e-9)
    for k in (5, 20):
        hit = [any(positions[u][i] <= k for i in items) for u, items in relevant.items()]
        assert result[f"HitRate@{k}"] == pytest.approx(np.mean(hit), abs=1e-9)
        covered = set().union(*(rankings[u][:k].tolist() for u in relevant))
        assert result[f"Coverage@{k}"] == pytest.approx(len(covered) / 200, abs=1e-9)
    # rating metrics against numpy
    users, items = test["user"].to_numpy(), test["item"].to_numpy()
    pred = (3.0 + m.user_bias[users].astype(np.float64) + m.item_bias[items]
            + np.sum(m.user_factors[users].astype(np.float64) * m.item_factors[items], axis=1))
    err = pd.Series(pred - test["rating"].to_numpy(np.float64))
    assert result["RMSE"] == pytest.approx(np.sqrt(np.mean(err ** 2)), abs=1e-9)
    assert result["MAE"] == pytest.approx(np.mean(np.abs(err)), abs=1e-9)
    per_user = err.groupby(users)
    assert result["RMSE_user"] == pytest.approx(per_user.apply(lambda e: np.sqrt(np.mean(e ** 2))).mean(), abs=1e-9)
    assert result["MAE_user"] == pytest.approx(per_user.apply(lambda e: np.mean(np.abs(e))).mean(), abs=1e-9)


def test_top_items_matches_full_sort():
    m, train, _ = random_problem(seed=3)
    rankings = reference_rankings(m, train)
    users = np.arange(50)
    got = top_items(m, users, 30, train)
    for u in users:
        assert got[u].tolist() == rankings[u][:30].tolist()
    unexcluded = top_items(m, users[::-1], 250, None)
    everything = reference_rankings(m, RatingMatrix.from_frame(frame([]), 50, 200))
    for row, u in zip(unexcluded, users[::-1]):
        assert row[:200].tolist() == everything[u].tolist() and (row[200:] == -1).all()


def test_top_items_on_a_large_catalog_matches_full_sort():
    # 64 of 2,100 items: top_k_row first finds a score floor from a sample (k >= 16, items >= 32k)
    m, train, _ = random_problem(seed=4, n_users=20, n_items=2100)
    rankings = reference_rankings(m, train)
    for n in (64, 200):
        got = top_items(m, np.arange(20), n, train)
        assert all(got[u].tolist() == rankings[u][:n].tolist() for u in range(20))


def test_top_items_when_the_sampled_floor_is_too_high():
    # the sample (every 8th item for n = 64) holds exactly the best items, so its 16th best is
    # beaten by only 15 items: top_k_row must notice and fall back to the plain heap
    ids = np.arange(2048)
    m = scored(np.where(ids % 8 == 0, 1000 + ids / 8, ids / 8))
    assert top_items(m, [0], 64, None).tolist() == [list(range(2040, 2040 - 64 * 8, -8))]


def test_scores_do_not_depend_on_the_other_users_in_a_block():
    rng = np.random.default_rng(1)
    m = model(rng.normal(size=(9, 64)), rng.normal(size=(300, 64)), item_bias=rng.normal(size=300))
    together = top_items(m, np.arange(9), 300, None)
    for u in range(9):
        assert (top_items(m, [u], 300, None)[0] == together[u]).all()


def test_max_users_sample_is_fixed_by_seed():
    m, train, test = random_problem()
    full = Evaluator(train, test)
    first = Evaluator(train, test, max_users=10, seed=5)
    again = Evaluator(train, test, max_users=10, seed=5)
    other = Evaluator(train, test, max_users=10, seed=6)
    assert first.n_users == 10 and (first.users == again.users).all()
    assert set(first.users) <= set(full.users) and not (first.users == other.users).all()
    assert first(m) == again(m)
    assert first(m)["RMSE"] == full(m)["RMSE"]          # rating metrics use every truth row
    assert Evaluator(train, test, max_users=10_000)(m) == full(m)


def test_evaluate_is_the_evaluator_on_every_user():
    m, train, test = random_problem()
    frame_train = pd.DataFrame({"user": np.repeat(np.arange(50), np.diff(train.indptr)),
                                "item": train.indices, "rating": train.data})
    assert evaluate(m, frame_train, test, cutoffs=(3,)) == Evaluator(train, test, cutoffs=(3,))(m)


def test_model_recommend_goes_through_top_items():
    from mfsweep.models import create

    m, train, _ = random_problem(seed=5)
    mf = create("als")
    mf.user_factors, mf.item_factors, mf.item_bias = m.user_factors, m.item_factors, m.item_bias
    rankings = reference_rankings(m, train)
    got = mf.recommend([3, 0], n=7, exclude=pd.DataFrame({
        "user": np.repeat(np.arange(50), np.diff(train.indptr)), "item": train.indices, "rating": train.data}))
    assert got.tolist() == [rankings[3][:7].tolist(), rankings[0][:7].tolist()]


def test_same_result_on_one_and_two_threads():
    import numba

    rng = np.random.default_rng(2)
    m = model(rng.normal(size=(70, 16)), rng.normal(size=(300, 16)), item_bias=rng.normal(size=300))
    truth = frame(np.column_stack([np.repeat(np.arange(70), 3), rng.integers(0, 300, 210), np.full(210, 4.0)]))
    train = frame(np.column_stack([np.repeat(np.arange(70), 5), rng.integers(0, 300, 350), np.full(350, 3.0)]))
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = Evaluator(train, truth)(m)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = Evaluator(train, truth)(m)
    finally:
        numba.set_num_threads(threads)
    assert one == two
