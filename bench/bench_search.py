"""Adaptive search against random search on ML-100K, with and without pruning.

    python -m bench.bench_search [--trials 40] [--round-size 8] [--seeds 1 2 3]
        [--models sgd-biased als-biased wals] [--methods random tpe tpe-batch gp] [--jobs 2]
        [--reuse bench/results/search.parquet]

Data: bench.common.ml100k_split (80/20 random holdout, seed 42); the 20 % part is the
validation part the search selects on (one fold). Each model has a wide search space
(SPACES below) and its selection metric (RMSE; NDCG@10 for wals, 2000 validation users:
all of ML-100K's). For every model, method and seed the search runs exactly as the
workflow's rounds do (mfsweep.rounds.propose_round, then
mfsweep.pipeline.jobs.train_trial for each trial of the round), without pruning and
with median pruning (min_epochs 3); random search draws the same trials as the
workflow's ``random`` method with that seed. ``tpe-batch`` and ``tpe-batch-noliar`` are tpe
with the options of ``sampler_options`` below (``n_startup_trials`` a round: the second
round is already modelled; without the constant liar). ``--reuse`` reads the trial rows of an earlier run and runs only the searches
(model, method, seed, pruning) missing there; the output holds both.

Printed, per model and method (means over the seeds):
- ``best@n``: the best validation value after n trials, n = 10, 20, ... and at the end;
- ``reach``: trials until the search first matches random search's final best of the
  same seed (the target: tpe at most half the budget);
- ``epochs``: epochs trained, without and with pruning, the cut, and how far the final
  best with pruning is from the best without (the target: >= 40 % fewer epochs, best
  within 0.001);
then, one row a search, its best after half the trials and at the end, and its ``reach``.
The trial rows go to bench/results/search.parquet (one row a trial), the mean best
value so far against trials and against epochs trained to bench/results/search.svg.
"""

from __future__ import annotations

import argparse
import itertools
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import ROOT, ml100k_split, set_threads

SPACES = {
    "sgd-biased": {"max_epochs": 40, "params": {
        "embedding_size": {"loguniform_int": [8, 256]}, "learning_rate": {"loguniform": [0.001, 0.05]},
        "regularization": {"loguniform": [0.005, 0.5]}}},
    "als-biased": {"max_epochs": 15, "params": {
        "embedding_size": {"loguniform_int": [8, 512]}, "regularization": {"loguniform": [0.01, 3.0]},
        "damping": {"uniform": [0.0, 50.0]}}},
    "wals": {"max_epochs": 15, "params": {
        "embedding_size": {"loguniform_int": [8, 256]}, "regularization": {"loguniform": [0.1, 300.0]},
        "alpha": {"loguniform": [0.3, 30.0]}}},
}
STOPPING = {"metric": None, "patience": 3, "min_delta": 0.0005}
EVALUATION = {"validation_cutoffs": [10], "relevance_threshold": None, "validation_users": 2000}
MEDIAN = {"method": "median", "percentile": 25, "min_epochs": 3}
NONE = {"method": "none", "percentile": 25, "min_epochs": 3}
#: The bench's methods and the workflow's search method each one runs.
METHODS = {"random": "random", "tpe": "tpe", "tpe-batch": "tpe", "tpe-batch-noliar": "tpe", "gp": "gp"}
OUT = ROOT / "bench" / "results" / "search.parquet"
#: The columns that name one search in the trial rows.
SEARCH_KEY = ["model", "method", "seed", "pruning"]


def settings(model: str, method: str, seed: int, trials: int, round_size: int, pruning: dict) -> dict:
    from mfsweep.search import expand

    spec = SPACES[model]
    out = {"model": model, "kind": model, "method": METHODS[method], "variant": method, "seed": seed, "batch": 1,
           "max_epochs": spec["max_epochs"], "space": spec["params"], "early_stopping": STOPPING,
           "pruning": pruning, "round_size": round_size, "total": trials}
    if method.startswith("tpe-batch"):
        out["sampler_options"] = sampler_options(method, round_size)
    if method == "random":
        out["expansion"] = expand({"kind": model, "search": {"method": "random", "trials": trials, "seed": seed},
                                   "params": spec["params"], "max_epochs": spec["max_epochs"]})
    return out


def sampler_options(method: str, round_size: int) -> dict:
    """tpe-batch: a round's asks count each other as the worst results, parameters modelled
    jointly, random for the first round only; tpe-batch-noliar: the same, but the asks of a
    round ignore each other."""
    return {"constant_liar": method != "tpe-batch-noliar", "multivariate": True, "n_startup_trials": round_size}


def run_search(config: dict) -> pd.DataFrame:
    """One search, round by round; one row a trial (value, epochs, seconds, round, proposed)."""
    import optuna

    from mfsweep.pipeline.jobs import TrainingData, train_trial
    from mfsweep.pipeline.search_jobs import with_order
    from mfsweep.rounds import fold_thresholds, propose_round
    from mfsweep.trials import collect_histories, collect_trials, model_metric

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    set_threads(1)
    train, valid = ml100k_split()
    n_users, n_items = int(max(train["user"].max(), valid["user"].max()) + 1), int(max(train["item"].max(), valid["item"].max()) + 1)
    data = TrainingData(train, valid, n_users, n_items, EVALUATION)
    unit = {"model": config["model"], "kind": config["kind"], "max_epochs": config["max_epochs"],
            "early_stopping": STOPPING}
    rounds, records, histories = [], [], []
    ids = list(config.get("expansion", {}))
    for r, start in enumerate(range(0, config["total"], config["round_size"]), start=1):
        size = min(config["round_size"], config["total"] - start)
        round_settings = {**config, "size": size}
        if config["method"] == "random":
            round_settings["trials"] = [config["expansion"][t] for t in ids[start:start + size]]
        order = {e["trial"]: [p.round, e["proposed"]] for p in rounds for e in p.trials}
        table = with_order(collect_trials(records), order) if records else pd.DataFrame()
        history = collect_histories(histories) if histories else pd.DataFrame()
        proposal = propose_round(round_settings, r, rounds, table, history)
        rounds.append(proposal)
        for entry in proposal.trials:
            trained = train_trial(unit, entry["trial"], entry["params"], data,
                                  thresholds=fold_thresholds(proposal, 0))
            records.append((0, trained.record.to_json()))
            histories.append((0, trained.history))
    metric = model_metric(unit)
    rows = []
    for (_, record), (p, entry) in zip(records, ((p, e) for p in rounds for e in p.trials)):
        rows.append({"model": config["model"], "method": config["variant"], "seed": config["seed"],
                     "pruning": config["pruning"]["method"], "metric": metric, "trial": record["trial"],
                     "round": p.round, "proposed": entry["proposed"], "stop_reason": record["stop_reason"],
                     "value": record["validation"].get(metric, np.nan), "epochs": record["epochs_completed"],
                     "seconds": record["train_seconds"]})
    return pd.DataFrame(rows)


def best_so_far(frame: pd.DataFrame) -> np.ndarray:
    from mfsweep.trials import lower_is_better

    values = frame.sort_values("proposed")["value"].astype(float)
    return (values.cummin() if lower_is_better(frame["metric"].iloc[0]) else values.cummax()).to_numpy()


def reach(curve: np.ndarray, target: float, lower: bool) -> int:
    """Trials until ``curve`` first matches ``target`` (len + 1 when never)."""
    hit = np.nonzero(curve <= target + 1e-12 if lower else curve >= target - 1e-12)[0]
    return int(hit[0]) + 1 if len(hit) else len(curve) + 1


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    from mfsweep.trials import lower_is_better

    rows = []
    for (model, method, pruning), group in results.groupby(["model", "method", "pruning"], sort=False):
        lower = lower_is_better(group["metric"].iloc[0])
        curves = {seed: best_so_far(g) for seed, g in group.groupby("seed")}
        row = {"model": model, "method": method, "pruning": pruning}
        n = min(len(c) for c in curves.values())
        for k in [*range(10, n, 10), n]:
            row[f"best@{k}"] = float(np.mean([c[k - 1] for c in curves.values()]))
        base = results[(results["model"] == model) & (results["method"] == "random") & (results["pruning"] == pruning)]
        targets = {seed: best_so_far(g)[-1] for seed, g in base.groupby("seed")}
        row["reach"] = float(np.mean([reach(c, targets[s], lower) for s, c in curves.items() if s in targets]))
        row["trials"] = n
        row["epochs"] = float(group.groupby("seed")["epochs"].sum().mean())
        row["pruned"] = int((group["stop_reason"] == "pruned").sum())
        rows.append(row)
    return pd.DataFrame(rows)


def per_seed(results: pd.DataFrame) -> pd.DataFrame:
    """One row a search: its final best, best after half the trials, and trials until it
    first matches random search's final best of the same seed, model and pruning."""
    from mfsweep.trials import lower_is_better

    rows = []
    for (model, method, seed, pruning), group in results.groupby(SEARCH_KEY, sort=False):
        curve = best_so_far(group)
        base = results[(results["model"] == model) & (results["method"] == "random") & (results["seed"] == seed)
                       & (results["pruning"] == pruning)]
        target = best_so_far(base)[-1] if len(base) else np.nan
        rows.append({"model": model, "method": method, "seed": seed, "pruning": pruning,
                     f"best@{len(curve) // 2}": curve[len(curve) // 2 - 1], "best": curve[-1],
                     "reach": reach(curve, target, lower_is_better(group["metric"].iloc[0])) if len(base) else np.nan})
    return pd.DataFrame(rows)


def pruning_effect(summary: pd.DataFrame) -> pd.DataFrame:
    merged = summary[summary["pruning"] == "none"].merge(summary[summary["pruning"] == "median"],
                                                         on=["model", "method"], suffixes=("", "_pruned"))
    final = [c for c in summary.columns if c.startswith("best@")]
    last = max(final, key=lambda c: int(c.split("@")[1]))
    return pd.DataFrame({"model": merged["model"], "method": merged["method"], "epochs": merged["epochs"],
                         "epochs_pruned": merged["epochs_pruned"],
                         "cut": 1 - merged["epochs_pruned"] / merged["epochs"],
                         "best": merged[last], "best_pruned": merged[f"{last}_pruned"],
                         "difference": (merged[f"{last}_pruned"] - merged[last]).abs()})


def plot(results: pd.DataFrame, path: Path) -> None:
    """Mean best validation value so far against trials, one panel a model, one line a method
    (dashed: with pruning); also against epochs trained."""
    from matplotlib.figure import Figure

    from mfsweep.plots.style import metric_label, palette, save_svg

    models = list(dict.fromkeys(results["model"]))
    fig = Figure(figsize=(10, 3.4 * len(models)), layout="constrained")
    axes = fig.subplots(len(models), 2, squeeze=False)
    methods = list(dict.fromkeys(results["method"]))
    colors = dict(zip(methods, palette(len(methods))))
    for row, model in zip(axes, models):
        for (method, pruning), group in results[results["model"] == model].groupby(["method", "pruning"], sort=False):
            curves = [best_so_far(g) for _, g in group.groupby("seed")]
            epochs = [g.sort_values("proposed")["epochs"].cumsum().to_numpy() for _, g in group.groupby("seed")]
            n = min(len(c) for c in curves)
            mean = np.mean([c[:n] for c in curves], axis=0)
            style = dict(color=colors[method], ls="-" if pruning == "none" else "--",
                         label=f"{method}" + (" with median pruning" if pruning != "none" else ""))
            row[0].plot(np.arange(1, n + 1), mean, **style)
            row[1].plot(np.mean([e[:n] for e in epochs], axis=0), mean, **style)
        row[0].set_title(model)
        row[0].set_ylabel(metric_label(results[results["model"] == model]["metric"].iloc[0], over_folds=False))
        row[0].set_xlabel("trials")
        row[1].set_xlabel("epochs trained (mean over seeds)")
        row[0].legend(fontsize=8)
    save_svg(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--round-size", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--models", nargs="+", default=list(SPACES), choices=list(SPACES))
    parser.add_argument("--methods", nargs="+", default=["random", "tpe", "gp"], choices=list(METHODS))
    parser.add_argument("--no-pruning-only", action="store_true", help="skip the searches with pruning")
    parser.add_argument("--jobs", type=int, default=2, help="searches run side by side (each one thread)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--reuse", type=Path, help="trial rows of an earlier run: its searches are not run again")
    args = parser.parse_args()
    prunings = [NONE] if args.no_pruning_only else [NONE, MEDIAN]
    earlier = pd.read_parquet(args.reuse) if args.reuse else pd.DataFrame(columns=SEARCH_KEY)
    done = set(earlier[SEARCH_KEY].itertuples(index=False, name=None))
    configs = [settings(m, method, seed, args.trials, args.round_size, pruning)
               for m, method, seed, pruning in itertools.product(args.models, args.methods, args.seeds, prunings)
               if (m, method, seed, pruning["method"]) not in done]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = pd.concat([earlier, *pool.map(run_search, configs)], ignore_index=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results.to_parquet(args.out, index=False)
    plot(results, args.out.with_suffix(".svg"))
    summary = summarize(results)
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.precision", 4):
        print(summary.to_string(index=False))
        print(per_seed(results).to_string(index=False))
        if not args.no_pruning_only:
            print(pruning_effect(summary).to_string(index=False))
    print(f"trial rows: {args.out}")


if __name__ == "__main__":
    main()
