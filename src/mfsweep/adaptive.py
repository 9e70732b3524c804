"""Adaptive search: Optuna's samplers propose each round of trials from the earlier rounds.

Proposals are reproducible by construction. A round is proposed from the finished
trials of the earlier rounds only, replayed into a fresh in-memory study in the order
they were proposed (round, then position), never in the order they finished or their
files are listed; the sampler's seed is derived from the search seed and the round.
The same config, seed and results therefore give the same proposals on one core,
many cores or a cluster.

How a trial becomes an Optuna trial (``trial_state``, the one decision for the samplers,
the Optuna storage ``optuna.db`` and the importance figure): ``COMPLETE`` with its
selection value (the mean over folds of the validation metric at the kept epoch);
``PRUNED`` when any fold was pruned, as Optuna means it (stopped early), with the same
selection value, the one ``select_best`` ranks it by (so the dashboard shows it), and
its per-epoch values as intermediate values; ``FAIL`` when any fold failed or
diverged, or it has no value. The samplers never read a pruned trial's value: TPE
ranks pruned trials by their last intermediate value, GPSampler reads complete trials
only; so the value changes no proposal.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState, create_trial

from mfsweep.values import plain
from mfsweep.search import (
    ADAPTIVE_METHODS,
    SearchError,
    is_distribution,
    round_value,
    trial_id,
)
from mfsweep.trials import PARAM, UNUSABLE, lower_is_better, nest_params, proposal_order, trial_table

#: How many asks a round may take to find its trials when the sampler repeats itself.
ASKS_PER_TRIAL = 20


# ----- search space -------------------------------------------------------------------------
def distributions(space: Mapping) -> dict[str, BaseDistribution]:
    """Optuna distributions of a model's ``params``: the searched axes only (a scalar is fixed);
    names stay dotted (``regularization.user``)."""
    return {name: distribution_of(space[name]) for name in sorted(space)
            if isinstance(space[name], list) or is_distribution(space[name])}


def distribution_of(entry) -> BaseDistribution:
    """The Optuna distribution of one searched axis: ``loguniform`` -> float on a log scale,
    ``loguniform_int`` -> int on a log scale, ``uniform`` -> float, a list -> categorical."""
    if isinstance(entry, list):
        return CategoricalDistribution(entry)
    (kind, (low, high)), = entry.items()
    if kind == "loguniform_int":
        return IntDistribution(math.ceil(low), math.floor(high), log=True)
    return FloatDistribution(float(low), float(high), log=kind == "loguniform")


def fixed_params(space: Mapping) -> dict:
    """The axes of ``params`` that are not searched: scalars."""
    return {name: value for name, value in space.items() if not isinstance(value, list) and not is_distribution(value)}


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


# ----- results to Optuna trials -------------------------------------------------------------
def study_trials(trials: pd.DataFrame, histories: pd.DataFrame, metric: str, space: Mapping) -> list[FrozenTrial]:
    """Every trial of a sweep as an Optuna trial, in proposal order (``round``, then ``proposed``).

    ``trials`` has one row a trial x fold (``trial``, ``fold``, ``stop_reason``,
    ``round``, ``proposed``, ``param.*``, ``valid.<metric>``); ``histories`` one row an
    epoch of a trial x fold. Intermediate values are the mean over folds of ``metric``
    at each epoch every fold of the trial reached.
    """
    dists = distributions(space)
    table = trial_table(trials, metric).set_index("trial")
    order = proposal_order(trials)
    if order.duplicated().any():
        raise SearchError("trials: two trials share a round and a proposal position; the round files disagree")
    steps = _intermediate_values(histories, trials, metric)
    out = []
    for trial, (round_index, proposed) in order.iterrows():
        rows = trials[trials["trial"] == trial]
        state, value = trial_state(rows["stop_reason"], table.loc[trial, "mean"])
        try:
            out.append(create_trial(
                state=state, value=value, params=_params(rows.iloc[0], dists, trial), distributions=dists,
                intermediate_values=steps.get(trial, {}),
                user_attrs={"trial": trial, "round": int(round_index), "proposed": int(proposed)},
            ))
        except ValueError as error:
            raise SearchError(f"trial {trial}: {error}; its parameters no longer fit the search space "
                              "(a changed space needs fresh results: remove the model's results/search folder)") from None
    return out


def trial_state(stop_reasons: pd.Series, mean: float) -> tuple[TrialState, float | None]:
    """The Optuna state and value of a trial from its folds' stop reasons and its mean
    validation value over folds (NaN when unusable): see the module's docstring."""
    reasons = set(stop_reasons)
    if reasons & set(UNUSABLE) or not np.isfinite(mean):
        return TrialState.FAIL, None
    return (TrialState.PRUNED if "pruned" in reasons else TrialState.COMPLETE), float(mean)


def _params(row: pd.Series, dists: Mapping[str, BaseDistribution], trial: str) -> dict:
    params = {}
    for name, dist in dists.items():
        column = f"{PARAM}{name}"
        if column not in row or pd.isna(row[column]):
            raise SearchError(f"trial {trial}: no value of searched parameter {name!r} (column {column})")
        value = plain(row[column])
        if isinstance(dist, IntDistribution):
            value = int(value)
        elif isinstance(dist, FloatDistribution):
            value = float(value)
        else:
            value = next((choice for choice in dist.choices if choice == value), value)
        params[name] = value
    return params


def _intermediate_values(histories: pd.DataFrame, trials: pd.DataFrame, metric: str) -> dict[str, dict[int, float]]:
    if histories.empty or metric not in histories:
        return {}
    folds = trials.groupby("trial")["fold"].nunique()
    grouped = histories.dropna(subset=[metric]).groupby(["trial", "epoch"])[metric].agg(["mean", "count"])
    out: dict[str, dict[int, float]] = {}
    for (trial, epoch), (mean, count) in grouped.iterrows():
        if trial in folds and count == folds[trial] and math.isfinite(mean):
            out.setdefault(trial, {})[int(epoch)] = float(mean)
    return out


# ----- proposals ----------------------------------------------------------------------------
def round_seed(seed: int, round_index: int) -> int:
    """The sampler seed of a round: a hash of the search seed and the round, below 2**32."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{round_index}".encode()).digest()[:4], "big")


def sampler(method: str, seed: int, round_index: int, options: Mapping | None = None) -> optuna.samplers.BaseSampler:
    """The sampler of a round; ``options`` are keyword arguments of ``TPESampler`` (the search's
    ``sampler_options``, tpe only); none gives Optuna's defaults."""
    options = dict(options or {})
    if method == "tpe":
        return optuna.samplers.TPESampler(seed=round_seed(seed, round_index), **options)
    if options:
        raise SearchError(f"search.sampler_options: method {method!r} takes none (only tpe does); got {sorted(options)}")
    if method == "gp":
        return optuna.samplers.GPSampler(seed=round_seed(seed, round_index))  # needs torch and scipy
    raise SearchError(f"search.method: {method!r} does not propose; adaptive methods: {', '.join(ADAPTIVE_METHODS)}")


def propose(space: Mapping, history: list[FrozenTrial], method: str, seed: int, size: int, round_index: int,
            metric: str, options: Mapping | None = None) -> list[dict]:
    """The parameters (nested) of the next ``size`` trials, from the finished ``history``.

    ``history`` is told to a new in-memory study in the order given (``study_trials``
    gives proposal order). Float values are rounded to four significant digits inside
    their bounds, so trial ids stay short and stable; a proposal equal to an earlier
    trial is left unevaluated and another one asked for. ``options``: the sampler's (``sampler``).
    """
    dists, fixed = distributions(space), fixed_params(space)
    study = new_study(direction(metric), sampler=sampler(method, seed, round_index, options))
    study.add_trials(history)
    seen = {trial_id(nest_params({**fixed, **t.params})) for t in history}
    proposals: list[dict] = []
    for _ in range(ASKS_PER_TRIAL * size):
        if len(proposals) == size or not dists:
            break
        asked = study.ask(dists)
        params = nest_params({**fixed, **{name: _rounded(value, dists[name]) for name, value in asked.params.items()}})
        if trial_id(params) not in seen:
            seen.add(trial_id(params))
            proposals.append(params)
    if not dists and not history:
        proposals.append(nest_params(fixed))
    return proposals


def _rounded(value, dist: BaseDistribution):
    if isinstance(dist, FloatDistribution):
        return min(max(round_value(float(value)), dist.low), dist.high)
    if isinstance(dist, IntDistribution):
        return int(value)
    return value
