"""The ALS family against its peers on ML-100K: ``python -m bench.bench_als``.

1. ``als-biased`` (50 factors, regularization 0.1, damping 5, 10 epochs) against
   LensKit 2025.8 ``BiasedMFScorer`` with the same settings: fit time and test RMSE
   (seed 42, and the spread over seeds 0..9, since the RMSE moves by about 0.001
   with the initial factors).
2. ``wals`` (64 factors, 15 iterations, regularization 0.01, confidence = rating)
   against implicit 0.7.3 ``AlternatingLeastSquares`` on the same user-item matrix:
   fit time and NDCG@10 (every item the user did not rate in training is a
   candidate, the user's test items are relevant).

Both sides run in this process with the same thread count, on the split of
``bench.common.ml100k_split``. Every model is fitted once first (numba compilation
and the peers' first-call costs are not timed), then ``REPEATS`` times alternating
with its peer; the table shows the median fit time of each. Our fits start from the
ratings frame (building the sparse matrix is timed); the peers start from their own
prepared inputs (LensKit's Dataset, implicit's CSR matrix).

OpenMP threads (numba's and implicit's) sleep when idle (``OMP_WAIT_POLICY=passive``,
``--omp-wait active`` to compare): on a machine shared with other work, spinning
threads take CPU from the threads that have work left, and fits become several
times slower; LensKit's Rayon threads sleep when idle anyway.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
from types import SimpleNamespace

import numpy as np

from bench.common import ml100k_split, rmse, set_threads, timed

REPEATS = 5


def fit_ours(kind: str, train, **params):
    from mfsweep.models import create

    return create(kind, **params).fit(train)


def lenskit_dataset(train):
    from lenskit.data import from_interactions_df

    frame = train[["user", "item", "rating"]].rename(columns={"user": "user_id", "item": "item_id"})
    return from_interactions_df(frame)


def fit_lenskit(data, seed: int):
    from lenskit.als import BiasedMFScorer
    from lenskit.training import TrainingOptions

    scorer = BiasedMFScorer(features=50, epochs=10, regularization=0.1, damping=5)
    scorer.train(data, TrainingOptions(rng=seed))
    return scorer


def lenskit_predict(scorer, users, items) -> np.ndarray:
    """mu + b_u + b_i + p_u . q_i from the trained scorer's arrays (ids are our dense ids)."""
    u = scorer.users.numbers(users)
    i = scorer.items.numbers(items)
    bias = scorer.bias
    dots = np.einsum("ij,ij->i", scorer.user_embeddings[u].astype(np.float64),
                     scorer.item_embeddings[i].astype(np.float64))
    return bias.global_bias + bias.user_biases[u] + bias.item_biases[i] + dots


def user_item_csr(train):
    from mfsweep.matrix import as_matrix

    return as_matrix(train).to_scipy()


def fit_implicit(csr, seed: int, threads: int):
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(
        factors=64, iterations=15, regularization=0.01, calculate_training_loss=False,
        random_state=seed, num_threads=threads,
    )
    model.fit(csr, show_progress=False)
    return model


def ndcg10(model, train, test) -> float:
    from mfsweep.metrics import evaluate

    return evaluate(model, train, test, cutoffs=(10,))["NDCG@10"]


def as_factor_model(user_factors, item_factors):
    """A peer's factors in the shape mfsweep.metrics reads (no biases)."""
    return SimpleNamespace(user_factors=user_factors, item_factors=item_factors,
                           user_bias=None, item_bias=None, global_bias=0.0)


def race(ours, peer, repeats: int):
    """Warm both up, then alternate ``repeats`` timed fits; (our model, peer model, our
    median seconds, peer median seconds)."""
    mine, theirs = ours(), peer()
    our_times, peer_times = [], []
    for _ in range(repeats):
        mine, seconds = timed(ours)
        our_times.append(seconds)
        theirs, seconds = timed(peer)
        peer_times.append(seconds)
    return mine, theirs, statistics.median(our_times), statistics.median(peer_times)


def bench_biased(train, test, repeats: int) -> dict:
    data = lenskit_dataset(train)
    params = dict(embedding_size=50, regularization=0.1, damping=5.0, epochs=10, seed=42)
    mine, theirs, ours_s, peer_s = race(
        lambda: fit_ours("als-biased", train, **params), lambda: fit_lenskit(data, 42), repeats
    )
    truth = test["rating"].to_numpy()
    return {
        "model": "als-biased k=50 reg=0.1 damping=5, 10 epochs",
        "peer": "lenskit 2025.8 BiasedMFScorer",
        "ours_s": ours_s, "peer_s": peer_s,
        "metric": "test RMSE",
        "ours": rmse(mine.predict(test["user"], test["item"]), truth),
        "theirs": rmse(lenskit_predict(theirs, test["user"].to_numpy(), test["item"].to_numpy()), truth),
    }


def bench_wals(train, test, repeats: int, threads: int, solver: str) -> dict:
    csr = user_item_csr(train)
    params = dict(embedding_size=64, regularization=0.01, epochs=15, alpha=1.0,
                  confidence="linear", solver=solver, seed=42)
    mine, theirs, ours_s, peer_s = race(
        lambda: fit_ours("wals", train, **params), lambda: fit_implicit(csr, 42, threads), repeats
    )
    return {
        "model": f"wals k=64 reg=0.01 c=rating, 15 it ({solver})",
        "peer": "implicit 0.7.3 ALS (cg)",
        "ours_s": ours_s, "peer_s": peer_s,
        "metric": "NDCG@10",
        "ours": ndcg10(mine, train, test),
        "theirs": ndcg10(as_factor_model(theirs.user_factors, theirs.item_factors), train, test),
    }


def seed_spread(train, test, seeds) -> dict:
    """Test RMSE of als-biased and LensKit over several seeds (the initial factors differ)."""
    truth = test["rating"].to_numpy()
    users, items = test["user"].to_numpy(), test["item"].to_numpy()
    data = lenskit_dataset(train)
    params = dict(embedding_size=50, regularization=0.1, damping=5.0, epochs=10)
    ours = [rmse(fit_ours("als-biased", train, seed=s, **params).predict(users, items), truth) for s in seeds]
    theirs = [rmse(lenskit_predict(fit_lenskit(data, s), users, items), truth) for s in seeds]
    return {"ours": np.array(ours), "theirs": np.array(theirs)}


def print_spread(spread, seeds) -> None:
    for name, label in (("ours", "als-biased"), ("theirs", "lenskit")):
        values = spread[name]
        print(f"{label:>10} test RMSE over seeds {seeds[0]}..{seeds[-1]}: mean {values.mean():.4f}, "
              f"min {values.min():.4f}, max {values.max():.4f}")


def print_table(rows, threads: int, repeats: int) -> None:
    print(f"ML-100K, bench.common.ml100k_split() (80/20, seed 42), {threads} threads; "
          f"fit seconds: median of {repeats} after one untimed warm-up fit (numba compile excluded)")
    header = f"{'model':<44} {'peer':<30} {'ours s':>7} {'peer s':>7} {'ratio':>6}  {'metric':<9} {'ours':>7} {'peer':>7}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['model']:<44} {r['peer']:<30} {r['ours_s']:7.3f} {r['peer_s']:7.3f} "
              f"{r['ours_s'] / r['peer_s']:6.2f}  {r['metric']:<9} {r['ours']:7.4f} {r['theirs']:7.4f}")
    print("ratio = our time / peer time (lower is faster)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--seeds", type=int, default=10,
                        help="seeds for the spread of als-biased's and LensKit's test RMSE (0 to skip)")
    parser.add_argument("--omp-wait", choices=("passive", "active"), default="passive",
                        help="OMP_WAIT_POLICY for numba's and implicit's OpenMP threads (default passive: "
                             "idle threads sleep instead of spinning, which matters on a busy machine)")
    args = parser.parse_args(argv)
    # read once, when the OpenMP runtime starts (numba launches its threads in set_threads)
    os.environ["OMP_WAIT_POLICY"] = args.omp_wait.upper()
    set_threads(args.threads)
    logging.getLogger("implicit").setLevel(logging.ERROR)
    import lenskit.parallel

    lenskit.parallel.initialize(threads=args.threads, backend_threads=args.threads)
    train, test = ml100k_split()
    rows = [
        bench_biased(train, test, args.repeats),
        bench_wals(train, test, args.repeats, args.threads, "cg"),
        bench_wals(train, test, args.repeats, args.threads, "cholesky"),
    ]
    print_table(rows, args.threads, args.repeats)
    if args.seeds:
        seeds = list(range(args.seeds))
        print_spread(seed_spread(train, test, seeds), seeds)
    print(f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; load average at the end: "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
