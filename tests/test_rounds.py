"""The round file of a search in rounds: typed, read and written in mfsweep.rounds; the rounds
of a search, proposed from the earlier ones."""

import json

import pandas as pd
import pytest
from test_adaptive import SPACE, results

from mfsweep.io import DamagedFile
from mfsweep.pipeline import search_jobs
from mfsweep.rounds import RoundFile, fold_thresholds, propose_round, read_round, round_units, write_round

CONTENT = {"round": 2, "trials": [{"trial": "aaaaaaaaaa", "proposed": 3, "params": {"embedding_size": 4}}],
           "units": {"aaaaaaaaaa": ["aaaaaaaaaa"]},
           "pruning": {"method": "median", "min_epochs": 1, "metric": "RMSE", "thresholds": {"0": {"1": 0.9}}}}


def test_a_round_file_reads_back_as_written_byte_for_byte(tmp_path):
    path = tmp_path / "round2.json"
    path.write_text(json.dumps(CONTENT, indent=2, sort_keys=True) + "\n")
    proposal = read_round(path)
    assert proposal == RoundFile(**CONTENT) and proposal.to_json() == CONTENT
    write_round(proposal, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()


def test_its_pruning_reference_and_units():
    proposal = RoundFile(**CONTENT)
    assert fold_thresholds(proposal, 0) == {1: 0.9} and fold_thresholds(proposal, 1) == {}
    assert fold_thresholds(RoundFile(**{**CONTENT, "pruning": {"method": "none"}}), 0) == {}
    assert round_units([proposal, proposal]) == ["aaaaaaaaaa", "aaaaaaaaaa"]


@pytest.mark.parametrize("content, named", [({}, "round, trials, units, pruning"),
                                            ({**CONTENT, "units": []}, ": units missing"), ([], "round, trials")])
def test_a_malformed_round_file_is_a_damaged_file_naming_the_fields(tmp_path, content, named):
    path = tmp_path / "round1.json"
    path.write_text(json.dumps(content))
    with pytest.raises(DamagedFile, match="round1.json is not a whole round file") as error:
        read_round(path)
    assert named in str(error.value)


def test_a_rung_reads_back_and_a_round_without_one_has_no_such_key(tmp_path):
    rung = {"bracket": 0, "level": 1, "trials": 1, "epochs": 3}
    entry = {**CONTENT["trials"][0], "resume": "r123456789"}
    proposal = RoundFile(**{**CONTENT, "trials": [entry]}, rung=rung)
    write_round(proposal, tmp_path / "round2.json")
    assert read_round(tmp_path / "round2.json") == proposal and proposal.resumed() == {"aaaaaaaaaa": "r123456789"}
    assert "rung" not in RoundFile(**CONTENT).to_json() and RoundFile(**CONTENT).resumed() == {}
    (tmp_path / "bad.json").write_text(json.dumps({**CONTENT, "rung": []}))
    with pytest.raises(DamagedFile, match="rung missing or malformed"):
        read_round(tmp_path / "bad.json")

def test_grid_search_with_pruning_runs_its_expansion_in_rounds_in_order():
    import yaml
    from workflow_helpers import ROOT

    from mfsweep.pipeline import workflow
    from mfsweep.pipeline.config import validate

    config = yaml.safe_load((ROOT / "tests" / "configs" / "tiny_tpe.yaml").read_text())
    trials = validate(config)
    grid = list(trials["als-biased"].values())
    assert workflow.in_rounds(config, "als-biased") and workflow.round_sizes(config, trials, "als-biased") == [2, 2]
    rounds = [workflow.propose_settings(config, trials, "als-biased", r)["trials"] for r in (1, 2)]
    assert rounds == [grid[:2], grid[2:]]
    assert workflow.round_sizes(config, trials, "sgd-biased") == [3, 3] and trials["sgd-biased"] == {}
    assert "als-biased" not in workflow.units(config, trials)
    with pytest.raises(ValueError, match="round 3 is not one of its 2 rounds"):
        workflow.propose_settings(config, trials, "als-biased", 3)


def test_the_record_files_of_earlier_rounds_give_the_same_proposals_in_any_listing_order(tmp_path):
    from mfsweep.io import write_parquet
    from mfsweep.records import TrialRecord, write_records

    settings = {"model": "m", "kind": "sgd-biased", "method": "tpe", "seed": 5, "size": 3, "batch": 1,
                "max_epochs": 4, "space": SPACE, "early_stopping": {"metric": None}, "pruning": {"method": "none"}}
    first = propose_round(settings, 1, [], pd.DataFrame(), pd.DataFrame())
    trials, histories = results([entry["params"] for entry in first.trials])
    records, history_files = [], []
    for entry in first.trials:
        for fold in (0, 1):
            folder = tmp_path / "results" / "trials" / "d" / "s" / "m" / entry["trial"] / f"fold{fold}"
            row = trials[(trials["trial"] == entry["trial"]) & (trials["fold"] == fold)].iloc[0]
            write_records([TrialRecord(model="m", kind="sgd-biased", trial=entry["trial"], params=entry["params"],
                                       max_epochs=4, selection_metric="RMSE", stop_reason=row["stop_reason"],
                                       error=None, epochs_completed=4, best_epoch=4, train_seconds=0.0,
                                       cpu_seconds=0.0, validation={"RMSE": row["valid.RMSE"]},
                                       validation_seconds=0.0)], folder / "record.json")
            write_parquet(histories[(histories["trial"] == entry["trial"]) & (histories["fold"] == fold)].drop(columns="fold"),
                          folder / "history.parquet")
            records.append(str(folder / "record.json"))
            history_files.append(str(folder / "history.parquet"))
    proposals = []
    for order in (slice(None), slice(None, None, -1)):
        table, history = search_jobs.earlier_results(records[order], history_files[order], [first])
        proposals.append(propose_round(settings, 2, [first], table, history).trials)
    assert proposals[0] == proposals[1] and len(proposals[0]) == 3
    assert [e["proposed"] for e in proposals[0]] == [3, 4, 5]


def test_raising_trials_adds_rounds_and_keeps_the_earlier_ones():
    import copy

    import yaml
    from workflow_helpers import ROOT

    from mfsweep.pipeline import workflow
    from mfsweep.pipeline.config import validate

    config = yaml.safe_load((ROOT / "tests" / "configs" / "tiny_tpe.yaml").read_text())
    raised = copy.deepcopy(config)
    raised["models"]["sgd-biased"]["search"]["trials"] = 8
    trials, more = validate(config), validate(raised)
    assert workflow.round_sizes(raised, more, "sgd-biased") == [3, 3, 2]
    for r in (1, 2):  # the same settings: Snakemake keeps these rounds and their trials
        assert workflow.propose_settings(config, trials, "sgd-biased", r) == workflow.propose_settings(raised, more, "sgd-biased", r)
