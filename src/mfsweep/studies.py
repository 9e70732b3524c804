"""Optuna studies built from a sweep's trials, whatever search made them (grid, random
or adaptive), and what is read from them: the importance of each tuned parameter.

A study holds one Optuna trial per mfsweep trial: its tuned parameters, with the
distributions of the model's search space (``settings["params"]``), and its mean
validation metric over folds, its state and value decided by ``adaptive.trial_state``
(as in the Optuna storage and the samplers' replay): a pruned trial is ``PRUNED`` with
its value; trials that diverged or failed are failed Optuna trials, so the study counts
them but no evaluator reads them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

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

from mfsweep.adaptive import direction, distribution_of, new_study, trial_state
from mfsweep.values import is_number, plain
from mfsweep.search import is_distribution, is_log_axis, space_entry
from mfsweep.trials import PARAM, trial_table, tuned_parameters, usable

#: The fewest usable trials an importance is computed from.
MIN_TRIALS = 4


class ImportanceError(ValueError):
    """Importance cannot be computed from these trials; the message says why."""


def distribution(name: str, values: pd.Series, space: Mapping | None = None) -> BaseDistribution:
    """The distribution of parameter ``name`` (without ``param.``), from the search space.

    ``loguniform`` -> log FloatDistribution, ``loguniform_int`` -> log IntDistribution,
    ``uniform`` -> FloatDistribution, a list (a grid axis or a choice) -> Categorical
    over the list. Without a space entry: numbers -> a range over the values taken
    (log when they are > 0 and span 10x or more), other values -> Categorical. Bounds
    are widened to the values taken, so a value rounded at sampling always fits.
    """
    entry = space_entry(space, name)
    taken = [plain(v) for v in values.dropna().unique()]
    if is_distribution(entry) or isinstance(entry, list):
        return _widened(distribution_of([plain(v) for v in entry] if isinstance(entry, list) else entry), taken)
    if taken and all(is_number(v) for v in taken):
        integer = all(isinstance(v, int) for v in taken)
        return _range(integer, min(taken), max(taken), is_log_axis(name, taken))
    return CategoricalDistribution(sorted(taken, key=str))


def _widened(dist: BaseDistribution, taken: list) -> BaseDistribution:
    """``dist`` grown to hold every value ``taken`` (a value rounded at sampling, a grid point added later)."""
    if isinstance(dist, CategoricalDistribution):
        return CategoricalDistribution(list(dist.choices) + [v for v in taken if v not in dist.choices])
    return _range(isinstance(dist, IntDistribution), min([dist.low, *taken]), max([dist.high, *taken]), dist.log)


def _range(integer: bool, low, high, log: bool) -> BaseDistribution:
    if integer:
        return IntDistribution(int(math.floor(low)), int(math.ceil(high)), log=log)
    return FloatDistribution(float(low), float(high), log=log)


def study_from_trials(trials: pd.DataFrame, metric: str, space: Mapping | None = None,
                      parameters: list[str] | None = None) -> optuna.Study:
    """An in-memory Optuna study of ``trials`` (one row a trial x fold), valued by mean validation ``metric``.

    ``parameters`` are the ``param.`` columns to include (default: the tuned ones).
    Each Optuna trial carries the mfsweep trial id as user attribute ``trial``.
    """
    table = trial_table(trials, metric)
    columns = tuned_parameters(trials) if parameters is None else list(parameters)
    distributions = {c.removeprefix(PARAM): distribution(c.removeprefix(PARAM), table[c], space) for c in columns}
    study = new_study(direction(metric))
    reasons = trials.groupby("trial")["stop_reason"]
    for _, row in table.iterrows():
        params = {c.removeprefix(PARAM): plain(row[c]) for c in columns if pd.notna(row[c])}
        state, value = trial_state(reasons.get_group(row["trial"]), row["mean"])
        study.add_trial(create_trial(
            state=state, value=value, params=params, distributions={name: distributions[name] for name in params},
            user_attrs={"trial": str(row["trial"]), "status": str(row["status"])}))
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
