"""implicit's ALS and BPR with their default settings, ranked as the workflow ranks its trials:
``python -m bench.bench_ranking_defaults [--seed 42] [--folds 5]``.

The folds are the default experiment's split (random, 5 folds, 10 % of training held out
for validation; ``--seed`` draws another one). On each fold, implicit 0.7.3's
``AlternatingLeastSquares()`` and ``BayesianPersonalizedRanking()``, every setting at its
default, are trained on the fold's training part with every rated pair a positive (what
``wals`` and ``bpr`` see), and scored by ``mfsweep.metrics.evaluate``: NDCG@10 over every
item the user did not rate in training, the user's test items relevant. Printed: the
test NDCG@10 of each fold and the mean, to set beside a sweep's ``best.json`` (test
NDCG@10, the mean over the same folds).
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.common import ml100k_ratings, set_threads
from mfsweep.metrics import evaluate
from mfsweep.models import create
from mfsweep.splits import split_fold


def positives(train: pd.DataFrame, n_users: int, n_items: int) -> sp.csr_matrix:
    """Every rated pair as a 1, users by items."""
    ones = np.ones(len(train), dtype=np.float32)
    return sp.csr_matrix((ones, (train["user"].to_numpy(), train["item"].to_numpy())), shape=(n_users, n_items))


def as_model(peer, n_users: int, n_items: int):
    """implicit's factors in an mfsweep model, so that the workflow's metrics rank them."""
    model = create("wals", embedding_size=peer.factors)
    model.user_factors = np.asarray(peer.user_factors, dtype=np.float32)[:n_users]
    model.item_factors = np.asarray(peer.item_factors, dtype=np.float32)[:n_items]
    return model


def peers():
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    return {"implicit ALS (defaults)": AlternatingLeastSquares, "implicit BPR (defaults)": BayesianPersonalizedRanking}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42, help="seed of the split (the default experiment's: 42)")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("implicit").setLevel(logging.ERROR)
    set_threads(2)
    ratings = ml100k_ratings()
    n_users, n_items = int(ratings["user"].max()) + 1, int(ratings["item"].max()) + 1
    settings = {"method": "random", "test_fraction": 0.2, "folds": args.folds, "validation_fraction": 0.1,
                "seed": args.seed}
    rows = []
    for fold in range(args.folds):
        part = split_fold(ratings, settings, fold)
        matrix = positives(part.train, n_users, n_items)
        for name, peer_class in peers().items():
            peer = peer_class(random_state=0)
            peer.fit(matrix, show_progress=False)
            metrics = evaluate(as_model(peer, n_users, n_items), part.train, part.test, cutoffs=(10,))
            rows.append({"peer": name, "fold": fold, "NDCG@10": metrics["NDCG@10"]})
    table = pd.DataFrame(rows).pivot(index="peer", columns="fold", values="NDCG@10")
    table["mean"] = table.mean(axis=1)
    print(f"test NDCG@10 on the split seed {args.seed}, {args.folds} folds")
    print(table.round(4).to_string())


if __name__ == "__main__":
    main()
