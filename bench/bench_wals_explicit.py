"""Explicit WALS (TensorFlow's WALS tutorial) on ML-100K: ``python -m bench.bench_wals_explicit``.

``wals`` with ``target: rating`` and ``weighting: item_frequency`` predicts ratings as
p_u . q_i. This fits it on the 80/20 split of ``bench.common.ml100k_split`` with the
tutorial's default hyperparameters (5 factors, regularization 0.07, unobserved weight
0.01, linear item-frequency weight 130, 20 iterations) and with its tuned ones (34 factors,
regularization 9.83, unobserved weight 0.001, weight 189.8, 20 iterations), and prints
each one's test RMSE and fit time; the tutorial reports 1.06 and 0.98 on its own split
of ML-100K. Both solvers are shown: ``cholesky`` (exact half-steps, the tutorial's) and
``cg`` (3 conjugate-gradient steps per row).
"""

from __future__ import annotations

import argparse

from bench.common import ml100k_split, rmse, set_threads, timed
from mfsweep.models import create

#: The tutorial's hyperparameters as ``wals`` parameters.
SETTINGS = {
    "default": {"embedding_size": 5, "regularization": 0.07, "unobserved_weight": 0.01, "alpha": 130.0},
    "tuned": {"embedding_size": 34, "regularization": 9.83, "unobserved_weight": 0.001, "alpha": 189.8},
}
EXPLICIT = {"target": "rating", "weighting": "item_frequency", "confidence": "linear", "epochs": 20}
PUBLISHED = {"default": 1.06, "tuned": 0.98}


def fit_and_score(train, test, solver: str, **params) -> tuple[float, float]:
    """(test RMSE, fit seconds) of one explicit WALS fit."""
    model = create("wals", solver=solver, **EXPLICIT, **params)
    n_users = int(max(train["user"].max(), test["user"].max())) + 1
    n_items = int(max(train["item"].max(), test["item"].max())) + 1
    _, seconds = timed(model.fit, train, n_users, n_items)
    return rmse(model.predict(test["user"], test["item"]), test["rating"]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    set_threads(args.threads)
    train, test = ml100k_split()
    print("| setting | solver | test RMSE | tutorial | fit seconds |")
    print("|---|---|---|---|---|")
    for solver in ("cholesky", "cg"):
        fit_and_score(train.head(1000), test.head(10), solver, **SETTINGS["default"])   # compile
        for name, params in SETTINGS.items():
            error, seconds = fit_and_score(train, test, solver, **params)
            print(f"| {name} | {solver} | {error:.4f} | {PUBLISHED[name]} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
