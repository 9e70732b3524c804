"""Adaptive search: distributions, reproducible proposals, replay order, the states told to the sampler."""

import math

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from mfsweep.adaptive import distributions, propose, round_seed, sampler, study_trials
from mfsweep.pipeline import search_jobs
from mfsweep.rounds import propose_round
from mfsweep.search import SearchError, expand, trial_id

SPACE = {
    "embedding_size": {"loguniform_int": [2, 64]},
    "learning_rate": {"loguniform": [0.001, 0.1]},
    "regularization.user": {"uniform": [0.0, 0.5]},
    "regularization.item": [0.01, 0.1],
    "damping": 5,
}


# ----- distributions ------------------------------------------------------------------------
def test_distributions_map_bounds_log_int_and_categorical():
    dists = distributions({**SPACE, "width": {"loguniform_int": [2.5, 9.9]}})
    assert dists["embedding_size"] == IntDistribution(2, 64, log=True)
    assert dists["learning_rate"] == FloatDistribution(0.001, 0.1, log=True)
    assert dists["regularization.user"] == FloatDistribution(0.0, 0.5, log=False)
    assert dists["regularization.item"] == CategoricalDistribution([0.01, 0.1])
    assert dists["width"] == IntDistribution(3, 9, log=True)  # integer bounds inside the range
    assert "damping" not in dists  # a scalar is fixed, not searched


def test_proposals_lie_in_the_space_rounded_and_nested():
    proposals = propose(SPACE, [], "tpe", 1, 8, 1, "RMSE")
    assert len(proposals) == 8 and len({trial_id(p) for p in proposals}) == 8
    for params in proposals:
        assert set(params) == {"embedding_size", "learning_rate", "regularization", "damping"}
        assert params["damping"] == 5 and params["regularization"]["item"] in (0.01, 0.1)
        assert isinstance(params["embedding_size"], int) and 2 <= params["embedding_size"] <= 64
        assert 0.001 <= params["learning_rate"] <= 0.1
        assert float(f"{params['learning_rate']:.4g}") == params["learning_rate"]
        assert 0.0 <= params["regularization"]["user"] <= 0.5


def test_an_adaptive_space_is_checked_but_has_no_trials_before_it_runs():
    model = {"kind": "als-biased", "search": {"method": "tpe", "trials": 4, "seed": 1}, "params": SPACE}
    space = {name: value for name, value in SPACE.items() if name != "learning_rate"}
    model["params"] = space
    assert expand(model) == {}
    bad = {**model, "params": {**space, "embedding_size": {"loguniform_int": [0, 4]}}}
    with pytest.raises(ValueError, match="bounds must be > 0"):
        expand(bad)


# ----- reproducibility ----------------------------------------------------------------------
def results(proposals, first=0, round_index=1, reasons=None):
    """Trial x fold rows and histories of finished trials: RMSE is smallest near learning_rate 0.01."""
    rows, history = [], []
    for n, params in enumerate(proposals):
        trial = trial_id(params)
        base = abs(math.log(params["learning_rate"] / 0.01)) + 0.01 * params["embedding_size"] ** 0.5
        for fold in (0, 1):
            reason = (reasons or {}).get(n, "plateau")
            rows.append({"model": "m", "trial": trial, "fold": fold, "round": round_index, "proposed": first + n,
                         "stop_reason": reason, "epochs_completed": 4,
                         "param.embedding_size": params["embedding_size"], "param.learning_rate": params["learning_rate"],
                         "param.regularization.user": params["regularization"]["user"],
                         "param.regularization.item": params["regularization"]["item"], "param.damping": 5,
                         "valid.RMSE": base + 0.1 + 0.01 * fold})
            history += [{"trial": trial, "fold": fold, "epoch": e, "RMSE": base + 0.4 / e + 0.01 * fold} for e in (1, 2, 3, 4)]
    return pd.DataFrame(rows), pd.DataFrame(history)


def two_rounds(seed=1, shuffle=None):
    first = propose(SPACE, [], "tpe", seed, 6, 1, "RMSE")
    trials, histories = results(first)
    if shuffle is not None:
        trials = trials.sample(frac=1, random_state=shuffle).reset_index(drop=True)
        histories = histories.sample(frac=1, random_state=shuffle).reset_index(drop=True)
    second = propose(SPACE, study_trials(trials, histories, "RMSE", SPACE), "tpe", seed, 6, 2, "RMSE")
    return first, second


def test_two_runs_of_a_tpe_search_propose_identical_trials():
    first, second = two_rounds()
    again_first, again_second = two_rounds()
    assert first == again_first and second == again_second
    assert {trial_id(p) for p in second}.isdisjoint(trial_id(p) for p in first)
    other_seed = two_rounds(seed=2)
    assert other_seed[0] != first


def test_gp_proposes_reproducibly_from_the_results_of_earlier_rounds():
    first = propose(SPACE, [], "tpe", 1, 12, 1, "RMSE")
    trials, histories = results(first)
    history = study_trials(trials, histories, "RMSE", SPACE)
    proposals = propose(SPACE, history, "gp", 1, 3, 2, "RMSE")
    assert proposals == propose(SPACE, history, "gp", 1, 3, 2, "RMSE")
    assert len({trial_id(p) for p in proposals} - {trial_id(p) for p in first}) == 3


def test_replay_order_does_not_depend_on_row_or_file_order():
    plain = two_rounds()
    for shuffle in (1, 2, 3):
        assert two_rounds(shuffle=shuffle) == plain


def test_replay_follows_round_then_proposal_order():
    proposals = propose(SPACE, [], "tpe", 1, 4, 1, "RMSE")
    trials, histories = results(proposals)
    late = trials["proposed"] < 2  # the first two proposed belong to a later round
    trials.loc[late, "round"] = 2
    replayed = study_trials(trials.iloc[::-1], histories, "RMSE", SPACE)
    assert [t.user_attrs["proposed"] for t in replayed] == [2, 3, 0, 1]
    assert [t.user_attrs["round"] for t in replayed] == [1, 1, 2, 2]


def test_round_seeds_differ_by_round_and_seed_and_are_fixed():
    assert round_seed(1, 1) == round_seed(1, 1) != round_seed(1, 2) != round_seed(2, 2)
    assert round_seed(1, 1) == int.from_bytes(__import__("hashlib").sha256(b"1:1").digest()[:4], "big")


def test_a_round_resumed_after_a_kill_proposes_the_same_trials(tmp_path):
    """A propose job rerun (its round file lost with the job) writes the same round file."""
    settings = {"model": "m", "kind": "sgd-biased", "method": "tpe", "seed": 3, "size": 4, "batch": 2,
                "max_epochs": 4, "space": SPACE, "early_stopping": {"metric": None},
                "pruning": {"method": "median", "percentile": 25, "min_epochs": 2}}
    first = propose_round(settings, 1, [], pd.DataFrame(), pd.DataFrame())
    trials, histories = results([entry["params"] for entry in first.trials])
    before = propose_round(settings, 2, [first], trials, histories)
    after = propose_round(settings, 2, [first], trials.iloc[::-1], histories.iloc[::-1])
    assert before == after
    assert [e["proposed"] for e in before.trials] == [4, 5, 6, 7]
    assert sum(before.units.values(), []) == [e["trial"] for e in before.trials]
    assert set(before.pruning["thresholds"]) == {"0", "1"} and set(before.pruning["thresholds"]["0"]) == {"2", "3"}  # not at max_epochs
    assert first.pruning["thresholds"] == {}  # the first round is never pruned


# ----- states told to the sampler -----------------------------------------------------------
def test_failed_diverged_and_pruned_trials_are_told_as_such():
    proposals = propose(SPACE, [], "tpe", 1, 4, 1, "RMSE")
    trials, histories = results(proposals, reasons={1: "failed", 2: "diverged", 3: "pruned"})
    trials.loc[trials["proposed"] == 1, "valid.RMSE"] = np.nan
    replayed = study_trials(trials, histories, "RMSE", SPACE)
    assert [t.state for t in replayed] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL, TrialState.PRUNED]
    expected = trials[trials["proposed"] == 0]["valid.RMSE"].mean()
    assert replayed[0].value == pytest.approx(expected)
    # pruned: stopped early, and ranked by its kept epoch's value like any other (studies.trial_state)
    assert replayed[3].value == pytest.approx(trials[trials["proposed"] == 3]["valid.RMSE"].mean())
    assert [t.value for t in replayed[1:3]] == [None, None]
    assert replayed[3].intermediate_values[4] == pytest.approx(histories[(histories["trial"] == trial_id(proposals[3]))
                                                                         & (histories["epoch"] == 4)]["RMSE"].mean())
    assert replayed[0].params["regularization.item"] in (0.01, 0.1)


def test_a_trial_outside_the_space_is_named():
    proposals = propose(SPACE, [], "tpe", 1, 2, 1, "RMSE")
    trials, histories = results(proposals)
    narrowed = {**SPACE, "learning_rate": {"loguniform": [0.5, 0.9]}}
    with pytest.raises(ValueError, match="no longer fit the search space"):
        study_trials(trials, histories, "RMSE", narrowed)


def test_study_round_trips_through_sqlite(tmp_path):
    proposals = propose(SPACE, [], "tpe", 1, 3, 1, "RMSE")
    trials, histories = results(proposals, reasons={2: "pruned"})
    path = tmp_path / "optuna.db"
    stored = search_jobs.write_study(trials, histories, {"kind": "sgd-biased", "params": SPACE,
                                                         "early_stopping": {"metric": "RMSE"}}, str(path))
    study = optuna.load_study(study_name="m", storage=f"sqlite:///{path}")
    assert stored == 3 and len(study.trials) == 3
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    # the pruned trial carries the value select_best ranks it by (the dashboard shows it)
    means = trials.groupby("trial")["valid.RMSE"].mean()
    assert [t.value for t in study.trials] == pytest.approx([means[trial_id(p)] for p in proposals])
    assert all(sorted(t.intermediate_values) == [1, 2, 3, 4] for t in study.trials)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert [t.user_attrs["trial"] for t in study.trials] == [trial_id(p) for p in proposals]


def test_a_pruned_trials_value_changes_no_tpe_proposal():
    """Pruned trials carry their ranked value; TPE ranks them by their last intermediate value
    only, so round 2 proposes what it proposed when they carried none (pinned from then)."""
    first = propose(SPACE, [], "tpe", 4, 12, 1, "RMSE")  # more than TPE's 10 startup trials
    trials, histories = results(first, reasons={n: "pruned" for n in (1, 3, 4, 8, 10)})
    pruned = set(trials.loc[trials["stop_reason"] == "pruned", "trial"])
    histories = histories[~(histories["trial"].isin(pruned) & (histories["epoch"] > 2))]  # stopped at epoch 2
    history = study_trials(trials, histories, "RMSE", SPACE)
    assert [t.value is not None for t in history if t.state == TrialState.PRUNED] == [True] * 5
    assert propose(SPACE, history, "tpe", 4, 4, 2, "RMSE") == [
        {"damping": 5, "embedding_size": 4, "learning_rate": 0.03156, "regularization": {"item": 0.1, "user": 0.4667}},
        {"damping": 5, "embedding_size": 5, "learning_rate": 0.004392, "regularization": {"item": 0.1, "user": 0.4618}},
        {"damping": 5, "embedding_size": 12, "learning_rate": 0.0119, "regularization": {"item": 0.1, "user": 0.4424}},
        {"damping": 5, "embedding_size": 2, "learning_rate": 0.01725, "regularization": {"item": 0.1, "user": 0.1399}},
    ]
    without = [optuna.trial.create_trial(state=t.state, value=None if t.state == TrialState.PRUNED else t.value,
                                         params=t.params, distributions=t.distributions,
                                         intermediate_values=t.intermediate_values) for t in history]
    assert propose(SPACE, without, "tpe", 4, 4, 2, "RMSE") == propose(SPACE, history, "tpe", 4, 4, 2, "RMSE")


# ----- sampler options ----------------------------------------------------------------------
def tpe_rounds(options=None, size=6, count=3, seed=1):
    """The trial ids of ``count`` rounds of a tpe search on SPACE, each round proposed from
    ``results`` of the earlier ones (with rounds of 6, the third is the first TPE models under
    Optuna's default of 10 startup trials)."""
    rounds, done = [], []
    for round_index in range(1, count + 1):
        history = study_trials(*results(done), "RMSE", SPACE) if done else []
        proposals = propose(SPACE, history, "tpe", seed, size, round_index, "RMSE", options)
        rounds.append([trial_id(params) for params in proposals])
        done += proposals
    return rounds


#: What a tpe search without sampler_options proposed before the option existed.
DEFAULT_TPE_ROUNDS = [
    ["a757cb4a45", "0728898b16", "1e2f18f15f", "aebe97c3f0", "faa1266e12", "a5cb1bd966"],
    ["e3f82bbf6c", "e7fb62ae62", "51f2707cd8", "759401f149", "75eb73427a", "aefad21c67"],
    ["404e819998", "6b545da7c0", "51ee3549a3", "35dd64948d", "1563fbb653", "c8228e77b6"],
]


def test_a_tpe_search_without_sampler_options_proposes_as_before():
    assert tpe_rounds() == DEFAULT_TPE_ROUNDS
    assert tpe_rounds({}) == DEFAULT_TPE_ROUNDS


def test_optunas_defaults_are_constant_liar_and_multivariate():
    """The default search already counts a round's earlier asks as the worst results and models
    the parameters jointly (TPESampler's defaults since Optuna 5): naming them changes nothing."""
    assert tpe_rounds({"constant_liar": True, "multivariate": True}) == DEFAULT_TPE_ROUNDS


def test_without_constant_liar_the_modelled_round_is_proposed_otherwise_and_reproducibly():
    rounds = tpe_rounds({"constant_liar": False})
    assert rounds[:2] == DEFAULT_TPE_ROUNDS[:2]  # random until 10 trials are finished
    # the round's first ask has no earlier ask to count: the same; the later asks see none of the earlier ones
    assert rounds[2][0] == DEFAULT_TPE_ROUNDS[2][0]
    assert set(rounds[2][1:]).isdisjoint(DEFAULT_TPE_ROUNDS[2])
    assert tpe_rounds({"constant_liar": False}) == rounds


def test_startup_trials_of_one_round_model_the_second_round_reproducibly():
    options = {"constant_liar": True, "multivariate": True, "n_startup_trials": 6}
    rounds = tpe_rounds(options)
    assert rounds[0] == DEFAULT_TPE_ROUNDS[0]  # the first round is random, as before
    assert set(rounds[1]).isdisjoint(DEFAULT_TPE_ROUNDS[1])
    assert tpe_rounds(options) == rounds
    assert tpe_rounds(options, seed=2)[1] != rounds[1]


def test_the_sampler_options_reach_the_round_from_the_settings():
    settings = {"model": "m", "kind": "sgd-biased", "method": "tpe", "seed": 1, "size": 6, "batch": 1,
                "max_epochs": 4, "space": SPACE, "early_stopping": {"metric": None}, "pruning": {"method": "none"}}
    first = propose_round(settings, 1, [], pd.DataFrame(), pd.DataFrame())
    trials, histories = results([entry["params"] for entry in first.trials])
    second = {options: propose_round({**settings, "sampler_options": {"n_startup_trials": options}} if options else settings,
                                     2, [first], trials, histories)
              for options in (None, 6)}
    assert [entry["trial"] for entry in second[None].trials] == DEFAULT_TPE_ROUNDS[1]
    assert {entry["trial"] for entry in second[6].trials}.isdisjoint(DEFAULT_TPE_ROUNDS[1])


def test_sampler_options_are_refused_by_other_samplers():
    assert isinstance(sampler("tpe", 1, 1, {"n_startup_trials": 8}), optuna.samplers.TPESampler)
    with pytest.raises(SearchError, match="search.sampler_options: method 'gp' takes none"):
        sampler("gp", 1, 1, {"constant_liar": True})
