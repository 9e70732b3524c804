"""Optuna trials and studies built from a sweep's trials, whatever search made them (grid,
random or adaptive), and what is read from them: the importance of each tuned parameter.

``frozen_trials`` is the one converter from a sweep's results to Optuna trials: the
samplers' replay (``adaptive.study_trials``), the Optuna storage ``optuna.db`` and the
importance all read what it gives. One Optuna trial per mfsweep trial, with:

- its parameters, each with the distribution ``distribution`` decides: the model's
  search space (``settings["params"]``) where it has the parameter, else inferred from
  the values taken, widened in both cases to hold every value taken;
- its state and value (``trial_state``): ``COMPLETE`` with its selection value (the mean
  over folds of the validation metric at the kept epoch); ``PRUNED`` when any fold was
  pruned, as Optuna means it (stopped early), with the same selection value, the one
  ``select_best`` ranks it by (so the dashboard shows it); ``FAIL`` when any fold failed
  or diverged, or it has no value, so a study counts it but no evaluator reads it. The
  samplers never read a pruned trial's value: TPE ranks pruned trials by their last
  intermediate value, GPSampler reads complete trials only; so the value changes no
  proposal;
- its intermediate values (with histories): the mean over folds of the metric at each
  epoch every fold of the trial reached;
- user attributes: ``trial`` (the mfsweep trial id), and ``round`` and ``proposed`` where
  the trials have them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.importance import FanovaImportanceEvaluator, get_param_importances
from optuna.trial import FrozenTrial, TrialState, create_trial
from scipy.stats import spearmanr

from mfsweep.search import is_distribution, is_log_axis, space_entry
from mfsweep.trials import PARAM, UNUSABLE, lower_is_better, trial_table, tuned_parameters, usable
from mfsweep.values import is_number, plain

#: The fewest usable trials an importance is computed from.
MIN_TRIALS = 4
#: The columns of a trial table that say when a trial was proposed, kept as user attributes.
ORDER_ATTRS = ("round", "proposed")


class ImportanceError(ValueError):
    """Importance cannot be computed from these trials; the message says why."""


# ----- studies ------------------------------------------------------------------------------
def direction(metric: str) -> str:
    return "minimize" if lower_is_better(metric) else "maximize"


def new_study(direction_name: str, **options) -> optuna.Study:
    """``optuna.create_study`` without its "a new study created" line: Optuna's log level is
    raised for the call only, and restored."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.create_study(direction=direction_name, **options)
    finally:
        optuna.logging.set_verbosity(verbosity)


# ----- distributions ------------------------------------------------------------------------
def distribution_of(entry) -> BaseDistribution:
    """The Optuna distribution of one searched axis: ``loguniform`` -> float on a log scale,
    ``loguniform_int`` -> int on a log scale, ``uniform`` -> float, a list -> categorical."""
    if isinstance(entry, list):
        return CategoricalDistribution(entry)
    (kind, (low, high)), = entry.items()
    if kind == "loguniform_int":
        return IntDistribution(math.ceil(low), math.floor(high), log=True)
    return FloatDistribution(float(low), float(high), log=kind == "loguniform")


def distribution(name: str, values: pd.Series, space: Mapping | None = None) -> BaseDistribution:
    """The distribution of parameter ``name`` (without ``param.``), from the search space.

    ``loguniform`` -> log FloatDistribution, ``loguniform_int`` -> log IntDistribution,
    ``uniform`` -> FloatDistribution, a list (a grid axis or a choice) -> Categorical
    over the list. Without a space entry: numbers -> a range over the values taken
    (log when they are > 0 and span 10x or more), other values -> Categorical. Bounds
    are widened to the values taken, so a value rounded at sampling always fits; when
    every value fits, the space's distribution is returned unchanged.
    """
    entry = space_entry(space, name)
    taken = [plain(v) for v in values.dropna().unique()]
    if is_distribution(entry) or isinstance(entry, list):
        return _widened(distribution_of([plain(v) for v in entry] if isinstance(entry, list) else entry), taken)
    if taken and all(is_number(v) for v in taken):
        integer = all(isinstance(v, int) for v in taken)
        return _range(integer, min(taken), max(taken), is_log_axis(name, taken))
    return CategoricalDistribution(sorted(taken, key=str))


def fits(dist: BaseDistribution, value) -> bool:
    """Whether ``value`` is one of a categorical's choices, or lies within a range's bounds."""
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    return dist.low <= value <= dist.high


def _widened(dist: BaseDistribution, taken: list) -> BaseDistribution:
    """``dist`` grown to hold every value ``taken`` (a value rounded at sampling, a grid point added later)."""
    if isinstance(dist, CategoricalDistribution):
        return CategoricalDistribution(list(dist.choices) + [v for v in taken if v not in dist.choices])
    return _range(isinstance(dist, IntDistribution), min([dist.low, *taken]), max([dist.high, *taken]), dist.log)


def _range(integer: bool, low, high, log: bool) -> BaseDistribution:
    if integer:
        return IntDistribution(int(math.floor(low)), int(math.ceil(high)), log=log)
    return FloatDistribution(float(low), float(high), log=log)


# ----- results to Optuna trials -------------------------------------------------------------
def frozen_trials(trials: pd.DataFrame, metric: str, parameters: Iterable[str], space: Mapping | None = None,
                  histories: pd.DataFrame | None = None, order: Iterable[str] | None = None) -> list[FrozenTrial]:
    """One Optuna trial per trial of ``trials`` (one row a trial x fold), valued by mean
    validation ``metric``: see the module's docstring.

    ``parameters`` are the parameter names (without ``param.``) to include, a trial
    holding those it has a value of; ``histories`` (one row an epoch of a trial x fold)
    give the intermediate values; ``order`` is the trial ids in the order to give
    (default: trial-id order).
    """
    table = trial_table(trials, metric).set_index("trial")
    empty = pd.Series(dtype=object)
    dists = {name: distribution(name, table.get(f"{PARAM}{name}", empty), space) for name in parameters}
    steps = intermediate_values(histories, trials, metric) if histories is not None else {}
    reasons = trials.groupby("trial")["stop_reason"]
    attrs = trials.groupby("trial")[[c for c in ORDER_ATTRS if c in trials]].first()
    out = []
    for trial in table.index if order is None else order:
        row = table.loc[trial]
        params = {name: _value(row[f"{PARAM}{name}"], dist) for name, dist in dists.items()
                  if f"{PARAM}{name}" in row and pd.notna(row[f"{PARAM}{name}"])}
        state, value = trial_state(reasons.get_group(trial), row["mean"])
        out.append(create_trial(
            state=state, value=value, params=params, distributions={name: dists[name] for name in params},
            intermediate_values=steps.get(trial, {}),
            user_attrs={"trial": str(trial), **{c: int(v) for c, v in attrs.loc[trial].items()}}))
    return out


def trial_state(stop_reasons: pd.Series, mean: float) -> tuple[TrialState, float | None]:
    """The Optuna state and value of a trial from its folds' stop reasons and its mean
    validation value over folds (NaN when unusable): see the module's docstring."""
    reasons = set(stop_reasons)
    if reasons & set(UNUSABLE) or not np.isfinite(mean):
        return TrialState.FAIL, None
    return (TrialState.PRUNED if "pruned" in reasons else TrialState.COMPLETE), float(mean)


def _value(value, dist: BaseDistribution):
    """A parameter's value as its distribution holds it: an int, a float, or the equal choice."""
    value = plain(value)
    if isinstance(dist, IntDistribution):
        return int(value)
    if isinstance(dist, FloatDistribution):
        return float(value)
    return next((choice for choice in dist.choices if choice == value), value)


def intermediate_values(histories: pd.DataFrame, trials: pd.DataFrame, metric: str) -> dict[str, dict[int, float]]:
    """trial -> epoch -> mean over folds of ``metric``, at each epoch every fold of the trial reached."""
    if histories.empty or metric not in histories:
        return {}
    folds = trials.groupby("trial")["fold"].nunique()
    grouped = histories.dropna(subset=[metric]).groupby(["trial", "epoch"])[metric].agg(["mean", "count"])
    out: dict[str, dict[int, float]] = {}
    for (trial, epoch), (mean, count) in grouped.iterrows():
        if trial in folds and count == folds[trial] and math.isfinite(mean):
            out.setdefault(trial, {})[int(epoch)] = float(mean)
    return out


def study_from_trials(trials: pd.DataFrame, metric: str, space: Mapping | None = None,
                      parameters: list[str] | None = None) -> optuna.Study:
    """An in-memory Optuna study of ``trials`` (``frozen_trials``, in trial-id order).

    ``parameters`` are the ``param.`` columns to include (default: the tuned ones).
    """
    columns = tuned_parameters(trials) if parameters is None else list(parameters)
    study = new_study(direction(metric))
    study.add_trials(frozen_trials(trials, metric, [c.removeprefix(PARAM) for c in columns], space))
    return study


def ranked_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's trials with a value (complete and pruned ones) as ``COMPLETE``, in order.

    What the importance is computed from: Optuna's evaluators read complete trials
    only, and the importance explains the value every trial is ranked by, pruned ones
    included (they are the worse ones: leaving them out would cut the range explained).
    """
    return [create_trial(state=TrialState.COMPLETE, value=t.value, params=t.params, distributions=t.distributions,
                         user_attrs=t.user_attrs) for t in study.trials if t.value is not None]


def importance_table(trials: pd.DataFrame, metric: str, space: Mapping | None = None, seed: int = 0) -> pd.DataFrame:
    """fANOVA importance (Optuna's evaluator, ``seed``) and Spearman correlation of each tuned parameter.

    One row a tuned parameter, most important first: ``parameter``, ``importance``
    (fractions summing to 1), ``spearman`` (rank correlation of the parameter with the
    mean validation ``metric`` over the usable trials; NaN for a parameter whose
    values are not numbers) and ``p_value``. Raises ``ImportanceError`` with fewer than
    two tuned parameters, fewer than ``MIN_TRIALS`` usable trials, or a metric that
    does not vary.
    """
    columns = tuned_parameters(trials)
    if len(columns) < 2:
        names = ", ".join(c.removeprefix(PARAM) for c in columns) or "none"
        raise ImportanceError(f"Importance needs at least two tuned parameters; tuned here: {names}.")
    ok = usable(trial_table(trials, metric))
    if len(ok) < MIN_TRIALS:
        raise ImportanceError(f"Importance needs at least {MIN_TRIALS} usable trials with a validation {metric}; "
                              f"there {'is' if len(ok) == 1 else 'are'} {len(ok)}.")
    if ok["mean"].nunique() < 2:
        raise ImportanceError(f"Every usable trial has the same validation {metric}: no parameter explains it.")
    study = study_from_trials(trials, metric, space, columns)
    ranked = new_study(direction(metric))
    ranked.add_trials(ranked_trials(study))
    importance = get_param_importances(ranked, evaluator=FanovaImportanceEvaluator(seed=seed), normalize=True)
    rows = []
    for column in columns:
        name = column.removeprefix(PARAM)
        rho, p_value = spearman(ok[column], ok["mean"])
        rows.append({"parameter": name, "importance": float(importance.get(name, 0.0)), "spearman": rho,
                     "p_value": p_value})
    frame = pd.DataFrame(rows)
    return frame.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def spearman(values: pd.Series, metric: pd.Series) -> tuple[float, float]:
    """Spearman's rho and its p-value; NaN for values that are not numbers or do not vary."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any() or numbers.nunique() < 2:
        return math.nan, math.nan
    result = spearmanr(numbers.astype(float), metric.astype(float))
    return float(result.statistic), float(result.pvalue)
