"""Trials gathered into tables, and the best trial of a model selected."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from mfsweep.io import read_json
from mfsweep.train import lower_is_better

RECORD_FIELDS = ("model", "kind", "trial", "fold", "epochs_completed", "best_epoch", "stop_reason", "error",
                 "train_seconds", "cpu_seconds", "validation_seconds", "evaluate_seconds", "threads")
#: Trials without usable results.
UNUSABLE = ("failed", "diverged")


def fold_of(path: str | Path) -> int:
    """The fold number of a trial file ``.../fold{k}/name``."""
    return int(Path(path).parent.name.removeprefix("fold"))


def flatten_params(params: dict, prefix: str = "param.") -> dict:
    """``{"regularization": {"user": a}}`` -> ``{"param.regularization.user": a}``."""
    flat = {}
    for name, value in params.items():
        if isinstance(value, dict):
            flat.update({f"{prefix}{name}.{half}": v for half, v in value.items()})
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def trial_row(metrics: dict, fold: int) -> dict:
    """One row of trials.parquet from a metrics.json."""
    row = {field: metrics.get(field) for field in RECORD_FIELDS}
    row["fold"] = fold
    row.update(flatten_params(metrics["params"]))
    row.update({f"valid.{k}": v for k, v in (metrics.get("validation") or {}).items()})
    row.update({f"test.{k}": v for k, v in (metrics.get("test") or {}).items()})
    return row


def records_of(unit: dict) -> list[dict]:
    """The trial records of a record.json or metrics.json: one trial's, or a batch's list."""
    return unit["trials"] if "trials" in unit else [unit]


def collect_trials(paths: list[str | Path]) -> pd.DataFrame:
    """One row a trial x fold, from their metrics.json files."""
    rows = [trial_row(record, fold_of(p)) for p in paths for record in records_of(read_json(p))]
    return pd.DataFrame(rows).sort_values(["trial", "fold"], kind="stable").reset_index(drop=True)


def collect_histories(paths: list[str | Path]) -> pd.DataFrame:
    """Every epoch of every trial x fold, with trial and fold columns first."""
    frames = []
    for path in paths:
        frame = pd.read_parquet(path)
        frame.insert(1, "fold", fold_of(path))
        frames.append(frame)
    filled = [frame for frame in frames if not frame.empty] or frames[:1]  # failed trials have no epochs
    return pd.concat(filled, ignore_index=True).sort_values(["trial", "fold", "epoch"], kind="stable",
                                                            ignore_index=True)


def select_best(trials: pd.DataFrame, metric: str) -> dict:
    """The trial with the best mean validation ``metric`` over folds (unusable trials excluded).

    Returns the shape of a tuning service's final result: the trial, its params, its
    mean validation and test metrics over folds with their min and max, and its fit
    cost; ``None`` values where no trial is usable.
    """
    column = f"valid.{metric}"
    usable = trials[~trials["stop_reason"].isin(UNUSABLE)]
    if column not in usable or usable[column].isna().all():
        return _no_best(trials, metric)
    means = usable.groupby("trial")[column].agg(["mean", "count"])
    means = means[means["count"] == trials.groupby("trial").size().reindex(means.index)]  # every fold usable
    if means.empty:
        return _no_best(trials, metric)
    order = means["mean"].sort_values(ascending=lower_is_better(metric), kind="stable")
    best = order.index[0]
    rows = trials[trials["trial"] == best]
    first = rows.iloc[0]
    return {
        "model": first["model"], "kind": first["kind"], "trial": best,
        "selection_metric": metric, "objective": float(order.iloc[0]),
        "trials": int(trials["trial"].nunique()), "usable_trials": int(len(means)),
        "folds": int(len(rows)),
        "params": _params_of(first),
        "epochs_completed": int(rows["epochs_completed"].max()),
        "stop_reason": _most_common(rows["stop_reason"]),
        "train_seconds": float(rows["train_seconds"].mean()),
        "cpu_seconds": float(rows["cpu_seconds"].mean()),
        **{name: _summary(rows, prefix) for name, prefix in (("validation", "valid."), ("test", "test."))},
    }


def _no_best(trials: pd.DataFrame, metric: str) -> dict:
    first = trials.iloc[0]
    return {"model": first["model"], "kind": first["kind"], "trial": None, "selection_metric": metric,
            "objective": None, "trials": int(trials["trial"].nunique()), "usable_trials": 0,
            "params": None, "epochs_completed": None, "stop_reason": None, "train_seconds": None,
            "cpu_seconds": None, "validation": {}, "test": {},
            "reasons": trials["stop_reason"].value_counts().to_dict()}


def _params_of(row: pd.Series) -> dict:
    params: dict = {}
    for column, value in row.items():
        if not column.startswith("param.") or _missing(value):
            continue
        parts = column.removeprefix("param.").split(".")
        value = value.item() if hasattr(value, "item") else value
        if len(parts) == 2:
            params.setdefault(parts[0], {})[parts[1]] = value
        else:
            params[parts[0]] = value
    return params


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _most_common(values: pd.Series) -> str:
    return str(values.value_counts().index[0])


def _summary(rows: pd.DataFrame, prefix: str) -> dict:
    """Mean over folds of each metric, with ``{metric}_min`` and ``{metric}_max``."""
    out = {}
    for column in (c for c in rows.columns if c.startswith(prefix)):
        values = rows[column].astype(float)
        name = column.removeprefix(prefix)
        out[name] = float(values.mean())
        if len(values) > 1:
            out[f"{name}_min"], out[f"{name}_max"] = float(values.min()), float(values.max())
    return out
