"""Time to quality: Hyperband against random search, tpe with median pruning, on ML-100K.

    python -m bench.bench_halving [--seeds 1 2 3 4 5] [--models sgd-biased als-biased wals]
        [--methods random hyperband hyperband-tpe tpe-median] [--jobs 2]

Data, spaces and stopping as bench.bench_search (80/20 holdout of ML-100K, the 20 % the
validation part; wide spaces; one fold). Each search runs as the workflow's rounds do
(mfsweep.rounds.propose_round, then mfsweep.pipeline.jobs.train_trial, a promoted trial
continuing from its checkpoint): ``random`` is 40 trials without pruning, ``tpe-median``
40 trials of tpe in rounds of 8 with median pruning from epoch 3, ``hyperband`` and
``hyperband-tpe`` Hyperband (min_epochs 1, eta 3, max_epochs the space's; ``--iterations``
times its brackets, default once) drawing its brackets' trials at random or from TPE.

A search is a sequence of trainings (a trial, or a rung of a promoted trial), in the
order the rounds run them: each adds the epochs it trained and gives its value (the
best validation value of the trial so far). Printed per model and method, over the seeds:
``epochs`` (all it trained), ``final`` (its best value), ``reach`` (epochs trained until
it first matches random search's final best of the same seed; never: inf), and
``reach/random``: the median of reach over random's total epochs. Rows go to
bench/results/halving.parquet.
"""

from __future__ import annotations

import argparse
import itertools
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from bench.bench_search import EVALUATION, MEDIAN, NONE, SPACES, STOPPING
from bench.common import ROOT, ml100k_split, set_threads

OUT = ROOT / "bench" / "results" / "halving.parquet"
METHODS = ("random", "hyperband", "hyperband-tpe", "tpe-median")
TRIALS, ROUND_SIZE = 40, 8


def search_settings(model: str, method: str, seed: int, iterations: int = 1) -> dict:
    """What propose_round reads (mfsweep.pipeline.workflow.propose_settings, without a config)."""
    spec = SPACES[model]
    search = {"method": "tpe" if method == "tpe-median" else method.removesuffix("-tpe"), "seed": seed}
    if search["method"] == "hyperband":
        search.update(min_epochs=1, eta=3, iterations=iterations, sampler="tpe" if method.endswith("-tpe") else "random")
    return {"model": model, "kind": model, "method": search["method"], "seed": seed, "batch": 1,
            "max_epochs": spec["max_epochs"], "space": spec["params"], "early_stopping": STOPPING,
            "pruning": MEDIAN if method == "tpe-median" else NONE, "search": search}


def rounds_of(settings: dict) -> list[dict]:
    """The settings of each round: its size, and its rung or its share of a random expansion."""
    from mfsweep.halving import schedule
    from mfsweep.search import expand

    search = settings["search"]
    if search["method"] == "hyperband":
        return [{"size": r.trials, "rung": r.to_json(), "sampler": search["sampler"]}
                for r in schedule(search, settings["max_epochs"])]
    sizes = [min(ROUND_SIZE, TRIALS - start) for start in range(0, TRIALS, ROUND_SIZE)]
    if search["method"] == "tpe":
        return [{"size": size} for size in sizes]
    drawn = list(expand({"kind": settings["kind"], "params": settings["space"], "max_epochs": settings["max_epochs"],
                         "search": {"method": "random", "trials": TRIALS, "seed": settings["seed"]}}).values())
    return [{"size": size, "trials": drawn[start:start + size]} for start, size in zip(range(0, TRIALS, ROUND_SIZE), sizes)]


def run_search(job: tuple[str, str, int, int]) -> pd.DataFrame:
    """One search, round by round; one row a training (a trial in a round)."""
    import optuna

    from mfsweep.pipeline.jobs import TrainingData, train_trial
    from mfsweep.pipeline.search_jobs import order_of, with_order
    from mfsweep.rounds import fold_thresholds, propose_round
    from mfsweep.trials import collect_histories, collect_trials, model_metric

    model, method, seed, iterations = job
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    set_threads(1)
    train, valid = ml100k_split()
    n_users = int(max(train["user"].max(), valid["user"].max()) + 1)
    n_items = int(max(train["item"].max(), valid["item"].max()) + 1)
    data = TrainingData(train, valid, n_users, n_items, EVALUATION)
    settings = search_settings(model, method, seed, iterations)
    metric = model_metric(settings)
    rounds, records, histories, checkpoints, rows = [], {}, {}, {}, []
    for r, extra in enumerate(rounds_of(settings), start=1):
        table = with_order(collect_trials((0, rec) for rec in records.values()), order_of(rounds)) if records else pd.DataFrame()
        history = collect_histories((0, h) for h in histories.values()) if histories else pd.DataFrame()
        proposal = propose_round({**settings, **extra}, r, rounds, table, history)
        rounds.append(proposal)
        unit = {"model": model, "kind": model, "max_epochs": settings["max_epochs"], "early_stopping": STOPPING}
        if proposal.rung:
            unit["epochs"] = proposal.rung["epochs"]
        for entry in proposal.trials:
            resume = checkpoints.get(entry["trial"]) if "resume" in entry else None
            before = records[entry["trial"]]["epochs_completed"] if resume is not None else 0
            trained = train_trial(unit, entry["trial"], entry["params"], data, thresholds=fold_thresholds(proposal, 0),
                                  resume=resume)
            records[entry["trial"]] = trained.record.to_json()
            histories[entry["trial"]] = trained.history
            checkpoints[entry["trial"]] = trained.checkpoint
            rows.append({"model": model, "method": method, "seed": seed, "metric": metric, "round": r,
                         "trial": entry["trial"], "stop_reason": trained.record.stop_reason,
                         "value": trained.record.validation.get(metric, np.nan),
                         "epochs": trained.record.epochs_completed - before,
                         "seconds": trained.record.train_seconds})
    return pd.DataFrame(rows)


def curve(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(epochs trained so far, best value so far) after each training of one search."""
    from mfsweep.trials import lower_is_better

    values = frame["value"].astype(float)
    best = values.cummin() if lower_is_better(frame["metric"].iloc[0]) else values.cummax()
    return frame["epochs"].cumsum().to_numpy(), best.to_numpy()


def reach(frame: pd.DataFrame, target: float) -> float:
    """Epochs trained until the search first matches ``target`` (inf: never)."""
    from mfsweep.trials import lower_is_better

    epochs, best = curve(frame)
    hit = best <= target + 1e-12 if lower_is_better(frame["metric"].iloc[0]) else best >= target - 1e-12
    return float(epochs[np.argmax(hit)]) if hit.any() else np.inf


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (model, method), group in results.groupby(["model", "method"], sort=False):
        random = results[(results["model"] == model) & (results["method"] == "random")]
        for seed, frame in group.groupby("seed"):
            base = random[random["seed"] == seed]
            target = curve(base)[1][-1]
            rows.append({"model": model, "method": method, "seed": seed, "trainings": len(frame),
                         "epochs": int(frame["epochs"].sum()), "final": curve(frame)[1][-1],
                         "random_final": target, "reach": reach(frame, target),
                         "random_epochs": int(base["epochs"].sum())})
    per_seed = pd.DataFrame(rows)
    per_seed["reach/random"] = per_seed["reach"] / per_seed["random_epochs"]
    per_seed["final-random"] = per_seed["final"] - per_seed["random_final"]
    return per_seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--models", nargs="+", default=list(SPACES), choices=list(SPACES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--iterations", type=int, default=1, help="hyperband: how many times its brackets run")
    parser.add_argument("--jobs", type=int, default=2, help="searches run side by side (each one thread)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--reference", type=Path, help="an earlier output whose random searches to take, not run again")
    args = parser.parse_args()
    reference = pd.read_parquet(args.reference) if args.reference else None
    if reference is not None:
        reference = reference[(reference["method"] == "random") & reference["model"].isin(args.models)
                              & reference["seed"].isin(args.seeds)]
    methods = [m for m in args.methods if m != "random"]
    if reference is None or reference.empty:   # the reference runs whatever is asked
        methods = ["random", *methods]
    jobs = list(itertools.product(args.models, methods, args.seeds, [args.iterations]))
    with ProcessPoolExecutor(args.jobs) as pool:
        results = pd.concat([reference, *pool.map(run_search, jobs)], ignore_index=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results.to_parquet(args.out, index=False)
    per_seed = summarize(results)
    per_seed.to_csv(args.out.with_suffix(".csv"), index=False)
    medians = per_seed.groupby(["model", "method"], sort=False)[
        ["trainings", "epochs", "reach", "reach/random", "final", "final-random"]].median()
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.precision", 4):
        print(per_seed.to_string(index=False))
        print("\nmedians over seeds:")
        print(medians.to_string())
    print(f"rows: {args.out}")


if __name__ == "__main__":
    main()
