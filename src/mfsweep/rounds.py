"""The round file of a search in rounds: what one round proposed, read and written in one place.

A round file holds the round's number, its trials in proposal order
(``{"trial", "proposed", "params"}``, ``proposed`` counting from 0 over all rounds),
the train jobs they go to (``units``: unit id -> trial ids) and the pruning reference
of each fold (``pruning``: the pruning settings with ``metric`` and ``thresholds``:
fold -> epoch -> value), built from the earlier rounds only.
"""

from __future__ import annotations

import os

from mfsweep.io import DamagedFile, read_json, write_json

#: The keys of a round file, each with the type of its value.
FIELDS = {"round": int, "trials": list, "units": dict, "pruning": dict}


def read_round(path: str | os.PathLike) -> dict:
    """A round file's content; one that lacks a field, or holds one of another type, is DamagedFile."""
    content = read_json(path)
    problems = [name for name, kind in FIELDS.items()
                if not isinstance(content, dict) or not isinstance(content.get(name), kind)]
    if problems:
        raise DamagedFile(path, f"{path} is not a whole round file: {', '.join(problems)} missing or malformed")
    return content


def write_round(content: dict, path: str | os.PathLike) -> None:
    write_json(content, path)


def fold_thresholds(proposal: dict, fold: int) -> dict[int, float]:
    """The pruning reference of one fold from a round file's content: epoch -> value (empty: no pruning)."""
    pruning = proposal["pruning"]
    if pruning["method"] == "none":
        return {}
    return {int(epoch): value for epoch, value in pruning["thresholds"].get(str(fold), {}).items()}


def round_units(rounds: list[dict]) -> list[str]:
    """The unit ids of these rounds' train jobs, in order."""
    return [unit for proposal in rounds for unit in proposal["units"]]
