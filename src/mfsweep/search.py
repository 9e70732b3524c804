"""Search spaces to trials: grid and seeded random expansion, stable trial ids.

A model's ``params`` maps a parameter name to a scalar (fixed), a list (a grid
axis, or a choice under random search) or a distribution mapping
(``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}``, ``{loguniform_int: [lo, hi]}``,
random and adaptive search). Dotted names (``regularization.user``) set one half of a
user/item parameter. Adaptive methods (``tpe``, ``gp``) propose their trials in rounds
at run time (mfsweep.adaptive); here their space is only checked.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Mapping

import numpy as np

from mfsweep.models import create
from mfsweep.trials import METRIC_PARAMS, nest_params

DISTRIBUTIONS = ("uniform", "loguniform", "loguniform_int")
#: Search methods whose trials are known from the config alone.
STATIC_METHODS = ("grid", "random")
#: Search methods that propose each round from the results of the earlier ones.
ADAPTIVE_METHODS = ("tpe", "gp")


class SearchError(ValueError):
    """The search space is malformed; the message names the parameter."""


def trial_id(params: dict) -> str:
    """A short stable id: the first 10 hex digits of the canonical parameters' SHA-1."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(canonical.encode()).hexdigest()[:10]


def expand(model: dict) -> dict[str, dict]:
    """Trials of one model config: ``{trial_id: params}``, in a stable order.

    Every trial's parameters are checked by building the model, so a bad value
    (``embedding_size: 0``, a negative regularization) fails here, before any job.
    An adaptive method has no trials before it runs: its space is checked on a
    random sample of the same size, and ``{}`` returned.
    """
    space = model.get("params") or {}
    search = model.get("search") or {}
    method = search.get("method", "grid")
    for name, value in space.items():
        _check_axis(name, value, method)
    if method == "grid":
        points = _grid_points(space)
    else:
        points = _random_points(space, int(search.get("trials", 20)), int(search.get("seed", 1)))
    trials: dict[str, dict] = {}
    for point in points:
        try:
            params = nest_params(point)
            create(model["kind"], **{**params, "epochs": int(model.get("max_epochs", 30))})
        except ValueError as error:  # a ParameterError, or a malformed dotted name
            raise SearchError(str(error)) from None
        trials.setdefault(trial_id(params), params)
    return {} if method in ADAPTIVE_METHODS else trials


def space_entry(space: Mapping | None, name: str):
    """The search-space entry of ``name`` (``regularization.user`` as a dotted key or nested)."""
    if not space:
        return None
    if name in space:
        return space[name]
    head, _, tail = name.partition(".")
    entry = space.get(head)
    if tail and isinstance(entry, Mapping) and tail in entry:
        return entry[tail]
    return None


def is_log_axis(name: str, values: Iterable, space: Mapping | None = None) -> bool:
    """Whether parameter ``name`` is drawn on a log axis.

    Log when the search space draws it from a ``loguniform``/``loguniform_int``
    distribution, or when its grid (or, without a space, the values taken) are all
    > 0 and span at least 10x.
    """
    entry = space_entry(space, name)
    if is_distribution(entry):
        return next(iter(entry)).startswith("loguniform")
    points = entry if isinstance(entry, list) else list(values)
    numbers = [v for v in points if is_number(v) and math.isfinite(v)]
    if not numbers or len(numbers) < len(points) or min(numbers) <= 0:
        return False
    return max(numbers) / min(numbers) >= 10


def is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_axis(name: str, value, method: str) -> None:
    if name in METRIC_PARAMS and (isinstance(value, list) or is_distribution(value)):
        raise SearchError(f"params.{name}: cannot be searched, as it decides the metric the model is stopped "
                          f"and selected on (RMSE or NDCG); give one value, and a model for each value")
    if isinstance(value, list):
        if not value:
            raise SearchError(f"params.{name}: empty list; give at least one value")
        return
    if not is_distribution(value):
        return
    if method == "grid":
        raise SearchError(f"params.{name}: a distribution needs search method random, tpe or gp")
    (kind, bounds), = value.items()
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(is_number(b) and math.isfinite(b) for b in bounds)):
        raise SearchError(f"params.{name}.{kind}: expected [low, high], got {bounds!r}")
    low, high = bounds
    if not low < high:
        raise SearchError(f"params.{name}.{kind}: empty or inverted range [{low}, {high}]; need low < high")
    if kind.startswith("loguniform") and low <= 0:
        raise SearchError(f"params.{name}.{kind}: bounds must be > 0 for a log scale, got [{low}, {high}]")
    if kind == "loguniform_int" and math.floor(high) < math.ceil(low):
        raise SearchError(f"params.{name}.{kind}: [{low}, {high}] holds no integer; give integer bounds")


def is_distribution(value) -> bool:
    """Whether a search-space entry is a distribution mapping (``{loguniform: [lo, hi]}``)."""
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in DISTRIBUTIONS


def _grid_points(space: dict) -> list[dict]:
    names = sorted(space)
    axes = [space[n] if isinstance(space[n], list) else [space[n]] for n in names]
    return [dict(zip(names, combo)) for combo in itertools.product(*axes)]


def _random_points(space: dict, trials: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    names = sorted(space)
    return [{n: _sample(space[n], rng) for n in names} for _ in range(trials)]


def _sample(value, rng: np.random.Generator):
    if isinstance(value, list):
        return value[int(rng.integers(len(value)))]
    if not is_distribution(value):
        return value
    (kind, (low, high)), = value.items()
    if kind == "uniform":
        return round_value(rng.uniform(low, high))
    if kind == "loguniform":
        return round_value(math.exp(rng.uniform(math.log(low), math.log(high))))
    drawn = int(math.floor(math.exp(rng.uniform(math.log(low), math.log(high + 1)))))
    return min(max(drawn, int(math.ceil(low))), int(math.floor(high)))


def round_value(value: float, digits: int = 4) -> float:
    """Four significant digits: readable tables and ids, and far finer than any search needs."""
    return float(f"{value:.{digits}g}")
