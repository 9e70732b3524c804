"""The round file of a search in rounds: what one round proposed, built, read and written in one place.

A round file holds the round's number, its trials in proposal order
(``{"trial", "proposed", "params"}``, ``proposed`` counting from 0 over all rounds),
the train jobs they go to (``units``: unit id -> trial ids) and the pruning reference
of each fold (``pruning``: the pruning settings with ``metric`` and ``thresholds``:
fold -> epoch -> value), built from the earlier rounds only. A round of a halving
search (mfsweep.halving) is a rung: it also holds ``rung`` (bracket, level, trials,
epochs), and each trial it promotes from the rung before names the unit it continues
from (``resume``).
"""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields
from typing import get_type_hints

import pandas as pd

from mfsweep.io import DamagedFile, read_json, write_json
from mfsweep.trials import UNUSABLE, model_metric


@dataclass
class RoundFile:
    round: int
    trials: list
    units: dict
    pruning: dict
    rung: dict = field(default_factory=dict)   # a halving search's rung; absent from the file otherwise

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in REQUIRED or getattr(self, f.name)}

    @classmethod
    def from_json(cls, content, path: str | os.PathLike) -> "RoundFile":
        """The round file ``path`` holding ``content``; DamagedFile when a field is missing or of another type."""
        problems = [name for name, kind in FIELDS.items()
                    if not isinstance(content, dict) or not isinstance(content.get(name, _absent(name)), kind)]
        if problems:
            raise DamagedFile(path, f"{path} is not a whole round file: {', '.join(problems)} missing or malformed")
        return cls(**{name: content[name] for name in FIELDS if name in content})

    def resumed(self) -> dict[str, str]:
        """trial -> the unit of the rung before that it continues from (a halving search's promoted trials)."""
        return {entry["trial"]: entry["resume"] for entry in self.trials if "resume" in entry}


#: The keys of a round file, each with the type of its value (RoundFile's fields).
FIELDS = get_type_hints(RoundFile)
#: The keys every round file has.
REQUIRED = tuple(f.name for f in fields(RoundFile) if f.default_factory is MISSING)


def _absent(name: str):
    """What a missing key reads as: nothing for a required one (so it is a problem), else its default."""
    return None if name in REQUIRED else FIELDS[name]()


def read_round(path: str | os.PathLike) -> RoundFile:
    """A round file; one that lacks a field, or holds one of another type, is DamagedFile."""
    return RoundFile.from_json(read_json(path), path)


def write_round(proposal: RoundFile, path: str | os.PathLike) -> None:
    write_json(proposal.to_json(), path)


def fold_thresholds(proposal: RoundFile, fold: int) -> dict[int, float]:
    """The pruning reference of one fold from a round file: epoch -> value (empty: no pruning)."""
    if proposal.pruning["method"] == "none":
        return {}
    return {int(epoch): value for epoch, value in proposal.pruning["thresholds"].get(str(fold), {}).items()}


def round_units(rounds: list[RoundFile]) -> list[str]:
    """The unit ids of these rounds' train jobs, in order."""
    return [unit for proposal in rounds for unit in proposal.units]


def propose_round(settings: dict, round_index: int, rounds: list[RoundFile], trials: pd.DataFrame,
                  histories: pd.DataFrame) -> RoundFile:
    """Round ``round_index`` of a search, from the earlier ``rounds`` and their trial x fold
    table and histories (empty before the first round's results)."""
    from mfsweep.adaptive import propose, study_trials
    from mfsweep.search import batch

    if "rung" in settings:
        return propose_rung(settings, round_index, rounds, trials, histories)
    metric = model_metric(settings)
    if "trials" in settings:  # grid or random search: the round's share of the expansion, in order
        proposals = list(settings["trials"])
    else:
        history = study_trials(trials, histories, metric, settings["space"]) if len(trials) else []
        proposals = propose(settings["space"], history, settings["method"], settings["seed"], settings["size"],
                            round_index, metric, settings.get("sampler_options"))
    entries = new_entries(proposals, rounds)
    return RoundFile(
        round=round_index,
        trials=entries,
        units=batch([entry["trial"] for entry in entries], settings["batch"]),
        pruning={**settings["pruning"], "metric": metric,
                 "thresholds": thresholds(settings, trials, histories, metric)},
    )


def new_entries(proposals: list[dict], rounds: list[RoundFile]) -> list[dict]:
    """The entries of newly proposed trials, numbered on from the trials the earlier ``rounds`` proposed."""
    from mfsweep.search import trial_id

    start = sum(1 for proposal in rounds for entry in proposal.trials if "resume" not in entry)
    return [{"trial": trial_id(params), "proposed": start + n, "params": params} for n, params in enumerate(proposals)]


def propose_rung(settings: dict, round_index: int, rounds: list[RoundFile], trials: pd.DataFrame,
                 histories: pd.DataFrame) -> RoundFile:
    """A rung of a halving search: new trials for a bracket's first rung, else the best of the
    rung before (the round before), each continuing from the unit that trained it."""
    from mfsweep.halving import new_trials, promoted
    from mfsweep.search import batch

    rung = settings["rung"]
    if rung["level"] == 0:
        entries = new_entries(new_trials(settings, round_index, trials, histories), rounds)
    else:
        before = rounds[-1]
        units = {trial: unit for unit, members in before.units.items() for trial in members}
        rows = trials[trials["trial"].isin(units)]
        kept = set(promoted(rows, model_metric(settings), rung["trials"]))
        entries = [{**entry, "resume": units[entry["trial"]]} for entry in before.trials if entry["trial"] in kept]
    return RoundFile(
        round=round_index,
        trials=entries,
        units=batch([entry["trial"] for entry in entries], settings["batch"], tag=f"e{rung['epochs']}"),
        pruning={**settings["pruning"], "metric": model_metric(settings), "thresholds": {}},
        rung=rung,
    )


def thresholds(settings: dict, trials: pd.DataFrame, histories: pd.DataFrame, metric: str) -> dict:
    """The pruning reference of each fold (fold -> epoch -> value, as strings) from the earlier
    rounds' usable trials; empty without pruning or before any result."""
    from mfsweep.pruning import prune_reference

    pruning = settings["pruning"]
    if pruning["method"] == "none" or trials.empty or histories.empty:
        return {}
    unusable = set(trials.loc[trials["stop_reason"].isin(UNUSABLE), "trial"])
    usable = histories[~histories["trial"].isin(unusable)]
    # no reference at the last epoch: stopping there would save nothing
    reference = prune_reference(usable, metric, pruning["method"], pruning["percentile"], pruning["min_epochs"],
                                settings["max_epochs"] - 1)
    return {str(fold): {str(epoch): value for epoch, value in epochs.items()} for fold, epochs in reference.items()}
