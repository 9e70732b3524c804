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
    records = {}
    for path in record_paths:
        for record in read_records(path):
            records[record.trial, paths.fold_of(path)] = record.to_json()  # a later rung's record replaces one
    if not records:
        return pd.DataFrame(), pd.DataFrame()
    trials = with_order(collect_trials((fold, record) for (_, fold), record in records.items()), order)
    histories = collect_histories(latest_histories((paths.fold_of(path), read_parquet(path)) for path in history_paths))
    return trials, histories


def latest_histories(histories: Iterable[tuple[int, pd.DataFrame]]) -> list[tuple[int, pd.DataFrame]]:
    """(fold, history) pairs in unit order, without the rows of a trial that a later unit trained
    again on the same fold (a halving search's promoted trial: its later history holds every epoch)."""
    pairs = list(histories)
    out, later = [], set()
    for fold, frame in reversed(pairs):
        trials = set(frame["trial"]) if "trial" in frame else set()
        superseded = {trial for trial in trials if (trial, fold) in later}
        out.append((fold, frame[~frame["trial"].isin(superseded)] if superseded else frame))
        later |= {(trial, fold) for trial in trials}
    return out[::-1]


# ----- order and Optuna storage -------------------------------------------------------------
def order_of(rounds: list[RoundFile]) -> dict[str, list[int]]:
    """trial -> [round, proposed] from round files: the round that first proposed it (a halving
    search's promoted trial is in later rounds too)."""
    order: dict[str, list[int]] = {}
    for proposal in rounds:
        for entry in proposal.trials:
            order.setdefault(entry["trial"], [proposal.round, entry["proposed"]])
    return order


def with_rung_rounds(histories: pd.DataFrame, rounds: list[RoundFile]) -> pd.DataFrame:
    """A halving search's histories with the ``round`` (rung) that trained each epoch: the first
    of the trial's rounds whose epochs reach it."""
    rungs: dict[str, list[tuple[int, int]]] = {}
    for proposal in rounds:
        for entry in proposal.trials:
            rungs.setdefault(entry["trial"], []).append((proposal.rung["epochs"], proposal.round))
    trained_in = [next(r for epochs, r in rungs[trial] if epoch <= epochs)
                  for trial, epoch in zip(histories["trial"], histories["epoch"])]
    out = histories.copy()
    out.insert(list(out.columns).index("epoch") + 1, "round", pd.Series(trained_in, index=out.index, dtype="int64"))
    return out


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
