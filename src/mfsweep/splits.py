"""Train / validation / test splits of a ratings table.

Methods (settings keys, defaults in brackets):

- ``random``: ``test_fraction`` [0.2] of the ratings at random (``folds`` [1] = 1), or
  k-fold over the ratings (``folds`` > 1: fold k tests the k-th of k near-equal parts
  of one seeded permutation; ``test_fraction`` is then unused).
- ``user``: LensKit's crossfold users. The users with more than ``holdout`` [5]
  ratings are shuffled into ``folds`` [5] partitions; each user of partition k has
  ``holdout`` ratings, picked at random, in fold k's test part, and the rest of the
  ratings train. Users with ``holdout`` ratings or fewer are always in training.
  ``folds`` = 1 makes every such user a test user.
- ``temporal``: the last ``test_fraction`` [0.2] of the ratings by timestamp (ties
  broken by row order) are the test part; ``folds`` must be 1.

The validation part is carved out of training by the same method:
``validation_fraction`` [0.1] of the training ratings (random), the same holdout from
that fraction of the training users that have more than ``holdout`` ratings (user),
or the last fraction of training by time (temporal); 0 gives an empty validation part.
Test and validation rows whose user or item is absent from the training part are
dropped and counted. Each part keeps the rows in the order of the input; ``seed``
[42] makes the split repeatable byte for byte.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mfsweep.io import write_parquet

METHODS = ("random", "user", "temporal")
DEFAULTS = {"test_fraction": 0.2, "validation_fraction": 0.1, "holdout": 5, "seed": 42}
DEFAULT_FOLDS = {"random": 1, "user": 5, "temporal": 1}
TRAIN, VALID, TEST = 0, 1, 2


class SplitError(ValueError):
    """Split settings that cannot give a usable split; the message names the key."""


@dataclass
class Fold:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    dropped: dict = field(default_factory=dict)


def settings_with_defaults(settings: dict) -> dict:
    """The settings checked, with every default filled in."""
    known = {"method", "folds", *DEFAULTS}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise SplitError(f"unknown split setting {unknown[0]!r}; known: {sorted(known)}")
    method = settings.get("method")
    if method not in METHODS:
        raise SplitError(f"method must be one of {METHODS}, not {method!r}")
    out = {"method": method, "folds": DEFAULT_FOLDS[method], **DEFAULTS}
    out.update({key: value for key, value in settings.items() if value is not None})
    _fraction(out, "test_fraction", allow_zero=False)
    _fraction(out, "validation_fraction", allow_zero=True)
    for key, low in (("folds", 1), ("holdout", 1), ("seed", 0)):
        value = out[key]
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
            raise SplitError(f"{key} must be an integer >= {low}, not {value!r}")
        out[key] = int(value)
    if method == "temporal" and out["folds"] != 1:
        raise SplitError(f"folds must be 1 for the temporal method, not {out['folds']}")
    return out


def _fraction(settings: dict, key: str, allow_zero: bool) -> None:
    value = settings[key]
    low_ok = value >= 0 if allow_zero else value > 0
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not (low_ok and value < 1):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise SplitError(f"{key} must be in {interval}, not {value!r}")
    settings[key] = float(value)


def n_folds(settings: dict) -> int:
    return settings_with_defaults(settings)["folds"]


def split_fold(ratings: pd.DataFrame, settings: dict, fold: int) -> Fold:
    """Fold ``fold`` (0-based) of ``ratings`` (user, item dense ints, ...) under ``settings``."""
    settings = settings_with_defaults(settings)
    if not isinstance(fold, numbers.Integral) or not 0 <= fold < settings["folds"]:
        raise SplitError(f"fold must be in 0..{settings['folds'] - 1}, not {fold!r}")
    fold = int(fold)
    for column in ("user", "item") + (("timestamp",) if settings["method"] == "temporal" else ()):
        if column not in ratings:
            raise SplitError(f"the ratings have no {column!r} column (columns: {list(ratings.columns)})")
    users = ratings["user"].to_numpy()
    part = np.full(len(ratings), TRAIN, np.int8)
    method = settings["method"]
    if method == "random":
        _random(part, settings, fold)
    elif method == "user":
        _by_user(part, users, settings, fold)
    else:
        _temporal(part, ratings["timestamp"].to_numpy(), settings)
    dropped = _drop_unseen(part, users, ratings["item"].to_numpy())
    if not (part == TEST).any():
        raise SplitError(f"fold {fold}: every test rating has a user or item unseen in training ({dropped})")
    return Fold(*(_rows(ratings, part == which) for which in (TRAIN, VALID, TEST)), dropped=dropped)


def write_fold(fold: Fold, out_dir: str | os.PathLike) -> dict:
    """Write train/valid/test.parquet into ``out_dir`` (atomically); return their sizes."""
    out_dir = Path(out_dir)
    for name in ("train", "valid", "test"):
        write_parquet(getattr(fold, name), out_dir / f"{name}.parquet")
    return {"train": len(fold.train), "valid": len(fold.valid), "test": len(fold.test), **fold.dropped}


def _rows(ratings: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    return ratings.iloc[np.flatnonzero(mask)].reset_index(drop=True)


def _rng(settings: dict, *stream: int) -> np.random.Generator:
    return np.random.default_rng([settings["seed"], *stream])


# ----- random ------------------------------------------------------------------------------
def _random(part: np.ndarray, settings: dict, fold: int) -> None:
    n, folds = len(part), settings["folds"]
    order = _rng(settings, 0).permutation(n)
    if folds == 1:
        start, end = 0, int(round(settings["test_fraction"] * n))
        key = "test_fraction"
    else:
        start, end = fold * n // folds, (fold + 1) * n // folds
        key = "folds"
    if end <= start or end - start >= n:
        raise SplitError(f"{key}: fold {fold} would have {end - start} of {n} ratings in its test part")
    part[order[start:end]] = TEST
    del order
    train = np.flatnonzero(part == TRAIN)
    count = _validation_count(settings, len(train))
    if count:
        part[_rng(settings, 1, fold).permutation(train)[:count]] = VALID


def _validation_count(settings: dict, available: int) -> int:
    fraction = settings["validation_fraction"]
    count = int(round(fraction * available))
    if fraction > 0 and not 0 < count < available:
        raise SplitError(f"validation_fraction {fraction} of {available} gives {count}: an empty part")
    return count


# ----- user --------------------------------------------------------------------------------
def _by_user(part: np.ndarray, users: np.ndarray, settings: dict, fold: int) -> None:
    holdout, folds = settings["holdout"], settings["folds"]
    n_users = int(users.max()) + 1 if len(users) else 0
    eligible = np.flatnonzero(np.bincount(users, minlength=n_users) > holdout)
    if len(eligible) < folds:
        raise SplitError(
            f"folds: {len(eligible)} users have more than holdout={holdout} ratings, fewer than {folds} folds"
        )
    shuffled = _rng(settings, 0).permutation(eligible)
    chosen = shuffled[fold * len(shuffled) // folds:(fold + 1) * len(shuffled) // folds]
    rows = np.arange(len(users))
    part[_holdout_rows(rows, users, chosen, n_users, holdout, _rng(settings, 2, fold))] = TEST

    train = np.flatnonzero(part == TRAIN)
    train_counts = np.bincount(users[train], minlength=n_users)
    candidates = np.flatnonzero(train_counts > holdout)
    count = _validation_count(settings, len(candidates)) if len(candidates) else 0
    if settings["validation_fraction"] > 0 and count == 0:
        raise SplitError(f"validation_fraction: no training user has more than holdout={holdout} ratings")
    if count:
        rng = _rng(settings, 1, fold)
        valid_users = np.sort(rng.permutation(candidates)[:count])
        part[_holdout_rows(train, users, valid_users, n_users, holdout, rng)] = VALID


def _holdout_rows(rows, users, chosen, n_users, holdout, rng) -> np.ndarray:
    """``holdout`` random rows of each user in ``chosen``, from among ``rows``."""
    selected = np.zeros(n_users, np.bool_)
    selected[chosen] = True
    rows = rows[selected[users[rows]]]
    owners = users[rows].astype(np.uint64)
    keys = (owners << np.uint64(32)) | rng.integers(0, 2**32, len(rows), dtype=np.uint64)
    order = np.argsort(keys)
    owners = owners[order].astype(np.int64)
    starts = np.zeros(n_users + 1, np.int64)
    np.cumsum(np.bincount(owners, minlength=n_users), out=starts[1:])
    rank = np.arange(len(order)) - starts[owners]
    return rows[order[rank < holdout]]


# ----- temporal ----------------------------------------------------------------------------
def _temporal(part: np.ndarray, timestamps: np.ndarray, settings: dict) -> None:
    n = len(part)
    count = int(round(settings["test_fraction"] * n))
    if not 0 < count < n:
        raise SplitError(f"test_fraction {settings['test_fraction']} of {n} ratings gives {count} test ratings")
    part[_latest(np.arange(n), timestamps, count)] = TEST
    train = np.flatnonzero(part == TRAIN)
    valid = _validation_count(settings, len(train))
    if valid:
        part[_latest(train, timestamps, valid)] = VALID


def _latest(rows: np.ndarray, timestamps: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` latest of ``rows`` by timestamp, the later row first among ties."""
    times = timestamps[rows]
    cut = len(rows) - count
    threshold = np.partition(times, cut)[cut]
    after = times > threshold
    ties = np.flatnonzero(times == threshold)
    need = count - int(after.sum())
    return np.concatenate([rows[after], rows[ties[len(ties) - need:]]])


# ----- unseen users and items --------------------------------------------------------------
def _drop_unseen(part: np.ndarray, users: np.ndarray, items: np.ndarray) -> dict:
    """Mark test and validation rows whose user or item never trains as dropped (-1)."""
    train = part == TRAIN
    seen_user = np.zeros(int(users.max()) + 1 if len(users) else 0, np.bool_)
    seen_item = np.zeros(int(items.max()) + 1 if len(items) else 0, np.bool_)
    seen_user[users[train]] = True
    seen_item[items[train]] = True
    new_user = ~seen_user[users]
    new_item = ~seen_item[items] & ~new_user
    dropped = {}
    for name, which in (("test", TEST), ("valid", VALID)):
        rows = part == which
        dropped[f"{name}_unseen_user"] = int((rows & new_user).sum())
        dropped[f"{name}_unseen_item"] = int((rows & new_item).sum())
        part[rows & (new_user | new_item)] = -1
    return dropped
