"""Search spaces to trials: grid and seeded random expansion, stable trial ids.

A model's ``params`` maps a parameter name to a scalar (fixed), a list (a grid
axis, or a choice under random search) or a distribution mapping
(``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}``, ``{loguniform_int: [lo, hi]}``,
random and adaptive search). Dotted names (``regularization.user``) set one half of a
user/item parameter. Adaptive methods (``tpe``, ``gp``) propose their trials in rounds
at run time (mfsweep.adaptive), and so do the halving methods (``hyperband``, ``sha``:
mfsweep.halving); here their space is only checked.
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
from mfsweep.values import is_number

DISTRIBUTIONS = ("uniform", "loguniform", "loguniform_int")
#: Search methods whose trials are known from the config alone.
STATIC_METHODS = ("grid", "random")
#: Search methods that propose each round from the results of the earlier ones.
ADAPTIVE_METHODS = ("tpe", "gp")
#: Search methods that train in rungs of growing epochs, promoting the best (mfsweep.halving).
HALVING_METHODS = ("hyperband", "sha")
#: Search methods whose trials are decided at run time, a round at a time.
RUN_TIME_METHODS = (*ADAPTIVE_METHODS, *HALVING_METHODS)


class SearchError(ValueError):
    """The search space is malformed; the message names the parameter."""


def trial_id(params: dict) -> str:
    """A short stable id: the first 10 hex digits of the canonical parameters' SHA-1."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(canonical.encode()).hexdigest()[:10]



def batch(ids: list[str], size: int, tag: str = "") -> dict[str, list[str]]:
    """Trial ids, in order, in units (train jobs) of ``size``: unit id -> members.

    With ``size`` 1 a unit is one trial and its id the trial's; otherwise the id is ``b``
    and a hash of the members, so it changes only when its members do. With a ``tag``
    (a halving search's rung: a trial is trained in one unit a rung) the id is ``r`` and
    a hash of the tag and the members, whatever the size.
    """
    if size == 1 and not tag:
        return {trial: [trial] for trial in ids}
    chunks = [ids[start:start + size] for start in range(0, len(ids), size)]
    prefix, salt = ("r", f"{tag}:") if tag else ("b", "")
    return {prefix + hashlib.sha1((salt + ",".join(chunk)).encode()).hexdigest()[:9]: chunk for chunk in chunks}

def expand(model: dict) -> dict[str, dict]:
    """Trials of one model config: ``{trial_id: params}``, in a stable order.

    Whatever the method, every value a trial can take is checked first by building the
    model (``check_values``), so a bad value (``embedding_size: 0``, a negative
    regularization, text in a list) fails here, before any job, naming the parameter.
    Grid and random trials are then built one by one (which also checks how their values
    combine); an adaptive method has no trials before it runs, and ``{}`` is returned.
    """
    space = model.get("params") or {}
    search = model.get("search") or {}
    method = search.get("method", "grid")
    for name, value in space.items():
        _check_axis(name, value, method)
    check_values(model, space)
    if method in RUN_TIME_METHODS:
        return {}
    if method == "grid":
        points = _grid_points(space)
    else:
        points = _random_points(space, int(search.get("trials", 20)), int(search.get("seed", 1)))
    trials: dict[str, dict] = {}
    for point in points:
        params = _build(model, point)
        trials.setdefault(trial_id(params), params)
    return trials


def check_values(model: dict, space: Mapping) -> None:
    """Every value of every list, both bounds of every distribution and every fixed value
    build a model (with the other half of a user/item pair at its first value); the error
    names the parameter and the value. Then the first value of each parameter together."""
    values = {name: _values(name, entry) for name, entry in space.items()}
    first = {name: options[0][0] for name, options in values.items()}
    try:
        nest_params(first)
    except ValueError as error:  # a malformed dotted name
        raise SearchError(str(error)) from None
    for name in sorted(values):
        head = name.partition(".")[0]
        halves = {other: value for other, value in first.items() if other.partition(".")[0] == head}
        for value, context in values[name]:
            try:
                _build(model, {**halves, name: value}, context)
            except SearchError as error:
                raise SearchError(f"{error}{_integer_hint(model, halves, name, space[name])}") from None
    _build(model, first)


def _values(name: str, entry) -> list[tuple]:
    """(value, what it is) of each value a search-space entry can give a trial; a
    distribution's two bounds, as it draws them (floats, or integers for loguniform_int)."""
    if isinstance(entry, list):
        return [(value, f"params.{name}: the value {value!r} is not valid: ") for value in entry]
    if not is_distribution(entry):
        return [(entry, f"params.{name}: {entry!r} is not valid: ")]
    (kind, (low, high)), = entry.items()
    bounds = [int(math.ceil(low)), int(math.floor(high))] if kind == "loguniform_int" else [float(low), float(high)]
    return [(bound, f"params.{name}.{kind}: the bound {bound!r} is not valid: ") for bound in bounds]


def _integer_hint(model: dict, halves: dict, name: str, entry) -> str:
    """What to write when a float distribution is given to a parameter that takes integers."""
    if not is_distribution(entry) or "loguniform_int" in entry:
        return ""
    (kind, (low, high)), = entry.items()
    try:
        _build(model, {**halves, name: int(math.ceil(low))})
    except SearchError:
        return ""
    return f"; {kind} draws floats, an integer parameter takes {{loguniform_int: [{low}, {high}]}}"


def _build(model: dict, point: dict, context: str = "") -> dict:
    """The nested parameters of ``point``, after building the model with them (SearchError if it cannot be)."""
    try:
        params = nest_params(point)
        create(model["kind"], **{**params, "epochs": int(model.get("max_epochs", 30))})
    except ValueError as error:  # a ParameterError, or a malformed dotted name
        raise SearchError(f"{context}{error}") from None
    return params


def distinct_points(space: Mapping) -> float:
    """How many distinct trials a search space holds (``math.inf`` with a float distribution):
    the product of the distinct values of each list and the integers of each loguniform_int."""
    count: float = 1
    for entry in space.values():
        if isinstance(entry, list):
            count *= len({json.dumps(value, sort_keys=True, default=str) for value in entry})
        elif is_distribution(entry):
            (kind, (low, high)), = entry.items()
            count *= max(math.floor(high) - math.ceil(low) + 1, 0) if kind == "loguniform_int" else math.inf
    return count


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
