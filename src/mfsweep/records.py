"""The record of one trial on one fold: what record.json and metrics.json hold, read and written here.

A train job writes a list of records (record.json), one a trial of its unit; the evaluate
job adds each one's ``test`` metrics and ``evaluate_seconds`` (metrics.json). A record
carries the trial (model, kind, id, parameters, epoch budget, selection metric), its
outcome (stop reason, the error of a failed trial, epochs, timings, validation metrics)
and its provenance (package version, commit, config hash, threads, training hash).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace

from mfsweep.io import DamagedFile, read_json, write_json


def _column(*default):
    """A field that is also a column of the trial table (mfsweep.trials), in declaration order;
    ``_column(None)`` for one with that default."""
    return field(metadata={"column": True}, **({"default": default[0]} if default else {}))


@dataclass(kw_only=True)
class TrialRecord:
    model: str = _column()
    kind: str = _column()
    trial: str = _column()
    params: dict
    max_epochs: int
    selection_metric: str
    epochs_completed: int = _column()
    best_epoch: int = _column()
    stop_reason: str = _column()
    error: str | None = _column()
    train_seconds: float = _column()
    cpu_seconds: float = _column()
    validation: dict
    validation_seconds: float = _column()
    #: Set by the evaluate job; a record it has not seen has neither (nor the keys in its JSON).
    test: dict | None = None
    evaluate_seconds: float | None = _column(None)
    threads: int | None = _column(None)
    version: str | None = None
    commit: str | None = None
    config_hash: str | None = None
    training_hash: str | None = None

    @classmethod
    def failed(cls, error: BaseException, **trial) -> "TrialRecord":
        """The record of a trial whose model raised ``error``: no epochs, no metrics."""
        return cls(**trial, stop_reason="failed", error=f"{type(error).__name__}: {error}", epochs_completed=0,
                   best_epoch=0, train_seconds=0.0, cpu_seconds=0.0, validation={}, validation_seconds=0.0)

    @property
    def evaluated(self) -> bool:
        return self.evaluate_seconds is not None

    def with_test(self, test: dict | None, seconds: float) -> "TrialRecord":
        return replace(self, test=test, evaluate_seconds=seconds)

    def to_json(self) -> dict:
        """The record as its file holds it (without ``test`` and ``evaluate_seconds`` before evaluation)."""
        skipped = () if self.evaluated else EVALUATION
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skipped}

    @classmethod
    def from_json(cls, content) -> "TrialRecord":
        """The record of a file's entry; ValueError naming the keys when it is not one."""
        if not isinstance(content, dict):
            raise ValueError(f"a trial record is a mapping, got {type(content).__name__}")
        names = {f.name for f in fields(cls)}
        missing = sorted(names - set(EVALUATION) - set(content))
        unknown = sorted(set(content) - names)
        if missing or unknown:
            raise ValueError(f"not a trial record: missing keys {missing}, unknown keys {unknown}")
        return cls(**content)


#: The keys the evaluate job adds.
EVALUATION = ("test", "evaluate_seconds")

REBUILD = "delete it and run snakemake again, which rebuilds it"

#: The fields of a record that are columns of the trial table, in the table's order.
COLUMNS = tuple(f.name for f in fields(TrialRecord) if f.metadata.get("column"))


def read_records(path: str | os.PathLike) -> list[TrialRecord]:
    """The records of a record.json or metrics.json; DamagedFile naming the file when one is malformed."""
    content = read_json(path)
    if not isinstance(content, list):
        raise DamagedFile(path, f"{path} is not a list of trial records; {REBUILD}")
    try:
        return [TrialRecord.from_json(entry) for entry in content]
    except (TypeError, ValueError) as error:
        raise DamagedFile(path, f"{path}: {error}; {REBUILD}") from error


def write_records(records: list[TrialRecord], path: str | os.PathLike) -> None:
    write_json([record.to_json() for record in records], path)
