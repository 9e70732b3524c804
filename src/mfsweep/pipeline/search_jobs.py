"""Job bodies of a search in rounds: ``propose`` (a checkpoint per round, writing the round
file that mfsweep.rounds builds), and the order and Optuna storage of a sweep that ``collect`` writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pandas as pd

from mfsweep.io import atomic_path, read_parquet
from mfsweep.pipeline import paths
from mfsweep.pipeline.job import job
from mfsweep.records import read_records
from mfsweep.rounds import RoundFile, propose_round, read_round, write_round
from mfsweep.trials import collect_histories, collect_trials, model_metric

log = logging.getLogger("mfsweep")

ORDER_COLUMNS = ("round", "proposed")


def propose(snakemake) -> None:
    with job(snakemake):
        settings = snakemake.params.settings
        rounds = [read_round(path) for path in snakemake.input.rounds]
        trials, histories = earlier_results(snakemake.input.records, snakemake.input.histories, rounds)
        proposal = propose_round(settings, int(snakemake.wildcards.round), rounds, trials, histories)
        write_round(proposal, snakemake.output[0])
        log.info("round %s of %s: %d trials in %d jobs, from %d earlier trials", snakemake.wildcards.round,
                 settings["model"], len(proposal.trials), len(proposal.units), len(order_of(rounds)))


def earlier_results(record_paths: Iterable[str], history_paths: Iterable[str], rounds: list[RoundFile]):
    """The trial x fold table (with round and proposal order) and the histories of the earlier rounds."""
    return read_results(record_paths, history_paths, order_of(rounds))


def read_results(record_paths: Iterable[str], history_paths: Iterable[str], order) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trial x fold table of these units' records (with each trial's round and proposal
    ``order``) and their histories; empty tables when there is no record."""
    records = [(paths.fold_of(path), record.to_json()) for path in record_paths for record in read_records(path)]
    if not records:
        return pd.DataFrame(), pd.DataFrame()
    trials = with_order(collect_trials(records), order)
    histories = collect_histories((paths.fold_of(path), read_parquet(path)) for path in history_paths)
    return trials, histories


# ----- order and Optuna storage -------------------------------------------------------------
def order_of(rounds: list[RoundFile]) -> dict[str, list[int]]:
    """trial -> [round, proposed] from round files."""
    return {entry["trial"]: [proposal.round, entry["proposed"]] for proposal in rounds for entry in proposal.trials}


def with_order(trials: pd.DataFrame, order: dict[str, list[int]]) -> pd.DataFrame:
    """``trials`` with ``round`` and ``proposed`` columns after ``fold``."""
    missing = sorted(set(trials["trial"]) - set(order))
    if missing:
        raise ValueError(f"trials {', '.join(missing[:5])} are in no round of the search; rerun its propose jobs")
    out = trials.copy()
    position = list(out.columns).index("fold") + 1
    for offset, column in enumerate(ORDER_COLUMNS):
        out.insert(position + offset, column, out["trial"].map(lambda t: order[t][offset]).astype("int64"))
    return out


def write_study(trials: pd.DataFrame, histories: pd.DataFrame, settings: dict, path: str) -> int:
    """Every trial of a sweep to an Optuna SQLite storage (study named after the model); returns the count."""
    import optuna

    from mfsweep.adaptive import study_trials
    from mfsweep.studies import direction, new_study

    metric = model_metric(settings)
    frozen = study_trials(trials, histories, metric, settings["params"])
    with atomic_path(path) as tmp:
        storage = optuna.storages.RDBStorage(f"sqlite:///{tmp}")
        study = new_study(direction(metric), storage=storage, study_name=trials["model"].iloc[0])
        study.set_user_attr("selection_metric", metric)
        study.add_trials(frozen)
        storage.engine.dispose()
    return len(frozen)
