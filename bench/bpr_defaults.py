"""implicit's BPR with its own defaults on the folds of a workflow run, against the run's ``bpr`` search.

    python -m bench.bpr_defaults [--results results] [--dataset ml-100k] [--split random] [--model bpr]

For each fold of ``results/splits/{dataset}/{split}``, implicit 0.7.3's
``BayesianPersonalizedRanking()`` with its defaults (100 factors, learning rate 0.01,
regularization 0.01, 100 iterations; seed = fold number, one thread) is fitted on the
fold's training part (the part the workflow's trials train on) and ranked on its test
part as the workflow's ``evaluate`` does (every item the user did not rate in training;
NDCG@10). Prints the mean over folds (with min and max) next to the test NDCG@10 of the
selected trial in ``results/summary/{dataset}/{split}/{model}/best.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from bench.bench_als import as_factor_model


def implicit_defaults(fold: Path, n_users: int, n_items: int, seed: int) -> float:
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    from mfsweep.matrix import RatingMatrix
    from mfsweep.metrics import evaluate

    train = RatingMatrix.from_frame(pd.read_parquet(fold / "train.parquet"), n_users, n_items)
    model = BayesianPersonalizedRanking(random_state=seed, num_threads=1)
    model.fit(train.to_scipy(), show_progress=False)
    factors = as_factor_model(model.user_factors, model.item_factors)
    return evaluate(factors, train, pd.read_parquet(fold / "test.parquet"), cutoffs=(10,))["NDCG@10"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--split", default="random")
    parser.add_argument("--model", default="bpr")
    args = parser.parse_args(argv)
    logging.getLogger("implicit").setLevel(logging.ERROR)
    data = args.results / "data" / args.dataset
    n_users = len(pd.read_parquet(data / "users.parquet"))
    n_items = len(pd.read_parquet(data / "items.parquet"))
    folds = sorted((args.results / "splits" / args.dataset / args.split).glob("fold*"))
    values = np.array([implicit_defaults(fold, n_users, n_items, seed) for seed, fold in enumerate(folds)])
    print(f"implicit BPR defaults, test NDCG@10 over {len(folds)} folds: {values.mean():.4f} "
          f"({values.min():.4f}-{values.max():.4f})")
    best = json.loads((args.results / "summary" / args.dataset / args.split / args.model / "best.json").read_text())
    print(f"{args.model} search's best trial {best['trial']} ({best['params']}): test NDCG@10 "
          f"{best['test']['NDCG@10']:.4f}")


if __name__ == "__main__":
    main()
