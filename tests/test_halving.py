"""Successive halving and Hyperband over epochs: the rungs, the promotions, the new trials."""

import pandas as pd
import pytest

from mfsweep.halving import Rung, levels, promoted, random_trials, schedule


def test_hyperband_brackets_are_those_of_the_paper():
    # Li et al. (2018), Table 1: R = 81, eta = 3; (trials, epochs) of each rung of each bracket
    expected = [[(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
                [(34, 3), (11, 9), (3, 27), (1, 81)],
                [(15, 9), (5, 27), (1, 81)],
                [(8, 27), (2, 81)],
                [(5, 81)]]
    rungs = schedule({"method": "hyperband", "min_epochs": 1, "eta": 3}, 81)
    got = [[(r.trials, r.epochs) for r in rungs if r.bracket == b] for b in range(5)]
    assert got == expected
    assert [r.level for r in rungs[:6]] == [0, 1, 2, 3, 4, 0]


def test_successive_halving_is_one_bracket_of_the_trials_asked_for():
    assert schedule({"method": "sha", "min_epochs": 2, "eta": 2, "trials": 10}, 16) == [
        Rung(0, 0, 10, 2), Rung(0, 1, 5, 4), Rung(0, 2, 2, 8), Rung(0, 3, 1, 16)]


def test_iterations_run_the_brackets_again_one_after_the_other():
    once = schedule({"method": "hyperband", "min_epochs": 1, "eta": 3}, 9)
    twice = schedule({"method": "hyperband", "min_epochs": 1, "eta": 3, "iterations": 2}, 9)
    assert [(r.level, r.trials, r.epochs) for r in twice] == [(r.level, r.trials, r.epochs) for r in once] * 2
    assert [r.bracket for r in twice] == [0, 0, 0, 1, 1, 2, 3, 3, 3, 4, 4, 5]
    sha = schedule({"method": "sha", "min_epochs": 1, "eta": 2, "trials": 4, "iterations": 3}, 2)
    assert [(r.bracket, r.trials, r.epochs) for r in sha] == [(0, 4, 1), (0, 2, 2), (1, 4, 1), (1, 2, 2),
                                                              (2, 4, 1), (2, 2, 2)]


def test_epochs_between_powers_of_eta_are_rounded_and_the_last_rung_is_max_epochs():
    rungs = schedule({"method": "hyperband", "min_epochs": 1, "eta": 3}, 40)
    assert [r.epochs for r in rungs if r.bracket == 0] == [1, 4, 13, 40]
    assert {r.epochs for r in rungs if r.level == max(x.level for x in rungs if x.bracket == r.bracket)} == {40}


@pytest.mark.parametrize("min_epochs, max_epochs, eta, expected", [(1, 81, 3, 4), (1, 80, 3, 3), (2, 5, 2, 1),
                                                                    (1, 1, 3, 0)])
def test_levels(min_epochs, max_epochs, eta, expected):
    assert levels(min_epochs, max_epochs, eta) == expected


def rung_rows(values, reasons=None, folds=1):
    """A trial x fold table: trial t{n} proposed n-th, with value values[n] (RMSE) on each fold."""
    rows = []
    for n, value in enumerate(values):
        for fold in range(folds):
            rows.append({"trial": f"t{n}", "fold": fold, "round": 1, "proposed": 10 - n if n < 2 else n,
                         "stop_reason": (reasons or {}).get(f"t{n}", "rung"), "epochs_completed": 3,
                         "valid.RMSE": value + 0.01 * fold, "valid.NDCG": value})
    return pd.DataFrame(rows)


def test_a_rung_promotes_its_best_by_the_metric_in_proposal_order():
    rows = rung_rows([0.9, 0.8, 0.95, 0.85])
    assert promoted(rows, "RMSE", 2) == ["t3", "t1"]     # t1 (0.8), t3 (0.85); t3 was proposed before t1
    assert promoted(rows, "NDCG", 2) == ["t2", "t0"]     # higher is better


def test_ties_go_to_the_trial_proposed_first():
    rows = rung_rows([0.8, 0.8, 0.8])                   # proposed: t2 (2), t1 (9), t0 (10)
    assert promoted(rows, "RMSE", 1) == ["t2"]
    assert promoted(rows, "RMSE", 2) == ["t2", "t1"]


def test_only_trials_that_reached_the_rung_on_every_fold_are_promoted():
    rows = rung_rows([0.7, 0.8, 0.9, 0.95], folds=2)
    rows.loc[(rows["trial"] == "t0") & (rows["fold"] == 1), "stop_reason"] = "plateau"
    rows.loc[rows["trial"] == "t1", "stop_reason"] = "diverged"
    assert promoted(rows, "RMSE", 2) == ["t2", "t3"]
    assert promoted(rows[rows["stop_reason"] != "rung"], "RMSE", 2) == []   # nothing left to promote: an empty rung


SETTINGS = {"kind": "sgd-biased", "max_epochs": 5,
            "space": {"embedding_size": [2, 4, 8], "learning_rate": [0.01, 0.02], "regularization": 0.1}}


def test_new_random_trials_are_reproducible_and_leave_out_those_seen():
    first = random_trials(SETTINGS, 3, seed=7, seen=set())
    assert first == random_trials(SETTINGS, 3, seed=7, seen=set())
    from mfsweep.search import trial_id

    seen = {trial_id(params) for params in first}
    again = random_trials(SETTINGS, 3, seed=7, seen=seen)
    assert len(again) == 3 and not {trial_id(params) for params in again} & seen


def test_a_space_with_too_few_new_points_gives_what_it_has():
    from mfsweep.search import trial_id

    everything = random_trials(SETTINGS, 6, seed=1, seen=set())
    assert len(everything) == 6
    assert random_trials(SETTINGS, 2, seed=1, seen={trial_id(p) for p in everything}) == []
