"""A halving search end to end: hyperband (random draws) and successive halving (TPE draws),
a round a rung, promoted trials continued from their checkpoints."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_helpers import ROOT, planned_jobs, round_file, snakemake, summary

from mfsweep.halving import schedule
from mfsweep.pipeline.config import validate
from mfsweep.pipeline.jobs import TrainingData, train_trial
from mfsweep.pipeline.search_jobs import earlier_results
from mfsweep.pipeline.workflow import propose_settings, unit_files, validation_settings
from mfsweep.rounds import propose_round, read_round

pytestmark = pytest.mark.workflow

TINY_HYPERBAND = ROOT / "tests" / "configs" / "tiny_hyperband.yaml"
MODELS = ("sgd-biased", "als-biased")
PLOTS = ("results/plots/synth/kfold/search_progress.svg", "results/plots/synth/kfold/sgd-biased/iteration_completion.svg")


@pytest.fixture(scope="module")
def config():
    config = yaml.safe_load(TINY_HYPERBAND.read_text())
    return config, validate(config)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("halving")
    targets = [str(summary(workdir, model).relative_to(workdir) / "best.json") for model in MODELS]
    snakemake(workdir, "--cores", "2", *targets, *PLOTS, config=TINY_HYPERBAND)
    return workdir


def rounds(workdir, model, config):
    settings = config["models"][model]
    return [read_round(round_file(workdir, model, r + 1))
            for r in range(len(schedule(settings["search"], settings["max_epochs"])))]


def test_each_round_is_a_rung_of_the_schedule(sweep, config):
    config, _ = config
    for model in MODELS:
        settings = config["models"][model]
        rungs = schedule(settings["search"], settings["max_epochs"])
        found = rounds(sweep, model, config)
        assert [proposal.rung for proposal in found] == [rung.to_json() for rung in rungs]
        assert [len(proposal.trials) for proposal in found] == [rung.trials for rung in rungs]
        assert not round_file(sweep, model, len(rungs) + 1).exists()
        for before, proposal in zip(found, found[1:]):
            if proposal.rung["level"]:   # promoted from the round before, continuing from the unit that trained it
                units = {trial: unit for unit, members in before.units.items() for trial in members}
                assert proposal.resumed() == {entry["trial"]: units[entry["trial"]] for entry in proposal.trials}
            else:
                assert proposal.resumed() == {}
    assert len(schedule(config["models"]["sgd-biased"]["search"], 4)) == 6


def test_every_round_is_what_its_earlier_rounds_results_propose(sweep, config):
    """The promotions (and TPE's and the random draws) depend on the earlier rounds' files only."""
    config, trials = config
    for model in MODELS:
        found = rounds(sweep, model, config)
        for r, proposal in enumerate(found, start=1):
            units = [unit for earlier in found[:r - 1] for unit in earlier.units]
            where = [str(sweep / path) for path in unit_files(config, "synth", "kfold", model, units, "record.json")]
            histories = [path.replace("record.json", "history.parquet") for path in where]
            table, history = earlier_results(where, histories, found[:r - 1])
            again = propose_round(propose_settings(config, trials, model, r), r, found[:r - 1], table, history)
            assert again == proposal, f"{model} round {r}"


def test_trials_stop_at_a_rung_unless_promoted(sweep, config):
    config, _ = config
    for model in MODELS:
        table = pd.read_parquet(summary(sweep, model) / "trials.parquet")
        found = rounds(sweep, model, config)
        last = {}
        for proposal in found:
            for entry in proposal.trials:
                last[entry["trial"]] = proposal
        assert len(table) == 2 * len(last)   # one row a trial x fold, its latest rung's
        for row in table.itertuples():
            rung = last[row.trial].rung
            assert row.epochs_completed <= rung["epochs"]
            if row.stop_reason == "rung":
                assert row.epochs_completed == rung["epochs"] < config["models"][model]["max_epochs"]
        assert set(table["stop_reason"]) <= {"rung", "max_epochs", "plateau"} and "rung" in set(table["stop_reason"])
        history = pd.read_parquet(summary(sweep, model) / "history.parquet")
        epochs = history.groupby(["trial", "fold"])["epoch"].agg(["count", "max"])
        assert (epochs["count"] == epochs["max"]).all()   # each epoch once, from the first
        assert list(history.columns[:4]) == ["trial", "fold", "epoch", "round"]


def test_a_promoted_trial_equals_one_trained_straight(sweep, config):
    """The trial of bracket 0's last rung, trained 1, then 2, then 4 epochs in three jobs, is the
    trial trained to 4 epochs at once: history and kept model, bit for bit."""
    config, _ = config
    found = rounds(sweep, "sgd-biased", config)
    top = found[2]
    assert top.rung == {"bracket": 0, "level": 2, "trials": 1, "epochs": 4}
    (entry,), (unit,) = top.trials, top.units
    fold = sweep / "results" / "splits" / "synth" / "kfold" / "fold0"
    data_dir = sweep / "results" / "data" / "synth"
    data = TrainingData(pd.read_parquet(fold / "train.parquet"), pd.read_parquet(fold / "valid.parquet"),
                        len(pd.read_parquet(data_dir / "users.parquet")), len(pd.read_parquet(data_dir / "items.parquet")),
                        validation_settings(config))
    settings = config["models"]["sgd-biased"]
    straight = train_trial({"model": "sgd-biased", "kind": "sgd-biased", "max_epochs": 4,
                            "early_stopping": settings["early_stopping"]}, entry["trial"], entry["params"], data)
    history = pd.read_parquet(summary(sweep, "sgd-biased") / "history.parquet")
    continued = history[(history["trial"] == entry["trial"]) & (history["fold"] == 0)]
    timings = ["seconds", "cpu_seconds", "eval_seconds"]
    pd.testing.assert_frame_equal(continued.drop(columns=["fold", "round", *timings]).reset_index(drop=True),
                                  straight.history.drop(columns=timings), check_exact=True)
    assert list(continued["round"]) == [1, 2, 3, 3]
    with np.load(sweep / "results" / "trials" / "synth" / "kfold" / "sgd-biased" / unit / "fold0" / "model.npz") as npz:
        for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
            assert np.array_equal(npz[f"{entry['trial']}/{name}"], straight.state[name])


def test_the_search_is_complete(sweep):
    best = json.loads((summary(sweep, "sgd-biased") / "best.json").read_text())
    assert best["trials"] == 4 + 3 + 3 and best["usable_trials"] == 10
    targets = [str(summary(sweep, model).relative_to(sweep) / "best.json") for model in MODELS]
    assert not planned_jobs(sweep, "--cores", "1", *targets, *PLOTS, config=TINY_HYPERBAND)
