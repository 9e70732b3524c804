"""Trial results: their vocabulary, their tables, their ranking and the best trial.

This module owns what a trial's record means: how a trial can end, which metrics
exist and which way each is better, the metric a model is selected on, how
parameters are flattened into table columns and nested back, and the tables built
from records (one row a trial x fold, one row a trial), ranked in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from mfsweep.records import COLUMNS
from mfsweep.values import missing, plain

# ----- vocabulary ---------------------------------------------------------------------------
#: How a trial ended.
STOP_REASONS = ("max_epochs", "plateau", "pruned", "rung", "diverged", "failed")
#: The stop reason of a trial of a halving search trained to its rung's epochs and not promoted.
RUNG = "rung"
#: Trials without usable results.
UNUSABLE = ("failed", "diverged")

#: Error metrics on the rating scale (lower is better).
RATING_METRICS = ("RMSE", "MAE", "RMSE_user", "MAE_user")
#: Ranking metrics over the whole list, and those taken at each cutoff k (``NDCG@10``).
RANKING_METRICS = ("NDCG", "RBP", "RecipRank")
CUTOFF_METRICS = ("NDCG", "Precision", "Recall", "HitRate", "Coverage")
#: Quantities of the training itself, lower is better.
LOSSES = ("train_loss",)
#: History columns that hold one part of the training loss (``loss_data``, ``loss_l2``, ...).
LOSS_PART = "loss_"
#: The order metrics are listed and drawn in; ``@k`` metrics after their base name.
METRIC_ORDER = (*RATING_METRICS, *RANKING_METRICS, *(f"{name}@" for name in CUTOFF_METRICS))

#: Kinds trained on implicit feedback: their scores rank items but are not ratings
#: (unless their ``target`` parameter is ``rating``: see ``predicts_ratings``).
IMPLICIT_KINDS = ("wals", "bpr")

#: Record fields that become columns of the trial table as they are.
#: The trial table's columns from a record (mfsweep.records), with the record file's fold after the trial id.
RECORD_FIELDS = (*COLUMNS[:COLUMNS.index("trial") + 1], "fold", *COLUMNS[COLUMNS.index("trial") + 1:])
PARAM = "param."
VALID = "valid."
TEST = "test."


def check_cutoffs(cutoffs) -> list[int]:
    """The cutoffs k of the ``@k`` metrics as ints; each >= 1, none repeated."""
    values = list(cutoffs)
    for k in values:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"cutoffs: each must be an integer >= 1, got {k!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"cutoffs: repeated value in {values}")
    return [int(k) for k in values]


def metric_names(cutoffs) -> list[str]:
    """Every metric key, in the order the evaluation returns them."""
    names = [*RATING_METRICS, "NDCG"]
    for k in check_cutoffs(cutoffs):
        names += [f"{metric}@{k}" for metric in CUTOFF_METRICS]
    return names + ["RBP", "RecipRank"]


def lower_is_better(metric: str) -> bool:
    """True for the losses and the error metrics, False for the ranking metrics."""
    base = metric.split("@", 1)[0]
    if metric in LOSSES or base in RATING_METRICS:
        return True
    if metric in RANKING_METRICS or ("@" in metric and base in CUTOFF_METRICS):
        return False
    raise ValueError(f"unknown metric {metric!r}; known: {', '.join([*LOSSES, *metric_names([10])])} (any @k)")


def higher_is_better(metric: str) -> bool:
    return not lower_is_better(metric)


def metric_order(name: str) -> tuple:
    """Sort key: rating metrics, whole-list ranking metrics, then ``@k`` metrics by name and k."""
    suffix = ""
    for end in ("_min", "_max"):
        if name.endswith(end):
            name, suffix = name.removesuffix(end), end
    base, at, k = name.partition("@")
    key = base + at
    position = METRIC_ORDER.index(key) if key in METRIC_ORDER else len(METRIC_ORDER)
    return (position, key, int(k) if k.isdigit() else 0, suffix)


def predicts_ratings(kind: str, params: Mapping | None = None) -> bool:
    """Whether a model of ``kind`` with ``params`` predicts ratings (``wals`` only with
    ``target: rating``), so that RMSE and MAE mean something for it."""
    return kind not in IMPLICIT_KINDS or (params or {}).get("target") == "rating"


#: Parameters whose value decides whether a model predicts ratings, and so its selection
#: metric: fixed per model, never a search axis.
METRIC_PARAMS = ("target",)


def rating_rows(trials: pd.DataFrame) -> pd.Series:
    """``predicts_ratings`` of each row of a trial table (by its ``kind`` and ``param.target``)."""
    target = trials[f"{PARAM}target"] if f"{PARAM}target" in trials else pd.Series(None, index=trials.index)
    return ~trials["kind"].isin(IMPLICIT_KINDS) | (target == "rating")


def selection_metric(kind: str, params: Mapping | None = None) -> str:
    """The validation metric a model kind (with these parameters) is tuned and stopped on by default."""
    return "RMSE" if predicts_ratings(kind, params) else "NDCG"


def model_metric(settings: Mapping, params: Mapping | None = None) -> str:
    """The validation metric a model is stopped and selected on: the one rule for a
    configured model (``settings``: kind, early_stopping, params) and for each of its
    trials (``params``: the trial's parameters, in place of the configured ones).

    The early-stopping metric when one is set, else ``selection_metric`` of the kind and
    parameters. A model's trials share it: the parameter that changes it (``target``)
    cannot be a search axis (the config validation refuses that).
    """
    return ((settings.get("early_stopping") or {}).get("metric")
            or selection_metric(settings["kind"], settings.get("params") if params is None else params))


# ----- parameters ---------------------------------------------------------------------------
def flatten_params(params: Mapping, prefix: str = PARAM) -> dict:
    """``{"regularization": {"user": a}}`` -> ``{"param.regularization.user": a}``."""
    flat = {}
    for name, value in params.items():
        if isinstance(value, dict):
            flat.update({f"{prefix}{name}.{half}": v for half, v in value.items()})
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def nest_params(flat: Mapping, prefix: str = "") -> dict:
    """The inverse of ``flatten_params``: ``{"regularization.user": a}`` -> ``{"regularization": {"user": a}}``.

    Names without ``prefix`` and missing values (None, ``pd.NA``, NaN) are left out; a dotted
    name must end in ``.user`` or ``.item``.
    """
    params: dict = {}
    for key in sorted(flat):
        value = flat[key]
        if not key.startswith(prefix) or missing(value):
            continue
        name = key.removeprefix(prefix)
        value = plain(value)
        head, dot, half = name.partition(".")
        if not dot:
            if name in params:
                raise ValueError(f"params.{name}: given both as a whole and per user/item")
            params[name] = value
            continue
        if half not in ("user", "item"):
            raise ValueError(f"params.{name}: a dotted name must end in .user or .item")
        if not isinstance(params.setdefault(head, {}), dict):
            raise ValueError(f"params.{head}: given both as a whole and as {name}")
        params[head][half] = value
    return params


# ----- records to tables --------------------------------------------------------------------
def trial_row(record: Mapping, fold: int) -> dict:
    """One row of the trial table from a trial's record."""
    row = {field: record.get(field) for field in RECORD_FIELDS}
    row["fold"] = fold
    row.update(flatten_params(record["params"]))
    row.update({f"{VALID}{k}": v for k, v in (record.get("validation") or {}).items()})
    row.update({f"{TEST}{k}": v for k, v in (record.get("test") or {}).items()})
    return row


def collect_trials(records: Iterable[tuple[int, Mapping]]) -> pd.DataFrame:
    """One row a trial x fold, from (fold, record) pairs."""
    rows = [trial_row(record, fold) for fold, record in records]
    return pd.DataFrame(rows).sort_values(["trial", "fold"], kind="stable").reset_index(drop=True)


def collect_histories(histories: Iterable[tuple[int, pd.DataFrame]]) -> pd.DataFrame:
    """Every epoch of every trial x fold, from (fold, history) pairs; trial and fold columns first."""
    frames = []
    for fold, frame in histories:
        frames.append(frame.copy())
        frames[-1].insert(1, "fold", fold)
    filled = [frame for frame in frames if not frame.empty] or frames[:1]  # failed trials have no epochs
    return pd.concat(filled, ignore_index=True).sort_values(["trial", "fold", "epoch"], kind="stable",
                                                            ignore_index=True)


def param_columns(trials: pd.DataFrame) -> list[str]:
    return [c for c in trials.columns if c.startswith(PARAM)]


def tuned_parameters(trials: pd.DataFrame) -> list[str]:
    """The ``param.`` columns that take more than one value among the trials."""
    return [c for c in param_columns(trials) if trials[c].nunique(dropna=True) > 1]


def trial_status(stop_reasons: pd.Series) -> str:
    """``failed`` or ``diverged`` when any fold was (the trial is then unusable), else ``ok``."""
    reasons = set(stop_reasons)
    for status in UNUSABLE:  # failed before diverged
        if status in reasons:
            return status
    return "ok"


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(missing)}; got {', '.join(map(str, frame.columns))}")


# ----- ranking ------------------------------------------------------------------------------
def trial_table(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row a trial: its parameters, status, folds, epochs, and validation ``metric``.

    ``mean``, ``min`` and ``max`` are over the folds; they are NaN for an unusable
    trial (any fold diverged or failed, or without a value of ``metric``). Rows are
    in trial-id order.
    """
    require_columns(trials, ("trial", "fold", "stop_reason", "epochs_completed"), "trials")
    column = f"{VALID}{metric}"
    values = trials[column].astype(float) if column in trials else pd.Series(np.nan, index=trials.index)
    values = values.where(~trials["stop_reason"].isin(UNUSABLE))
    groups = trials.assign(_value=values).groupby("trial", sort=True)
    table = pd.DataFrame({c: groups[c].first() for c in param_columns(trials)}, index=groups.size().index)
    table["status"] = groups["stop_reason"].agg(trial_status)
    table["stop_reason"] = groups["stop_reason"].agg(lambda s: s.value_counts().index[0])
    table["folds"] = groups.size()
    table["epochs_completed"] = groups["epochs_completed"].max()
    complete = (table["status"] == "ok") & (groups["_value"].count() == table["folds"])
    for name in ("mean", "min", "max"):
        table[name] = groups["_value"].agg(name).where(complete)
    return table.reset_index()


def usable(table: pd.DataFrame) -> pd.DataFrame:
    """The trials of ``trial_table`` that can be ranked: every fold usable, a finite mean."""
    return table[(table["status"] == "ok") & np.isfinite(table["mean"].astype(float))]


def rank(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The usable trials of ``trial_table``, best first (trial-id order on ties), with ``rank`` from 1."""
    ranked = usable(table).sort_values("mean", ascending=lower_is_better(metric), kind="stable")
    return ranked.assign(rank=np.arange(1, len(ranked) + 1))


def best_trial(table: pd.DataFrame, metric: str) -> str | None:
    """The trial ranked first; None if no trial is usable."""
    ranked = rank(table, metric)
    return None if ranked.empty else str(ranked["trial"].iloc[0])


def ranked_rows(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The trial x fold rows with their trial's ``rank`` (blank when unusable) and mean validation
    ``metric`` (column ``mean valid.<metric>``), by rank, then trial and fold."""
    table = trial_table(trials, metric)
    ranked = rank(table, metric)
    ranks = pd.Series(ranked["rank"].to_numpy(), index=ranked["trial"].to_numpy(), dtype="Int64")
    means = table.set_index("trial")["mean"]
    frame = trials.assign(**{"rank": trials["trial"].map(ranks).astype("Int64"),
                             f"mean {VALID}{metric}": trials["trial"].map(means).astype(float)})
    frame = frame.assign(_unranked=frame["rank"].isna()).sort_values(
        ["_unranked", "rank", "trial", "fold"], kind="stable").drop(columns="_unranked")
    return frame.reset_index(drop=True)


def proposal_order(trials: pd.DataFrame) -> pd.DataFrame:
    """One row a trial, indexed by ``trial``, with its ``round`` and ``proposed`` position,
    in the order the trials were proposed (``round``, then ``proposed``)."""
    return trials.groupby("trial")[["round", "proposed"]].first().sort_values(["round", "proposed"], kind="stable")


def search_progress(trials: pd.DataFrame, metric: str, histories: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row a training in the order the search ran them: its mean validation ``metric``
    (``value``, NaN when unusable), the best value so far (``best``), its training seconds and
    epochs summed over folds, with their running totals (``seconds``, ``total_seconds``,
    ``epochs``, ``total_epochs``), and its ``round``.

    A training is a trial, in proposal order (``round``, ``proposed``); in a halving search
    (``histories`` with the ``round`` that trained each epoch) it is a trial in a rung, valued
    by its best epoch up to that rung.
    """
    require_columns(trials, ("trial", "round", "proposed", "train_seconds", "epochs_completed"), "trials")
    if histories is not None and "round" in histories:
        frame = _rung_trainings(trials, histories, metric)
    else:
        table = trial_table(trials, metric).set_index("trial")
        per_trial = trials.groupby("trial")
        frame = proposal_order(trials).assign(
            value=table["mean"].astype(float), seconds=per_trial["train_seconds"].sum().astype(float),
            epochs=per_trial["epochs_completed"].sum().astype("int64")).reset_index()
    best = frame["value"].cummin() if lower_is_better(metric) else frame["value"].cummax()
    return frame.assign(best=best.ffill(), total_seconds=frame["seconds"].cumsum(),
                        total_epochs=frame["epochs"].cumsum(), trials=np.arange(1, len(frame) + 1))


def _rung_trainings(trials: pd.DataFrame, histories: pd.DataFrame, metric: str) -> pd.DataFrame:
    """A halving search's trainings (a trial in a rung), by round then proposal: the epochs and
    seconds the rung trained, and the trial's best mean over folds of ``metric`` up to the rung
    (over the epochs every fold reached)."""
    folds = trials.groupby("trial")["fold"].nunique()
    means = histories.groupby(["trial", "epoch"])[metric].agg(["mean", "count"]).reset_index()
    means = means[means["count"] == means["trial"].map(folds)]
    so_far = means.groupby("trial")["mean"].cummin() if lower_is_better(metric) else means.groupby("trial")["mean"].cummax()
    best = means[["trial", "epoch"]].assign(value=so_far.astype(float)).sort_values("epoch", kind="stable")
    rungs = histories.groupby(["round", "trial"], sort=False).agg(
        epoch=("epoch", "max"), seconds=("seconds", "sum"), epochs=("epoch", "size")).reset_index()
    frame = pd.merge_asof(rungs.sort_values("epoch", kind="stable"), best, on="epoch", by="trial")
    frame = frame.assign(proposed=frame["trial"].map(proposal_order(trials)["proposed"]).astype("int64"),
                         round=frame["round"].astype("int64"), seconds=frame["seconds"].astype(float),
                         epochs=frame["epochs"].astype("int64"))
    columns = ["trial", "round", "proposed", "value", "seconds", "epochs"]
    return frame[columns].sort_values(["round", "proposed"], kind="stable", ignore_index=True)


@dataclass
class Best:
    """The best trial of a model (``best.json``), in the shape of a tuning service's final
    result: the trial, its params, its mean validation and test metrics over folds with
    their min and max, and its fit cost.

    Where no trial is usable, the trial's fields are ``None`` (``validation`` and ``test``
    empty) and ``reasons`` counts the stop reasons of the trial x fold runs (why none is);
    it is left out of the file for a usable trial.
    """

    model: str
    kind: str
    trial: str | None
    selection_metric: str
    objective: float | None
    trials: int
    usable_trials: int
    folds: int | None
    params: dict | None
    epochs_completed: int | None
    stop_reason: str | None
    train_seconds: float | None
    cpu_seconds: float | None
    validation: dict
    test: dict
    reasons: dict | None = None

    def to_json(self) -> dict:
        """The fields as ``best.json`` holds them (``reasons`` only when no trial is usable)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.reasons is None:
            del out["reasons"]
        return out


def select_best(trials: pd.DataFrame, metric: str) -> Best:
    """The trial ranked first by its mean validation ``metric`` over folds (see ``Best``)."""
    ranked = rank(trial_table(trials, metric), metric)
    first = trials.iloc[0]
    count = int(trials["trial"].nunique())
    if ranked.empty:
        return Best(model=first["model"], kind=first["kind"], trial=None, selection_metric=metric, objective=None,
                    trials=count, usable_trials=0, folds=None, params=None, epochs_completed=None,
                    stop_reason=None, train_seconds=None, cpu_seconds=None, validation={}, test={},
                    reasons=trials["stop_reason"].value_counts().to_dict())
    best = ranked["trial"].iloc[0]
    rows = trials[trials["trial"] == best]
    first = rows.iloc[0]
    return Best(
        model=first["model"], kind=first["kind"], trial=best, selection_metric=metric,
        objective=float(ranked["mean"].iloc[0]), trials=count, usable_trials=int(len(ranked)),
        folds=int(len(rows)), params=nest_params(first.to_dict(), prefix=PARAM),
        epochs_completed=int(rows["epochs_completed"].max()),
        stop_reason=str(rows["stop_reason"].value_counts().index[0]),
        train_seconds=float(rows["train_seconds"].mean()), cpu_seconds=float(rows["cpu_seconds"].mean()),
        validation=_summary(rows, VALID), test=_summary(rows, TEST),
    )


def best_row(best: Mapping) -> dict:
    """``best.json`` (``Best.to_json()``) as one flat row (``best.csv``): its scalars, then ``param.*``,
    ``valid.*`` and ``test.*``; other mappings (a failed model's stop reasons) as
    ``reasons.<reason>``."""
    row = {key: value for key, value in best.items() if not isinstance(value, Mapping)}
    row.update(flatten_params(best.get("params") or {}))
    for name, prefix in (("validation", VALID), ("test", TEST)):
        values = best.get(name) or {}
        row.update({f"{prefix}{metric}": values[metric] for metric in sorted(values, key=metric_order)})
    row.update({f"reasons.{reason}": count for reason, count in (best.get("reasons") or {}).items()})
    return row


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


# ----- epochs --------------------------------------------------------------------------------
def completion_summary(trials: pd.DataFrame) -> pd.DataFrame:
    """Epochs completed by stop reason: one row a reason (as they appear, most runs first), then ``all``.

    Columns: ``stop_reason``, ``runs`` (trial x fold rows), ``mean`` and ``median`` epochs completed.
    """
    require_columns(trials, ("stop_reason", "epochs_completed"), "trials")
    epochs = trials["epochs_completed"].fillna(0).astype(float)
    groups = epochs.groupby(trials["stop_reason"].astype(str), sort=False)
    frame = pd.DataFrame({"runs": groups.size(), "mean": groups.mean(), "median": groups.median()})
    frame = frame.sort_values("runs", ascending=False, kind="stable").rename_axis("stop_reason").reset_index()
    total = {"stop_reason": "all", "runs": len(epochs), "mean": epochs.mean(), "median": epochs.median()}
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


def loss_parts(history: pd.DataFrame) -> list[str]:
    """The history's ``loss_*`` columns: the parts the training loss is the sum of, where recorded."""
    return [c for c in history.columns if str(c).startswith(LOSS_PART)]


def fold_band(history: pd.DataFrame, trial: str, column: str) -> pd.DataFrame:
    """One trial's ``column`` by epoch across its folds: ``epoch``, ``mean``, ``min``, ``max`` and ``folds``
    (how many folds reached the epoch with a value)."""
    require_columns(history, ("trial", "fold", "epoch", column), "history")
    rows = history[(history["trial"] == trial) & history[column].notna()]
    groups = rows.groupby("epoch", sort=True)[column]
    frame = pd.DataFrame({"mean": groups.mean(), "min": groups.min(), "max": groups.max(), "folds": groups.count()})
    return frame.reset_index()


# ----- comparison ---------------------------------------------------------------------------
COMPARED = ("model", "kind", "trial", "selection_metric", "objective", "trials", "usable_trials",
            "epochs_completed", "train_seconds", "cpu_seconds")


def compare(best_dicts: Iterable[Mapping]) -> pd.DataFrame:
    """One row a model from its ``best.json``: the best trial, its fit time and test metrics.

    Columns: model, kind, trial, selection_metric, objective (the mean validation
    metric it was selected on), trials, usable_trials, epochs_completed,
    train_seconds, cpu_seconds, rating_model (``predicts_ratings``), then ``test.<metric>`` (mean over folds, with
    ``_min`` and ``_max`` where there are several folds). A model without a usable
    trial has trial None and NaN metrics.
    """
    rows = []
    for best in best_dicts:
        row = {key: best.get(key) for key in COMPARED}
        row["rating_model"] = predicts_ratings(best.get("kind"), best.get("params"))
        test = best.get("test") or {}
        row.update({f"{TEST}{name}": test[name] for name in sorted(test, key=metric_order)})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise ValueError("compare: no best.json given; need at least one model")
    metrics = sorted((c for c in frame.columns if c.startswith(TEST)), key=lambda c: metric_order(c[len(TEST):]))
    numeric = metrics + ["objective", "train_seconds", "cpu_seconds"]
    frame[numeric] = frame[numeric].astype(float)
    return frame[[c for c in frame.columns if not c.startswith(TEST)] + metrics]
