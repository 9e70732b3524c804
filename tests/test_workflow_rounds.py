"""A search in rounds end to end: a two-round tpe search with pruning and a grid search with pruning."""

import json
import math

import optuna
import pandas as pd
import pytest
import yaml
from workflow_helpers import ROOT, planned_jobs, round_file, snakemake, summary

from mfsweep.pipeline.config import validate

pytestmark = pytest.mark.workflow

TINY_TPE = ROOT / "tests" / "configs" / "tiny_tpe.yaml"
MODELS = ("sgd-biased", "als-biased")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("rounds")
    snakemake(workdir, "--cores", "2", config=TINY_TPE)
    return workdir


def rounds(workdir, model):
    return [json.loads(round_file(workdir, model, r).read_text()) for r in (1, 2)]


def test_every_round_is_proposed_and_trained(sweep):
    for model in MODELS:
        trials = pd.read_parquet(summary(sweep, model) / "trials.parquet")
        proposed = {e["trial"]: (p["round"], e["proposed"]) for p in rounds(sweep, model) for e in p["trials"]}
        found = {t: (r, n) for t, r, n in trials[["trial", "round", "proposed"]].drop_duplicates().itertuples(index=False)}
        assert found == proposed
        assert sorted(n for _, n in proposed.values()) == list(range(len(proposed)))
        assert not round_file(sweep, model, 3).exists()
    assert len(rounds(sweep, "sgd-biased")[1]["trials"]) == 3


def test_grid_search_in_rounds_keeps_its_trial_ids(sweep):
    config = yaml.safe_load(TINY_TPE.read_text())
    grid = validate(config)["als-biased"]
    trials = pd.read_parquet(summary(sweep, "als-biased") / "trials.parquet")
    order = trials.drop_duplicates("trial").sort_values("proposed")
    assert list(order["trial"]) == list(grid)
    assert list(order["round"]) == [1, 1, 2, 2]


def test_pruning_follows_the_reference_of_the_earlier_round(sweep):
    for model in MODELS:
        first, second = rounds(sweep, model)
        assert first["pruning"]["thresholds"] == {}
        trials = pd.read_parquet(summary(sweep, model) / "trials.parquet")
        history = pd.read_parquet(summary(sweep, model) / "history.parquet")
        assert "pruned" not in set(trials.loc[trials["round"] == 1, "stop_reason"])
        metric = second["pruning"]["metric"]
        for row in trials[trials["round"] == 2].itertuples():
            reference = second["pruning"]["thresholds"][str(row.fold)]
            curve = history[(history["trial"] == row.trial) & (history["fold"] == row.fold)].sort_values("epoch")
            best = curve[metric].cummin()
            worse = [int(e) for e, b in zip(curve["epoch"], best) if str(e) in reference and b > reference[str(e)]]
            if row.stop_reason == "pruned":
                assert worse == [row.epochs_completed]
            else:  # the plateau is checked first: it may end a trial at an epoch worse than the reference
                assert worse == [] or (row.stop_reason == "plateau" and worse == [row.epochs_completed])
    pruned = pd.concat(pd.read_parquet(summary(sweep, m) / "trials.parquet") for m in MODELS)["stop_reason"]
    assert (pruned == "pruned").any()


def test_optuna_storage_holds_every_trial_with_its_intermediate_values(sweep):
    for model in MODELS:
        trials = pd.read_parquet(summary(sweep, model) / "trials.parquet")
        history = pd.read_parquet(summary(sweep, model) / "history.parquet")
        study = optuna.load_study(study_name=model, storage=f"sqlite:///{summary(sweep, model) / 'optuna.db'}")
        assert [t.user_attrs["trial"] for t in study.trials] == list(
            trials.drop_duplicates("trial").sort_values("proposed")["trial"])
        for stored in study.trials:
            rows = trials[trials["trial"] == stored.user_attrs["trial"]]
            curve = history[history["trial"] == stored.user_attrs["trial"]].groupby("epoch")["RMSE"].agg(["mean", "count"])
            full = curve[curve["count"] == 2]["mean"]
            assert stored.intermediate_values == pytest.approx(full.to_dict())
            if (rows["stop_reason"] == "pruned").any():
                assert stored.state == optuna.trial.TrialState.PRUNED
            else:
                assert stored.state == optuna.trial.TrialState.COMPLETE
                assert stored.value == pytest.approx(rows["valid.RMSE"].mean())


def test_best_json_keeps_its_shape(sweep):
    best = json.loads((summary(sweep, "sgd-biased") / "best.json").read_text())
    trials = pd.read_parquet(summary(sweep, "sgd-biased") / "trials.parquet")
    assert best["trial"] in set(trials["trial"]) and best["trials"] == 6
    assert math.isfinite(best["objective"]) and "round" not in best


def test_complete_search_has_nothing_left_to_do(sweep):
    jobs = planned_jobs(sweep, config=TINY_TPE)
    assert not {"propose", "train", "evaluate"} & set(jobs)


def test_a_round_proposed_again_after_a_kill_is_the_same(sweep, tmp_path):
    target = round_file(sweep, "sgd-biased", 2)
    before = target.read_text()
    target.unlink()  # the propose job of round 2 was killed: its output is gone
    snakemake(sweep, "--cores", "1", str(target.relative_to(sweep)), config=TINY_TPE)
    assert target.read_text() == before
