"""Reuse of a trial that another train job of the same model already trained on the same fold.

A train job trains a unit: one trial, or a batch of them. When a search changes shape
(``trials`` lowered, ``round_size`` or ``batch`` changed) a trial can land in a new unit
although nothing it is trained from changed. Training is deterministic, so the job then
takes that trial's record, history and model from the unit that trained it rather than
training it again. Everything a trial's training depends on is hashed into its record
(``training_hash``): the model kind and training settings, the trial's parameters, the
validation settings, the pruning reference of the fold, the fold's training and
validation files, the thread count and the package version. Only a trial with the same
hash on the same fold, whose model is kept and usable, is reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

import mfsweep
from mfsweep.io import DamagedFile, read_parquet, reading
from mfsweep.pipeline.paths import WILDCARDS
from mfsweep.records import TrialRecord, read_records
from mfsweep.trials import UNUSABLE

log = logging.getLogger("mfsweep")


class Trained(NamedTuple):
    """A trial as its train job left it: its record, its history rows, its model's arrays and,
    in a rung of a halving search, its checkpoint."""

    record: TrialRecord
    history: pd.DataFrame
    state: dict | None
    checkpoint: object = None   # a rung's mfsweep.train.Checkpoint, to continue from


def file_digest(*paths) -> str:
    """SHA-256 of the files' bytes, in order."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def training_hash(unit: dict, params: dict, evaluation: dict, thresholds: dict, data: str, threads: int) -> str:
    """The hash of everything a trial's training depends on (see the module's docstring)."""
    payload = {"kind": unit["kind"], "max_epochs": unit["max_epochs"], "early_stopping": unit["early_stopping"],
               "params": params, "evaluation": evaluation, "data": data, "threads": threads,
               "thresholds": {str(epoch): value for epoch, value in sorted(thresholds.items())},
               "version": mfsweep.__version__}
    if "epochs" in unit:  # a rung of a halving search: trained to its epochs (continued or not, the same)
        payload["epochs"] = unit["epochs"]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


class TrainedElsewhere:
    """The usable trials that the other units of a train job's model trained on its fold,
    by (trial, training_hash): their record files are read once, when the job starts."""

    def __init__(self, record_path):
        self.found: dict[tuple[str, str], tuple[Path, TrialRecord]] = {}
        fold_dir = Path(record_path).parent
        if not _is_unit(fold_dir):
            return
        for other in sorted(fold_dir.parent.parent.glob(f"*/{fold_dir.name}/record.json")):
            if other.parent == fold_dir or not _is_unit(other.parent):
                continue
            try:
                records = read_records(other)
            except (DamagedFile, FileNotFoundError) as error:
                log.warning("not reusing trials from %s: %s", other.parent, error)
                continue
            for record in records:
                if record.stop_reason not in UNUSABLE:
                    self.found.setdefault((record.trial, record.training_hash), (other.parent, record))

    def get(self, trial: str, key: str) -> Trained | None:
        """The trial ``trial`` as another unit trained it under the ``training_hash`` ``key``; None
        when no unit did (or its files are damaged or gone)."""
        if (trial, key) not in self.found:
            return None
        folder, record = self.found[(trial, key)]
        try:
            found = _trained_in(folder, record)
        except (DamagedFile, FileNotFoundError) as error:
            log.warning("not reusing trial %s from %s: %s", trial, folder, error)
            return None
        if found is not None:
            log.info("trial %s: reused from %s (same parameters, settings and data)", trial, folder)
        return found


def _is_unit(fold_dir: Path) -> bool:
    """Whether ``fold_dir`` is a unit's fold folder (``.../{trial}/fold{fold}``, as paths.TRIAL)."""
    return bool(re.fullmatch(rf"fold(?:{WILDCARDS['fold']})", fold_dir.name)
                and re.fullmatch(WILDCARDS["trial"], fold_dir.parent.name))


def _trained_in(folder: Path, record: TrialRecord) -> Trained | None:
    """``record``'s trial with its history rows and model arrays from the unit ``folder``;
    None when its model is gone (``keep_models: false``, already evaluated)."""
    model = folder / "model.npz"
    if not model.exists():
        return None
    prefix = f"{record.trial}/"
    with reading(model, "a model archive"), np.load(model) as npz:
        state = {name.removeprefix(prefix): npz[name] for name in npz.files if name.startswith(prefix)}
    if not state:
        return None
    history = read_parquet(folder / "history.parquet")
    return Trained(record, history[history["trial"] == record.trial].reset_index(drop=True), state)
