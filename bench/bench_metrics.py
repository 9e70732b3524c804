"""Benchmark of mfsweep.metrics: speed and agreement with peers on ML-100K, and the scale target.

    python -m bench.bench_metrics                 # both parts, 2 threads
    python -m bench.bench_metrics ml100k
    python -m bench.bench_metrics scale --users 160000 --items 60000

ml100k: a biased ALS model (k=64) on the 80/20 split; mfsweep's Evaluator against a numpy
pipeline that scores every user and fully sorts the catalog, against ir-measures and
LensKit measuring the same rankings (the time of the measurement alone), and the metric
values side by side. scale: synthetic factors for 160,000 users x 60,000 items (k=64), a
few training ratings per user to exclude, ~5 truth items per user; wall and CPU seconds,
peak memory (VmHWM of a process that does only this), and the cost of scoring with
numba against float32 BLAS. Timings are the best of a few runs; the machine may be shared.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from bench.common import ml100k_split, set_threads


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_mib() -> float:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----- ML-100K ----------------------------------------------------------------------------

def full_sort_rankings(model, train) -> list[np.ndarray]:
    """Every user's candidates, best first, by a full sort (ties: lower item id first)."""
    from mfsweep.matrix import as_matrix

    matrix = as_matrix(train, model.n_users, model.n_items)
    scores = model.user_factors @ model.item_factors.T
    if model.item_bias is not None:
        scores += model.item_bias
    scores[matrix.coo()[0], matrix.indices] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")
    return [order[u][: matrix.n_items - (matrix.indptr[u + 1] - matrix.indptr[u])] for u in range(len(order))]


def numpy_metrics(rankings, relevant: dict[int, np.ndarray], cutoffs, n_items: int) -> dict[str, float]:
    """The ranking metrics from full rankings, in plain numpy (the naive peer)."""
    rows = []
    for u, items in relevant.items():
        ranks = np.flatnonzero(np.isin(rankings[u], items)) + 1
        gains = 1 / np.log2(ranks + 1)
        ideal = np.cumsum(1 / np.log2(np.arange(2, len(items) + 2)))
        row = {"NDCG": gains.sum() / ideal[-1], "RBP": 0.15 * np.sum(0.85 ** (ranks - 1.0)),
               "RecipRank": 1 / ranks.min()}
        for k in cutoffs:
            hits = ranks <= k
            row[f"NDCG@{k}"] = gains[hits].sum() / ideal[min(len(items), k) - 1]
            row[f"Precision@{k}"] = hits.sum() / k
            row[f"Recall@{k}"] = hits.sum() / len(items)
            row[f"HitRate@{k}"] = float(hits.any())
        rows.append(row)
    means = pd.DataFrame(rows).mean().to_dict()
    for k in cutoffs:
        means[f"Coverage@{k}"] = len(np.unique(np.concatenate([rankings[u][:k] for u in relevant]))) / n_items
    return means


def ir_measures_metrics(rankings, relevant, cutoffs) -> dict[str, float]:
    import ir_measures as irm

    qrels = [irm.Qrel(str(u), str(i), 1) for u, items in relevant.items() for i in items]
    run = [irm.ScoredDoc(str(u), str(i), -float(p)) for u in relevant for p, i in enumerate(rankings[u])]
    measures = {"NDCG": irm.nDCG, "RecipRank": irm.RR}
    for k in cutoffs:
        measures.update({f"NDCG@{k}": irm.nDCG @ k, f"Precision@{k}": irm.P @ k, f"Recall@{k}": irm.R @ k})
    values = irm.calc_aggregate(list(measures.values()), qrels, run)
    return {name: values[m] for name, m in measures.items()}


def lenskit_metrics(rankings, relevant, n: int) -> dict[str, float]:
    """LensKit's RunAnalysis on the top-n lists, keyed by our names where the definitions agree.

    Keys ending in " (LensKit)" differ by definition: its default NDCG discount clips ranks
    (1 / log2(max(rank, 2))), its Recall divides by min(n, #relevant), and its RBP and
    RecipRank see only the top n.
    """
    from lenskit.data import ItemListCollection
    from lenskit.metrics import (
        NDCG,
        RBP,
        Hit,
        LogRankWeight,
        Precision,
        Recall,
        RecipRank,
        RunAnalysis,
    )

    recs = pd.DataFrame([(u, i, p + 1) for u in relevant for p, i in enumerate(rankings[u][:n])],
                        columns=["user_id", "item_id", "rank"])
    test = pd.DataFrame([(u, i) for u, items in relevant.items() for i in items], columns=["user_id", "item_id"])
    ndcg = NDCG(n, weight=LogRankWeight(offset=1))
    metrics = {f"NDCG@{n}": ndcg, f"Precision@{n}": Precision(n), f"HitRate@{n}": Hit(n),
               f"NDCG@{n} (LensKit)": NDCG(n), f"Recall@{n} (LensKit)": Recall(n),
               f"RBP@{n} (LensKit)": RBP(n, patience=0.85), f"RecipRank@{n} (LensKit)": RecipRank(n)}
    analysis = RunAnalysis()
    for name, metric in metrics.items():
        analysis.add_metric(metric, name)
    summary = analysis.measure(ItemListCollection.from_df(recs, ["user_id"]),
                               ItemListCollection.from_df(test, ["user_id"])).list_summary()
    return {name: float(summary.loc[name, "mean"]) for name in metrics}


def bench_ml100k() -> None:
    from mfsweep.metrics import Evaluator
    from mfsweep.models import create

    cutoffs = (10, 100)
    train, test = ml100k_split()
    model = create("als-biased", embedding_size=64, regularization=0.1, epochs=10, seed=42).fit(train)
    print(f"ML-100K: {model.n_users} users x {model.n_items} items, {len(train)} train / {len(test)} test "
          f"ratings, als-biased k=64")

    start = time.perf_counter()
    evaluator = Evaluator(train, test, cutoffs)
    build = time.perf_counter() - start
    start = time.perf_counter()
    ours = evaluator(model)
    first = time.perf_counter() - start
    call = best_of(lambda: evaluator(model))
    both = best_of(lambda: Evaluator(train, test, cutoffs)(model))
    print(f"  mfsweep Evaluator: build {build * 1e3:.1f} ms, first call {first:.2f} s (compile or cache load), "
          f"call {call * 1e3:.1f} ms, build + call {both * 1e3:.1f} ms; "
          f"{evaluator.n_users} users ranked, {evaluator.n_skipped} skipped")

    relevant = {int(u): evaluator.rel_items[evaluator.rel_ptr[j]:evaluator.rel_ptr[j + 1]]
                for j, u in enumerate(evaluator.users)}
    sort_time = best_of(lambda: full_sort_rankings(model, train), 3)
    rankings = full_sort_rankings(model, train)
    naive_time = best_of(lambda: numpy_metrics(rankings, relevant, cutoffs, model.n_items), 1)
    naive = numpy_metrics(rankings, relevant, cutoffs, model.n_items)
    print(f"  numpy full sort: scores + argsort {sort_time * 1e3:.1f} ms, metrics {naive_time * 1e3:.1f} ms, "
          f"total {(sort_time + naive_time) * 1e3:.1f} ms = {(sort_time + naive_time) / call:.1f}x mfsweep's call")

    irm_time = best_of(lambda: ir_measures_metrics(rankings, relevant, cutoffs), 1)
    irm = ir_measures_metrics(rankings, relevant, cutoffs)
    print(f"  ir-measures (pytrec_eval) on the full rankings: {irm_time:.2f} s = {irm_time / call:.0f}x "
          f"mfsweep's call (measuring only)")
    try:
        lk_time = best_of(lambda: lenskit_metrics(rankings, relevant, 100), 1)
        lk = lenskit_metrics(rankings, relevant, 100)
        print(f"  LensKit RunAnalysis on the top-100 lists: {lk_time:.2f} s = {lk_time / call:.0f}x "
              f"mfsweep's call (measuring only)")
    except ImportError as error:
        lk = {}
        print(f"  LensKit not available ({error})")

    print(f"  {'metric':<16}{'mfsweep':>12}{'numpy':>12}{'ir-measures':>13}{'LensKit@100':>13}")
    for name, value in ours.items():
        cells = [naive.get(name), irm.get(name), lk.get(name)]
        text = "".join(f"{v:>12.6f} " if v is not None else f"{'':>13}" for v in cells)
        print(f"  {name:<16}{value:>12.6f}{text}")
    for name in (n for n in lk if n.endswith("(LensKit)")):
        print(f"  {name:<26}{lk[name]:.6f}  (defined differently, see lenskit_metrics)")
    for peer, values in (("numpy full sort", naive), ("ir-measures", irm), ("LensKit", lk)):
        shared = [n for n in values if n in ours]
        if shared:
            diff = max(abs(ours[n] - values[n]) for n in shared)
            print(f"  largest |mfsweep - {peer}| over {len(shared)} shared metrics: {diff:.1e}")


# ----- scale ------------------------------------------------------------------------------

def synthetic(n_users: int, n_items: int, k: int, per_user_train: int, per_user_truth: int, seed: int = 0):
    from types import SimpleNamespace

    rng = np.random.default_rng(seed)
    model = SimpleNamespace(
        user_factors=rng.normal(0, 0.1, (n_users, k)).astype(np.float32),
        item_factors=rng.normal(0, 0.1, (n_items, k)).astype(np.float32),
        user_bias=rng.normal(0, 0.1, n_users).astype(np.float32),
        item_bias=rng.normal(0, 0.1, n_items).astype(np.float32), global_bias=3.5)
    per_user = per_user_train + per_user_truth
    items = rng.integers(0, n_items, (n_users, per_user), dtype=np.int32)
    users = np.repeat(np.arange(n_users, dtype=np.int32), per_user).reshape(n_users, per_user)
    ratings = rng.integers(1, 6, (n_users, per_user)).astype(np.float32)
    part = lambda s: pd.DataFrame({"user": users[:, s].ravel(), "item": items[:, s].ravel(),  # noqa: E731
                                   "rating": ratings[:, s].ravel()})
    return model, part(slice(0, per_user_train)), part(slice(per_user_train, per_user))


def bench_scale(n_users: int, n_items: int, k: int) -> None:
    from mfsweep.kernels.ranking import GROUP, score_group
    from mfsweep.metrics import Evaluator

    model, train, truth = synthetic(n_users, n_items, k, per_user_train=10, per_user_truth=5)
    small = Evaluator(train, truth, max_users=64)
    start = time.perf_counter()
    small(model)
    warm = time.perf_counter() - start
    before = peak_mib()
    start = time.perf_counter()
    evaluator = Evaluator(train, truth)
    build = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    result = evaluator(model)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"scale: {n_users} users x {n_items} items, k={k}, {len(train)} train and {len(truth)} truth ratings, "
          f"{evaluator.n_users} users ranked")
    print(f"  first call on 64 users {warm:.2f} s (compile or cache load); Evaluator build {build:.2f} s")
    print(f"  full evaluation: {wall:.1f} s wall, {cpu:.1f} s CPU ({cpu / wall:.2f} cores busy); "
          f"peak RSS {peak_mib():.0f} MiB (before evaluating: {before:.0f} MiB)")
    print(f"  NDCG {result['NDCG']:.6f}  NDCG@10 {result['NDCG@10']:.6f}  Coverage@100 {result['Coverage@100']:.4f}")

    # scoring alone: numba's grouped loop against one float32 BLAS block, per 160k users (CPU s)
    block = min(1024, n_users)
    users = np.arange(block, dtype=np.int64)
    out = np.empty((GROUP, n_items), dtype=np.float32)
    uf, itf, ib = model.user_factors, model.item_factors, model.item_bias

    def numba_scores():
        for start in range(0, block - GROUP + 1, GROUP):
            score_group(uf, itf, ib, users[start:start + GROUP], out)

    numba_scores()
    big = np.empty((block, n_items), dtype=np.float32)

    def blas_scores():
        np.dot(uf[:block], itf.T, out=big)
        np.add(big, ib, out=big)

    scale = 160_000 / block
    cpu_numba = min(_cpu(numba_scores) for _ in range(3)) * scale
    cpu_blas = min(_cpu(blas_scores) for _ in range(3)) * scale
    print(f"  scoring 160k users alone: numba grouped loop {cpu_numba:.1f} CPU s (one thread), float32 BLAS "
          f"on {block}-user blocks {cpu_blas:.1f} CPU s (its own threads); ratio {cpu_numba / cpu_blas:.2f}")

    sample = min(2000, n_users)
    rankings_time = _numpy_peer_seconds(model, train, sample)
    print(f"  numpy full-sort peer on {sample} users: {rankings_time:.2f} s, "
          f"{rankings_time * n_users / sample:.0f} s projected for all users "
          f"= {rankings_time * n_users / sample / wall:.0f}x mfsweep")


def _cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def _numpy_peer_seconds(model, train, n: int) -> float:
    """Score n users, mask their training items, argsort the catalog (float32, 256 users a block)."""
    from mfsweep.matrix import as_matrix

    matrix = as_matrix(train)
    start = time.perf_counter()
    for lo in range(0, n, 256):
        hi = min(n, lo + 256)
        scores = model.user_factors[lo:hi] @ model.item_factors.T + model.item_bias
        rows = np.repeat(np.arange(hi - lo), np.diff(matrix.indptr[lo:hi + 1]))
        scores[rows, matrix.indices[matrix.indptr[lo]:matrix.indptr[hi]]] = -np.inf
        np.argsort(-scores, axis=1, kind="stable")
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_metrics", description=__doc__.split("\n")[0])
    parser.add_argument("part", nargs="?", choices=["all", "ml100k", "scale"], default="all")
    parser.add_argument("--users", type=int, default=160_000)
    parser.add_argument("--items", type=int, default=60_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.part in ("all", "ml100k"):
        bench_ml100k()
    if args.part == "scale":
        bench_scale(args.users, args.items, args.factors)
    elif args.part == "all":    # in a child process, so that its peak memory is its own
        subprocess.run([sys.executable, "-m", "bench.bench_metrics", "scale", "--users", str(args.users),
                        "--items", str(args.items), "--factors", str(args.factors),
                        "--threads", str(args.threads)], check=True)


if __name__ == "__main__":
    main()
