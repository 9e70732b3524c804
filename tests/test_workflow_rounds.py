"""A search in rounds end to end: a two-round tpe search with pruning and a grid search with pruning."""

import hashlib
import json
import math
import shutil

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


#: sha256 of the round files of tiny_tpe's tpe search (no sampler_options), as proposed before the option existed.
TPE_ROUND_FILES = {1: "55f4337c0d485f03d650ea9ec4b85329b4c82a718e2cd9f251ca779d319e5d89",
                   2: "14c368ad697cae97c3630949e66ade3fdd81a274a58d9624d17ee5dd6eaf103f"}


def test_the_round_files_of_a_tpe_search_without_sampler_options_are_as_before(sweep):
    for r, digest in TPE_ROUND_FILES.items():
        assert hashlib.sha256(round_file(sweep, "sgd-biased", r).read_bytes()).hexdigest() == digest


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


@pytest.fixture
def finished(sweep, tmp_path):
    """A copy of the finished sweep (results and Snakemake's records), for a test to change."""
    workdir = tmp_path / "copy"
    shutil.copytree(sweep, workdir, symlinks=True, ignore=shutil.ignore_patterns(".snakemake/locks"))
    return workdir


def test_raising_trials_proposes_the_new_round_and_keeps_the_earlier_ones(finished, tmp_path):
    before = [round_file(finished, "sgd-biased", r).read_bytes() for r in (1, 2)]
    config = yaml.safe_load(TINY_TPE.read_text())
    config["models"]["sgd-biased"]["search"]["trials"] = 9
    raised = tmp_path / "raised.yaml"
    raised.write_text(yaml.safe_dump(config))
    assert planned_jobs(finished, config=raised).get("propose") == 1
    snakemake(finished, "--cores", "2", config=raised)
    assert [round_file(finished, "sgd-biased", r).read_bytes() for r in (1, 2)] == before
    third = json.loads(round_file(finished, "sgd-biased", 3).read_text())
    assert [entry["proposed"] for entry in third["trials"]] == [6, 7, 8]
    trials = pd.read_parquet(summary(finished, "sgd-biased") / "trials.parquet")
    assert trials.groupby("round")["trial"].nunique().to_dict() == {1: 3, 2: 3, 3: 3}
    assert json.loads((summary(finished, "sgd-biased") / "best.json").read_text())["trials"] == 9
    assert pd.read_csv(summary(finished, "sgd-biased") / "best.csv")["trials"].tolist() == [9]


def test_a_deleted_round_or_trial_file_is_made_again_with_what_follows(finished):
    first = round_file(finished, "sgd-biased", 1)
    proposal = first.read_bytes()
    second = json.loads(round_file(finished, "sgd-biased", 2).read_text())
    unit = next(iter(second["units"]))
    history = finished / "results/trials/synth/kfold/sgd-biased" / unit / "fold1" / "history.parquet"
    epochs = pd.read_parquet(history).drop(columns=["seconds", "cpu_seconds", "eval_seconds"], errors="ignore")
    collected = (summary(finished, "sgd-biased") / "trials.parquet").stat().st_mtime_ns
    first.unlink()
    history.unlink()
    snakemake(finished, "--cores", "2", config=TINY_TPE)
    assert first.read_bytes() == proposal
    again = pd.read_parquet(history).drop(columns=["seconds", "cpu_seconds", "eval_seconds"], errors="ignore")
    pd.testing.assert_frame_equal(again, epochs)
    assert (summary(finished, "sgd-biased") / "trials.parquet").stat().st_mtime_ns > collected
    assert not {"propose", "train", "evaluate", "collect"} & set(planned_jobs(finished, config=TINY_TPE))


def test_a_round_file_emptied_by_hand_is_named(finished):
    first = round_file(finished, "sgd-biased", 1)
    first.write_text("{}")
    result = snakemake(finished, "-n", config=TINY_TPE, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{first.relative_to(finished)} is not a whole round file: round, trials, units, pruning" in output
    assert "delete results/search/synth/kfold/sgd-biased/round1.json and run snakemake again" in output


def test_lowering_trials_reuses_the_trials_already_trained(finished, tmp_path):
    old = json.loads(round_file(finished, "sgd-biased", 2).read_text())
    config = yaml.safe_load(TINY_TPE.read_text())
    config["models"]["sgd-biased"]["search"]["trials"] = 4
    lowered = tmp_path / "lowered.yaml"
    lowered.write_text(yaml.safe_dump(config))
    before = pd.read_parquet(summary(finished, "sgd-biased") / "trials.parquet")
    snakemake(finished, "--cores", "2", config=lowered)
    (entry,) = json.loads(round_file(finished, "sgd-biased", 2).read_text())["trials"]
    assert entry == old["trials"][0]  # the first proposal of the round, as before
    (unit,) = json.loads(round_file(finished, "sgd-biased", 2).read_text())["units"]
    for fold in (0, 1):
        log = (finished / "logs/train/synth/kfold/sgd-biased" / unit / f"fold{fold}.log").read_text()
        assert f"trial {entry['trial']}: reused from" in log
    after = pd.read_parquet(summary(finished, "sgd-biased") / "trials.parquet")
    assert set(after["trial"]) == set(before.loc[before["round"] == 1, "trial"]) | {entry["trial"]}
    kept = before[before["trial"].isin(set(after["trial"]))].reset_index(drop=True)
    evaluated = ["evaluate_seconds"]  # the new unit's evaluate job ran: its timing is its own
    pd.testing.assert_frame_equal(after.drop(columns=evaluated), kept.drop(columns=evaluated))
