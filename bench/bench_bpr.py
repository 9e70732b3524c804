"""``bpr`` against implicit 0.7.3's BayesianPersonalizedRanking on ML-100K: ``python -m bench.bench_bpr``.

The same work on both sides: 64 factors (implicit adds its item-bias column, as our
``item_bias``), learning rate 0.01, regularization 0.01, 100 epochs, one negative per
training pair, on the 80/20 split of ``bench.common.ml100k_split``. implicit draws each
negative in proportion to its ratings and skips a draw the user rated; ``sampling:
popularity`` does the same, so that row compares equal work (and ``init_std`` is set to
the spread of implicit's uniform(-0.5, 0.5) / factors start). Our default, ``sampling:
uniform``, is shown too: it rejects and redraws rated items, so it makes a step for every
pair (more steps than implicit) and ranks differently.

Threads: 1 and 2 (``--threads``). implicit runs Hogwild over its OpenMP threads; ours
runs sequentially (deterministic: the same bits for any thread count), and with
``hogwild: true`` (lock-free over numba's threads, as implicit) when there are two.

Every fit runs once first (numba compilation and first-call costs are not timed), then
``--repeats`` times alternating with implicit's; the table shows the median fit time of
each and the ratio (ours / implicit: below 1 is faster), and the test NDCG@10 of the last
fit of each (every item the user did not rate in training is a candidate). Our fits start
from the ratings frame (building the matrix is timed), implicit's from its CSR matrix.
OpenMP threads sleep when idle (``OMP_WAIT_POLICY=passive``, as in ``bench_als``).
"""

from __future__ import annotations

import argparse
import logging
import math
import os

from bench.bench_als import as_factor_model, fit_ours, ndcg10, race, user_item_csr
from bench.common import ml100k_split, set_threads

REPEATS = 5
#: The settings of both sides.
FACTORS, LEARNING_RATE, REGULARIZATION, EPOCHS = 64, 0.01, 0.01, 100


def fit_implicit(csr, seed: int, threads: int):
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    model = BayesianPersonalizedRanking(factors=FACTORS, learning_rate=LEARNING_RATE, regularization=REGULARIZATION,
                                        iterations=EPOCHS, random_state=seed, num_threads=threads)
    model.fit(csr, show_progress=False)
    return model


def our_settings(**changes) -> dict:
    return dict(embedding_size=FACTORS, learning_rate=LEARNING_RATE, regularization=REGULARIZATION, epochs=EPOCHS,
                init_std=1 / (FACTORS * math.sqrt(12)), seed=42, **changes)


def rows(train, test, threads: int, repeats: int) -> list[dict]:
    set_threads(threads)
    csr = user_item_csr(train)
    variants = [("popularity", dict(sampling="popularity")), ("uniform", dict(sampling="uniform"))]
    if threads > 1:
        variants.insert(1, ("popularity, hogwild", dict(sampling="popularity", hogwild=True)))
    out = []
    for name, changes in variants:
        params = our_settings(**changes)
        mine, theirs, ours_s, peer_s = race(lambda: fit_ours("bpr", train, **params),
                                            lambda: fit_implicit(csr, 42, threads), repeats)
        out.append({"threads": threads, "model": f"bpr ({name})", "ours_s": ours_s, "peer_s": peer_s,
                    "ours": ndcg10(mine, train, test),
                    "theirs": ndcg10(as_factor_model(theirs.user_factors, theirs.item_factors), train, test)})
    return out


def print_table(table, repeats: int) -> None:
    print(f"ML-100K, bench.common.ml100k_split() (80/20, seed 42); {FACTORS} factors, learning rate "
          f"{LEARNING_RATE}, regularization {REGULARIZATION}, {EPOCHS} epochs; fit seconds: median of {repeats} "
          "after one untimed warm-up fit (numba compile excluded)")
    header = (f"{'threads':>7}  {'model':<30} {'ours s':>7} {'implicit s':>10} {'ratio':>6}  "
              f"{'NDCG@10':>7} {'implicit':>8}")
    print(header)
    print("-" * len(header))
    for r in table:
        print(f"{r['threads']:>7}  {r['model']:<30} {r['ours_s']:7.3f} {r['peer_s']:10.3f} "
              f"{r['ours_s'] / r['peer_s']:6.2f}  {r['ours']:7.4f} {r['theirs']:8.4f}")
    print("ratio = our time / implicit's (lower is faster); implicit 0.7.3 BayesianPersonalizedRanking "
          "(verify_negative_samples=True)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--omp-wait", choices=("passive", "active"), default="passive")
    args = parser.parse_args(argv)
    os.environ["OMP_WAIT_POLICY"] = args.omp_wait.upper()
    logging.getLogger("implicit").setLevel(logging.ERROR)
    train, test = ml100k_split()
    table = [row for threads in args.threads for row in rows(train, test, threads, args.repeats)]
    print_table(table, args.repeats)
    print(f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; load average at the end: "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
