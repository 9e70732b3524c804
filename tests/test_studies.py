"""Optuna trials from a sweep's results (studies.frozen_trials, the one converter): the
samplers' replay, the Optuna storage and the importance study read the same trials."""

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState
from test_adaptive import SPACE, results

from mfsweep.adaptive import distributions, propose, study_trials
from mfsweep.pipeline import search_jobs
from mfsweep.search import SearchError, trial_id
from mfsweep.studies import frozen_trials, study_from_trials

SEARCHED = [f"param.{name}" for name in distributions(SPACE)]


def finished(count=6, reasons=None):
    proposals = propose(SPACE, [], "tpe", 1, count, 1, "RMSE")
    return proposals, *results(proposals, reasons=reasons)


def as_compared(trial):
    return (trial.state, trial.value, trial.params, trial.distributions, trial.user_attrs)


def test_the_replay_the_storage_and_the_importance_study_hold_the_same_trials(tmp_path):
    _, trials, histories = finished(reasons={1: "failed", 2: "diverged", 3: "pruned"})
    replayed = {t.user_attrs["trial"]: t for t in study_trials(trials, histories, "RMSE", SPACE)}
    path = tmp_path / "optuna.db"
    search_jobs.write_study(trials, histories, {"kind": "sgd-biased", "params": SPACE,
                                                "early_stopping": {"metric": "RMSE"}}, str(path))
    stored = {t.user_attrs["trial"]: t for t in optuna.load_study(study_name="m", storage=f"sqlite:///{path}").trials}
    studied = {t.user_attrs["trial"]: t for t in study_from_trials(trials, "RMSE", SPACE, SEARCHED).trials}
    assert set(replayed) == set(stored) == set(studied) == set(trials["trial"])
    for trial, expected in replayed.items():
        assert as_compared(stored[trial]) == as_compared(studied[trial]) == as_compared(expected)
        assert stored[trial].intermediate_values == expected.intermediate_values
    assert sorted(t.state.name for t in replayed.values()) == ["COMPLETE", "COMPLETE", "COMPLETE", "FAIL", "FAIL",
                                                                "PRUNED"]
    assert {tuple(t.user_attrs) for t in replayed.values()} == {("trial", "round", "proposed")}


def test_the_importance_study_is_in_trial_id_order_the_replay_in_proposal_order():
    proposals, trials, histories = finished()
    replayed = [t.user_attrs["trial"] for t in study_trials(trials, histories, "RMSE", SPACE)]
    studied = [t.user_attrs["trial"] for t in study_from_trials(trials, "RMSE", SPACE, SEARCHED).trials]
    assert replayed == [trial_id(p) for p in proposals]
    assert studied == sorted(replayed)


def test_values_outside_the_space_widen_the_distribution_but_stop_the_replay():
    proposals, trials, histories = finished(2)
    narrowed = {**SPACE, "learning_rate": {"loguniform": [0.5, 0.9]}, "embedding_size": {"loguniform_int": [2, 64]}}
    taken = trials.groupby("trial")["param.learning_rate"].first()
    converted = frozen_trials(trials, "RMSE", ["learning_rate", "embedding_size"], narrowed)
    assert {t.distributions["learning_rate"] for t in converted} == {FloatDistribution(taken.min(), 0.9, log=True)}
    assert {t.distributions["embedding_size"] for t in converted} == {IntDistribution(2, 64, log=True)}  # unchanged
    first = trial_id(proposals[0])
    with pytest.raises(SearchError, match=rf"trial {first}: learning_rate=.* lies outside FloatDistribution"):
        study_trials(trials, histories, "RMSE", narrowed)


def test_a_trial_without_a_searched_value_is_named():
    proposals, trials, histories = finished(2)
    trials = trials.drop(columns="param.regularization.user")
    with pytest.raises(SearchError, match=r"no value of searched parameter 'regularization.user' "
                                          r"\(column param.regularization.user\)"):
        study_trials(trials, histories, "RMSE", SPACE)
    # the importance study holds the values there are
    studied = study_from_trials(trials, "RMSE", SPACE, ["param.learning_rate"]).trials
    assert [t.state for t in studied] == [TrialState.COMPLETE] * 2 and all(set(t.params) == {"learning_rate"}
                                                                          for t in studied)
