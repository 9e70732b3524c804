"""The trial record of record.json and metrics.json: one shape, written and read in mfsweep.records."""

import json

import pytest

from mfsweep.io import DamagedFile
from mfsweep.records import COLUMNS, TrialRecord, read_records, write_records
from mfsweep.trials import RECORD_FIELDS

TRIAL = {"model": "sgd", "kind": "sgd-biased", "trial": "aaaaaaaaaa", "params": {"embedding_size": 4},
         "max_epochs": 5, "selection_metric": "RMSE"}
PROVENANCE = {"threads": 1, "version": "1.0", "commit": None, "config_hash": "0123456789abcdef",
              "training_hash": "fedcba9876543210"}


def trained() -> TrialRecord:
    return TrialRecord(**TRIAL, **PROVENANCE, stop_reason="plateau", error=None, epochs_completed=3, best_epoch=2,
                       train_seconds=0.5, cpu_seconds=0.4, validation={"RMSE": 0.9}, validation_seconds=0.1)


def test_a_trained_record_holds_the_trial_outcome_and_provenance_without_test_keys():
    assert trained().to_json() == {**TRIAL, "epochs_completed": 3, "best_epoch": 2, "stop_reason": "plateau",
                                   "error": None, "train_seconds": 0.5, "cpu_seconds": 0.4,
                                   "validation": {"RMSE": 0.9}, "validation_seconds": 0.1, **PROVENANCE}


def test_an_evaluated_record_adds_test_and_evaluate_seconds_even_with_no_test_metrics():
    content = trained().with_test(None, 0.25).to_json()
    assert content["test"] is None and content["evaluate_seconds"] == 0.25
    assert set(content) - set(trained().to_json()) == {"test", "evaluate_seconds"}


def test_a_failed_record_has_the_error_and_no_epochs_or_metrics():
    record = TrialRecord.failed(ValueError("embedding_size must be >= 1"), **TRIAL)
    assert (record.stop_reason, record.error) == ("failed", "ValueError: embedding_size must be >= 1")
    assert (record.epochs_completed, record.best_epoch, record.validation) == (0, 0, {})
    assert (record.train_seconds, record.cpu_seconds, record.validation_seconds) == (0.0, 0.0, 0.0)
    assert set(record.to_json()) == set(trained().to_json())


@pytest.mark.parametrize("record", [trained(), trained().with_test({"RMSE": 1.0}, 0.2)])
def test_records_read_back_as_written(tmp_path, record):
    write_records([record, record], tmp_path / "record.json")
    assert read_records(tmp_path / "record.json") == [record, record]
    assert json.loads((tmp_path / "record.json").read_text())[0] == record.to_json()


@pytest.mark.parametrize("content, named", [
    ({"trial": "x"}, "not a list of trial records"), ([{**trained().to_json(), "loss": 1.0}], "unknown keys ['loss']"),
    ([{k: v for k, v in trained().to_json().items() if k != "best_epoch"}], "missing keys ['best_epoch']"),
])
def test_a_malformed_record_file_is_a_damaged_file_naming_it_and_the_keys(tmp_path, content, named):
    path = tmp_path / "record.json"
    path.write_text(json.dumps(content))
    with pytest.raises(DamagedFile, match="record.json") as error:
        read_records(path)
    assert named in str(error.value)


def test_the_trial_table_columns_are_the_record_columns_with_the_fold_after_the_trial():
    assert RECORD_FIELDS == ("model", "kind", "trial", "fold", "epochs_completed", "best_epoch", "stop_reason",
                             "error", "train_seconds", "cpu_seconds", "validation_seconds", "evaluate_seconds",
                             "threads")
    assert [name for name in RECORD_FIELDS if name != "fold"] == list(COLUMNS)
