"""Adaptive search: Optuna's samplers propose each round of trials from the earlier rounds.

Proposals are reproducible by construction. A round is proposed from the finished
trials of the earlier rounds only, replayed into a fresh in-memory study in the order
they were proposed (round, then position), never in the order they finished or their
files are listed; the sampler's seed is derived from the search seed and the round.
The same config, seed and results therefore give the same proposals on one core,
many cores or a cluster.

The earlier trials become Optuna trials through ``studies.frozen_trials``, the one
converter (states, values, distributions, intermediate values), as in the Optuna
storage ``optuna.db`` and the importance figure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import optuna
import pandas as pd
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial

from mfsweep.search import (
    ADAPTIVE_METHODS,
    SearchError,
    is_distribution,
    round_value,
    trial_id,
)
from mfsweep.studies import direction, distribution_of, fits, frozen_trials, new_study
from mfsweep.trials import PARAM, nest_params, proposal_order

#: How many asks a round may take to find its trials when the sampler repeats itself.
ASKS_PER_TRIAL = 20


# ----- search space -------------------------------------------------------------------------
def distributions(space: Mapping) -> dict[str, BaseDistribution]:
    """Optuna distributions of a model's ``params``: the searched axes only (a scalar is fixed);
    names stay dotted (``regularization.user``)."""
    return {name: distribution_of(space[name]) for name in sorted(space)
            if isinstance(space[name], list) or is_distribution(space[name])}


def fixed_params(space: Mapping) -> dict:
    """The axes of ``params`` that are not searched: scalars."""
    return {name: value for name, value in space.items() if not isinstance(value, list) and not is_distribution(value)}


# ----- results to Optuna trials -------------------------------------------------------------
def study_trials(trials: pd.DataFrame, histories: pd.DataFrame, metric: str, space: Mapping) -> list[FrozenTrial]:
    """Every trial of a sweep as an Optuna trial (``studies.frozen_trials``) over the searched
    axes of ``space``, in proposal order (``round``, then ``proposed``).

    ``trials`` has one row a trial x fold (``trial``, ``fold``, ``stop_reason``,
    ``round``, ``proposed``, ``param.*``, ``valid.<metric>``); ``histories`` one row an
    epoch of a trial x fold. Every trial must hold a value of each searched axis inside
    the space, so the samplers read the space they ask from.
    """
    dists = distributions(space)
    order = proposal_order(trials)
    if order.duplicated().any():
        raise SearchError("trials: two trials share a round and a proposal position; the round files disagree")
    out = frozen_trials(trials, metric, list(dists), space, histories, order.index)
    for trial in out:
        name = trial.user_attrs["trial"]
        for axis, dist in dists.items():
            if axis not in trial.params:
                raise SearchError(f"trial {name}: no value of searched parameter {axis!r} (column {PARAM}{axis})")
            if not fits(dist, trial.params[axis]):
                raise SearchError(f"trial {name}: {axis}={trial.params[axis]!r} lies outside {dist}; its parameters "
                                  "no longer fit the search space (a changed space needs fresh results: remove "
                                  "the model's results/search folder)")
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
