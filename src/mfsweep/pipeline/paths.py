"""Every path the workflow writes, built from its wildcards and parsed back.

The templates use Snakemake's ``{wildcard}`` syntax, so the rules take them as they
are; ``build`` fills them in and ``parse`` reads the wildcards back out of a path.
"""

from __future__ import annotations

import contextlib
import re
from functools import lru_cache
from pathlib import Path

from mfsweep.io import DamagedFile

#: A MovieLens archive as downloaded.
RAW = "resources/raw/{name}.zip"
#: One table of a prepared dataset: ratings, users or items.
DATASET = "results/data/{dataset}/{table}.parquet"
#: One fold of a split: train.parquet, valid.parquet, test.parquet.
SPLIT = "results/splits/{dataset}/{split}/fold{fold}"
#: One unit of trials (a trial, or a batch of them) on one fold.
TRIAL = "results/trials/{dataset}/{split}/{model}/{trial}/fold{fold}"
#: One round of a model's search in rounds: its trials, their jobs and the pruning reference.
ROUND = "results/search/{dataset}/{split}/{model}/round{round}.json"
#: The summaries of one model's sweep, and of every model of a dataset and split.
SUMMARY = "results/summary/{dataset}/{split}/{model}"
SPLIT_SUMMARY = "results/summary/{dataset}/{split}"
#: A model's best trial's predicted ratings for an experiment's pairs file.
PREDICTIONS = "results/predictions/{dataset}/{split}/{model}.csv"
#: The figures of a dataset and split, and of one model there.
PLOTS = "results/plots/{dataset}/{split}"
MODEL_PLOTS = "results/plots/{dataset}/{split}/{model}"

#: A unit of trials: a trial's id, or a batch's (mfsweep.search.batch); a rung's unit of a
#: halving search (whose train job also leaves checkpoints).
PLAIN_UNIT = r"[0-9a-f]{10}|b[0-9a-f]{9}"
RUNG_UNIT = r"r[0-9a-f]{9}"

#: What a wildcard's value may look like (also the workflow's wildcard constraints).
WILDCARDS = {
    "dataset": r"[A-Za-z0-9][A-Za-z0-9._-]*",
    "split": r"[A-Za-z0-9][A-Za-z0-9._-]*",
    "model": r"[A-Za-z0-9][A-Za-z0-9._-]*",
    "trial": f"{PLAIN_UNIT}|{RUNG_UNIT}",
    "fold": r"\d+",
    "round": r"[1-9]\d*",
}


def build(template: str, **wildcards) -> str:
    return template.format(**wildcards)


def file(template: str, name: str) -> str:
    """A file inside the folder ``template`` (``file(TRIAL, "metrics.json")``)."""
    return f"{template}/{name}"


def parse(template: str, path: str | Path) -> dict[str, str]:
    """The wildcards of ``path`` under ``template`` (a folder template also matches a file in it)."""
    match = _pattern(template).fullmatch(Path(path).as_posix())
    if match is None:
        raise ValueError(f"{path} is not a path of the form {template}")
    return match.groupdict()


def fold_of(path: str | Path) -> int:
    """The fold of a file of a trial unit (``.../fold{k}/name``)."""
    return int(parse(TRIAL, path)["fold"])


def round_of(path: str | Path) -> int:
    """The round of a round file (``.../round{r}.json``)."""
    return int(parse(ROUND, path)["round"])


def model_of(path: str | Path) -> str:
    """The model of a summary file (``results/summary/{dataset}/{split}/{model}/name``)."""
    return parse(SUMMARY, path)["model"]


def made_here(path: str | Path) -> bool:
    """Whether ``path`` is a file the workflow makes (rather than one a user gives it)."""
    return Path(path).as_posix().startswith(("results/", "resources/"))


def advised(error: DamagedFile) -> DamagedFile:
    """``error`` with what to do about its file: the workflow rebuilds a file of its own once deleted."""
    if made_here(error.path):
        advice = f"delete {error.path} and run snakemake again, which rebuilds it and what depends on it"
    else:
        advice = f"{error.path} is not a file this workflow makes: replace it with a whole copy"
    return DamagedFile(error.path, f"{error}; {advice}")


@contextlib.contextmanager
def advising():
    """Add what to do to a DamagedFile raised inside."""
    try:
        yield
    except DamagedFile as error:
        raise advised(error) from None


@lru_cache(maxsize=None)
def _pattern(template: str) -> re.Pattern:
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(part) if n % 2 == 0 else f"(?P<{part}>{WILDCARDS.get(part, '[^/]+')})"
                    for n, part in enumerate(parts))
    return re.compile(rf"(?:.*/)?{regex}(?:/[^/]+)?")
