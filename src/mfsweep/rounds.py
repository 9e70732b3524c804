"""The round file of a search in rounds: what one round proposed, built, read and written in one place.

A round file holds the round's number, its trials in proposal order
(``{"trial", "proposed", "params"}``, ``proposed`` counting from 0 over all rounds),
the train jobs they go to (``units``: unit id -> trial ids) and the pruning reference
of each fold (``pruning``: the pruning settings with ``metric`` and ``thresholds``:
fold -> epoch -> value), built from the earlier rounds only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
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

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, content, path: str | os.PathLike) -> "RoundFile":
        """The round file ``path`` holding ``content``; DamagedFile when a field is missing or of another type."""
        problems = [name for name, kind in FIELDS.items()
                    if not isinstance(content, dict) or not isinstance(content.get(name), kind)]
        if problems:
            raise DamagedFile(path, f"{path} is not a whole round file: {', '.join(problems)} missing or malformed")
        return cls(**{name: content[name] for name in FIELDS})


#: The keys of a round file, each with the type of its value (RoundFile's fields).
FIELDS = get_type_hints(RoundFile)


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
    from mfsweep.search import batch, trial_id

    metric = model_metric(settings)
    if "trials" in settings:  # grid or random search: the round's share of the expansion, in order
        proposals = list(settings["trials"])
    else:
        history = study_trials(trials, histories, metric, settings["space"]) if len(trials) else []
        proposals = propose(settings["space"], history, settings["method"], settings["seed"], settings["size"],
                            round_index, metric, settings.get("sampler_options"))
    start = sum(len(r.trials) for r in rounds)
    entries = [{"trial": trial_id(params), "proposed": start + n, "params": params} for n, params in enumerate(proposals)]
    return RoundFile(
        round=round_index,
        trials=entries,
        units=batch([entry["trial"] for entry in entries], settings["batch"]),
        pruning={**settings["pruning"], "metric": metric,
                 "thresholds": thresholds(settings, trials, histories, metric)},
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
