"""Successive halving and Hyperband over epochs, one round a rung.

Successive halving (``sha``) trains ``trials`` trials for a few epochs, keeps the best
1/eta of them by the selection metric, trains those on to eta times the epochs, and
so on up to ``max_epochs``. Hyperband (Li et al., 2018) runs several such brackets,
from many trials with few epochs to few trials trained to ``max_epochs`` from the
start, so that it pays off whether or not early epochs predict the final ranking.

Each rung is a round of the search (a ``propose`` checkpoint): its trials are decided
only once the rung before it is complete, from its results alone, ranked by value with
ties broken by proposal order. A promoted trial continues from its saved state
(mfsweep.train.Checkpoint), which gives bit for bit what training straight to the new
budget gives. So the rounds, and the results, are the same on any number of cores or a
cluster, whatever the order jobs finish in.

Brackets run one after the other, most trials first; a bracket's first rung draws new
trials (at random, or from TPE told every earlier rung's results: BOHB's idea).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

from mfsweep.trials import RUNG, lower_is_better, proposal_order, trial_table


@dataclass(frozen=True)
class Rung:
    """One round of a halving search: a rung of a bracket."""

    bracket: int    # 0-based, in the order the brackets run
    level: int      # 0: the bracket's first rung, which draws new trials
    trials: int     # how many trials it trains
    epochs: int     # the epochs each is trained to

    def to_json(self) -> dict:
        return asdict(self)


def levels(min_epochs: int, max_epochs: int, eta: int) -> int:
    """Hyperband's s_max: the largest s with ``min_epochs * eta**s <= max_epochs``."""
    if not 1 <= min_epochs <= max_epochs:
        raise ValueError(f"search.min_epochs: {min_epochs} must be between 1 and max_epochs ({max_epochs})")
    if eta < 2:
        raise ValueError(f"search.eta: {eta} must be >= 2")
    s = 0
    while min_epochs * eta ** (s + 1) <= max_epochs:
        s += 1
    return s


def rung_epochs(max_epochs: int, eta: int, s: int, level: int, min_epochs: int) -> int:
    """The epochs of rung ``level`` of a bracket of ``s + 1`` rungs: max_epochs / eta**(s - level), rounded."""
    return max(min_epochs, round(max_epochs / eta ** (s - level)))


def bracket(index: int, s: int, first: int, max_epochs: int, eta: int, min_epochs: int) -> list[Rung]:
    """The rungs of a bracket that starts ``first`` trials and halves ``s`` times; a rung keeps
    floor(first / eta**level) trials, at least one."""
    return [Rung(index, level, max(1, first // eta ** level), rung_epochs(max_epochs, eta, s, level, min_epochs))
            for level in range(s + 1)]


def schedule(search: dict, max_epochs: int) -> list[Rung]:
    """Every rung of a halving search, one a round, in order.

    ``search`` holds ``method`` (hyperband or sha), ``min_epochs``, ``eta``, ``iterations``
    (how many times the brackets run, one after the other) and, for sha, ``trials`` (how
    many its bracket starts). Hyperband's bracket s (s_max down to 0) starts
    ceil((s_max + 1) / (s + 1) * eta**s) trials at max_epochs / eta**s epochs.
    """
    eta, min_epochs = search["eta"], search["min_epochs"]
    top = levels(min_epochs, max_epochs, eta)
    if search["method"] == "sha":
        starts = [(top, search["trials"])]
    else:
        starts = [(s, math.ceil((top + 1) / (s + 1) * eta ** s)) for s in range(top, -1, -1)]
    starts = starts * search.get("iterations", 1)
    return [rung for index, (s, first) in enumerate(starts)
            for rung in bracket(index, s, first, max_epochs, eta, min_epochs)]


def promoted(trials: pd.DataFrame, metric: str, count: int) -> list[str]:
    """The ``count`` trials a rung promotes: of the trials of ``trials`` (the rung's trial x fold
    rows) that every fold trained to the rung's epochs (stop reason ``rung``), the best by mean
    ``metric`` over folds, ties broken by proposal order; returned in proposal order."""
    order = proposal_order(trials)
    table = trial_table(trials, metric).set_index("trial").loc[order.index]
    open_trials = trials.groupby("trial")["stop_reason"].agg(lambda reasons: set(reasons) == {RUNG})
    candidates = table[open_trials.loc[table.index] & table["mean"].notna()]
    best = candidates.sort_values("mean", ascending=lower_is_better(metric), kind="stable").index[:count]
    return [trial for trial in order.index if trial in set(best)]


def new_trials(settings: dict, round_index: int, trials: pd.DataFrame, histories: pd.DataFrame) -> list[dict]:
    """The parameters (nested) of a bracket's first rung: ``rung.trials`` new trials, drawn at
    random (a stream seeded by the search seed and the round) or proposed by TPE from every
    earlier trial's result so far; never one the search already has."""
    from mfsweep.adaptive import propose, round_seed, study_trials
    from mfsweep.trials import model_metric

    count, space = settings["rung"]["trials"], settings["space"]
    if settings["sampler"] == "tpe":
        metric = model_metric(settings)
        history = study_trials(trials, histories, metric, space) if len(trials) else []
        return propose(space, history, "tpe", settings["seed"], count, round_index, metric)
    seen = set(trials["trial"]) if len(trials) else set()
    return random_trials(settings, count, round_seed(settings["seed"], round_index), seen)


def random_trials(settings: dict, count: int, seed: int, seen: set) -> list[dict]:
    """``count`` trials of the space drawn at random with ``seed``, leaving out the ids in ``seen``
    (the draws go on in the same stream until enough are new, or 16 draws a trial are spent)."""
    from mfsweep.search import expand

    model = {"kind": settings["kind"], "params": settings["space"], "max_epochs": settings["max_epochs"]}
    fresh: list[dict] = []
    for draws in (count * 2 ** k for k in range(5)):  # up to 16 draws a trial
        drawn = expand({**model, "search": {"method": "random", "trials": draws, "seed": seed}})
        fresh = [params for trial, params in drawn.items() if trial not in seen]
        if len(fresh) >= count:
            return fresh[:count]
    return fresh
