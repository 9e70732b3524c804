"""implicit's ALS and BPR with their own defaults on the folds of a workflow run, against
the run's ``wals`` and ``bpr`` searches.

    python -m bench.ranking_defaults [--results results] [--dataset ml-100k] [--split random]

For each fold of ``results/splits/{dataset}/{split}``, implicit 0.7.3's
``AlternatingLeastSquares()`` (100 factors, regularization 0.01, alpha 1, 15 iterations)
and ``BayesianPersonalizedRanking()`` (100 factors, learning rate 0.01, regularization
0.01, 100 iterations), every setting at its default (seed = fold number, one thread), are
fitted on the fold's training part (the part the workflow's trials train on; every
rated pair a positive) and ranked on its test part as the workflow's ``evaluate`` does
(every item the user did not rate in training; NDCG@10). Prints the mean over folds
(with min and max) next to the test NDCG@10 of the selected trial in
``results/summary/{dataset}/{split}/{model}/best.json`` of the matching model (``wals``,
``bpr``; ``--models`` names others).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from bench.bench_als import as_factor_model


def peers() -> dict:
    """The peer of each model: its class in implicit, built with its defaults."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    return {"ALS": AlternatingLeastSquares, "BPR": BayesianPersonalizedRanking}


def implicit_defaults(peer_class, fold: Path, n_users: int, n_items: int, seed: int) -> float:
    from mfsweep.matrix import RatingMatrix
    from mfsweep.metrics import evaluate

    train = RatingMatrix.from_frame(pd.read_parquet(fold / "train.parquet"), n_users, n_items)
    model = peer_class(random_state=seed, num_threads=1)
    model.fit(train.to_scipy(), show_progress=False)
    factors = as_factor_model(model.user_factors, model.item_factors)
    return evaluate(factors, train, pd.read_parquet(fold / "test.parquet"), cutoffs=(10,))["NDCG@10"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--split", default="random")
    parser.add_argument("--models", nargs=2, default=["wals", "bpr"], metavar=("ALS_MODEL", "BPR_MODEL"),
                        help="the workflow's models set beside implicit's ALS and BPR")
    args = parser.parse_args(argv)
    logging.getLogger("implicit").setLevel(logging.ERROR)
    data = args.results / "data" / args.dataset
    n_users = len(pd.read_parquet(data / "users.parquet"))
    n_items = len(pd.read_parquet(data / "items.parquet"))
    folds = sorted((args.results / "splits" / args.dataset / args.split).glob("fold*"))
    for (name, peer_class), model in zip(peers().items(), args.models):
        values = np.array([implicit_defaults(peer_class, fold, n_users, n_items, seed)
                           for seed, fold in enumerate(folds)])
        print(f"implicit {name} defaults, test NDCG@10 over {len(folds)} folds: {values.mean():.4f} "
              f"({values.min():.4f}-{values.max():.4f})")
        best = args.results / "summary" / args.dataset / args.split / model / "best.json"
        if best.exists():
            best = json.loads(best.read_text())
            print(f"  {model} search's best trial {best['trial']} ({best['params']}): test NDCG@10 "
                  f"{best['test']['NDCG@10']:.4f}")
        else:
            print(f"  {model}: no best.json in {best.parent} (run the workflow first)")

if __name__ == "__main__":
    main()
