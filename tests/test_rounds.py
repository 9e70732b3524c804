"""The round file of a search in rounds: typed, read and written in mfsweep.rounds."""

import json

import pytest

from mfsweep.io import DamagedFile
from mfsweep.rounds import RoundFile, fold_thresholds, read_round, round_units, write_round

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
