"""The SGD family on ML-100K (bench.common.ml100k_split: 80/20 random holdout, seed 42) against peers.

    python -m bench.bench_sgd [--repeats 5] [--threads 1]

Rows (same settings on both sides, same training rows):
- sgd-biased vs scikit-surprise SVD (Trainset from the training rows via
  Reader(rating_scale=(1, 5)) and Dataset.load_from_df(...).build_full_trainset()),
  embedding_size 100, 20 epochs, lr 0.005, reg 0.02, init_std 0.1;
- sgd vs Surprise SVD(biased=False), same settings;
- adam vs PyTorch AdamW on the same model, loss, batches, initial factors and shuffles;
- sgd-gramian: no peer library has this objective; RMSE and our time only.

Time: wall seconds of one fit from a prebuilt training set (our RatingMatrix, Surprise's
Trainset; building either is not timed), the minimum over the repeats, ours and the peer's
interleaved in the same run. Our first fit of each kind is a warm-up and is not timed, so
numba compilation is excluded. On a machine shared with other jobs the ratio moves with
the load: run it a few times.
RMSE: on the test rows, unclipped predictions (Surprise: ``algo.predict(u, i, clip=False)``),
mean over the repeats (seed = repeat number); Surprise's clipped RMSE is printed as well.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.common import ml100k_split, rmse, set_threads, timed
from mfsweep.kernels import sgd as kernels
from mfsweep.matrix import as_matrix
from mfsweep.models import create

#: Settings of each row; the peers get the same.
SURPRISE_SETTINGS = dict(embedding_size=100, epochs=20, learning_rate=0.005, regularization=0.02, init_std=0.1)
ADAM_SETTINGS = dict(embedding_size=64, epochs=20, learning_rate=0.005, regularization=0.1, init_std=0.1,
                     batch_size=1024, weight_decay=0.01)
#: period 8 steps of 10,000 ratings: the learning rate drops 5% about once an epoch on this split.
GRAMIAN_SETTINGS = dict(embedding_size=64, epochs=30, learning_rate=0.02, regularization=0.1, init_std=0.1,
                        gravity=0.005, decay_pct=0.05, period=8, batch_size=10000)


def ours(kind: str, settings: dict, seed: int, train, test) -> tuple[float, float]:
    """(fit seconds, test RMSE) of our model; the rating matrix is built first, like Surprise's Trainset."""
    model = create(kind, seed=seed, **settings)
    matrix = as_matrix(train)
    _, seconds = timed(model.fit, matrix)
    return seconds, rmse(model.predict(test["user"], test["item"]), test["rating"])


# ----- scikit-surprise ------------------------------------------------------------------------
def surprise_trainset(train):
    from surprise import Dataset, Reader

    data = Dataset.load_from_df(train[["user", "item", "rating"]], Reader(rating_scale=(1, 5)))
    return data.build_full_trainset()


def surprise_svd(trainset, test, seed: int, biased: bool) -> tuple[float, float, float]:
    """(fit seconds, unclipped test RMSE, clipped test RMSE) of Surprise's SVD."""
    from surprise import SVD

    s = SURPRISE_SETTINGS
    algo = SVD(n_factors=s["embedding_size"], n_epochs=s["epochs"], lr_all=s["learning_rate"],
               reg_all=s["regularization"], init_std_dev=s["init_std"], biased=biased, random_state=seed)
    _, seconds = timed(algo.fit, trainset)
    pairs = list(zip(test["user"].tolist(), test["item"].tolist()))
    raw = [algo.predict(u, i, clip=False).est for u, i in pairs]
    clipped = [algo.predict(u, i).est for u, i in pairs]
    return seconds, rmse(raw, test["rating"]), rmse(clipped, test["rating"])


# ----- PyTorch AdamW on the biased model --------------------------------------------------------
def torch_adam(train, test, seed: int, threads: int) -> tuple[float, float]:
    """(fit seconds, test RMSE) of torch.optim.AdamW on mu + b_u + b_i + p_u.q_i, set up as our ``adam``."""
    import torch

    s = ADAM_SETTINGS
    matrix = as_matrix(train)
    users, items, ratings = matrix.coo()
    model = create("adam", seed=seed, **{**s, "epochs": 1})  # our initial factors and shuffles
    model._setup(matrix, np.random.default_rng(seed))
    P0, Q0 = model.user_factors.copy(), model.item_factors.copy()
    epochs = []
    for _ in range(s["epochs"]):
        kernels.shuffle(model._shuffled, int(model._rng.integers(2**63)))
        epochs.append([torch.from_numpy(a.astype(np.int64 if a.dtype.kind == "i" else np.float32))
                       for a in model._shuffled])

    def fit():
        P = torch.nn.Parameter(torch.from_numpy(P0.copy()))
        Q = torch.nn.Parameter(torch.from_numpy(Q0.copy()))
        bu = torch.nn.Parameter(torch.zeros(matrix.n_users))
        bi = torch.nn.Parameter(torch.zeros(matrix.n_items))
        mu = float(ratings.mean(dtype=np.float64))
        opt = torch.optim.AdamW([P, Q, bu, bi], lr=s["learning_rate"], weight_decay=s["weight_decay"],
                                betas=(0.9, 0.999), eps=1e-8)
        reg = s["regularization"]
        for u_all, i_all, r_all in epochs:
            for start in range(0, len(r_all), s["batch_size"]):
                batch = slice(start, start + s["batch_size"])
                u, i, r = u_all[batch], i_all[batch], r_all[batch]
                pu, qi = P[u], Q[i]
                pred = mu + bu[u] + bi[i] + (pu * qi).sum(1)
                loss = ((r - pred) ** 2).mean() + reg * ((pu * pu).sum(1) + (qi * qi).sum(1)).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        return mu, P.detach().numpy(), Q.detach().numpy(), bu.detach().numpy(), bi.detach().numpy()

    torch.set_num_threads(threads)
    (mu, P, Q, bu, bi), seconds = timed(fit)
    u, i = test["user"].to_numpy(), test["item"].to_numpy()
    pred = mu + bu[u] + bi[i] + np.einsum("ij,ij->i", P[u].astype(np.float64), Q[i])
    return seconds, rmse(pred, test["rating"])


# ----- the table --------------------------------------------------------------------------------
def row(name, peer, mine, theirs, extra=""):
    our_s = min(t for t, _ in mine)
    our_rmse = float(np.mean([e for _, e in mine]))
    if theirs:
        peer_s = min(t for t, _ in theirs)
        peer_rmse = float(np.mean([e for _, e in theirs]))
        return (f"{name:<12} {peer:<16} {our_s:9.3f} {peer_s:9.3f} {peer_s / our_s:7.1f}x "
                f"{our_rmse:8.4f} {peer_rmse:8.4f} {our_rmse - peer_rmse:+8.4f} {extra}")
    return f"{name:<12} {peer:<16} {our_s:9.3f} {'-':>9} {'-':>8} {our_rmse:8.4f} {'-':>8} {'-':>8} {extra}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="*", default=["sgd-biased", "sgd", "adam", "sgd-gramian"])
    args = parser.parse_args(argv)
    set_threads(args.threads)
    train, test = ml100k_split()
    print(f"ML-100K: {len(train)} training, {len(test)} test ratings; {args.threads} thread(s), "
          f"{args.repeats} repeats; times exclude numba compilation (warm-up fit first)")
    lines = []
    trainset = surprise_trainset(train) if {"sgd-biased", "sgd"} & set(args.only) else None
    for kind in ("sgd-biased", "sgd"):
        if kind not in args.only:
            continue
        ours(kind, SURPRISE_SETTINGS, 0, train, test)
        mine, theirs, clipped = [], [], []
        for seed in range(args.repeats):
            mine.append(ours(kind, SURPRISE_SETTINGS, seed, train, test))
            seconds, raw, clip = surprise_svd(trainset, test, seed, biased=kind == "sgd-biased")
            theirs.append((seconds, raw))
            clipped.append(clip)
        lines.append(row(kind, "surprise SVD", mine, theirs, f"(surprise clipped {np.mean(clipped):.4f})"))
    if "adam" in args.only:
        ours("adam", ADAM_SETTINGS, 0, train, test)
        mine, theirs = [], []
        for seed in range(args.repeats):
            mine.append(ours("adam", ADAM_SETTINGS, seed, train, test))
            theirs.append(torch_adam(train, test, seed, args.threads))
        lines.append(row("adam", "torch AdamW", mine, theirs))
    if "sgd-gramian" in args.only:
        ours("sgd-gramian", GRAMIAN_SETTINGS, 0, train, test)
        mine = [ours("sgd-gramian", GRAMIAN_SETTINGS, seed, train, test) for seed in range(args.repeats)]
        lines.append(row("sgd-gramian", "(none)", mine, []))
    print(f"{'model':<12} {'peer':<16} {'ours s':>9} {'peer s':>9} {'speedup':>8} "
          f"{'RMSE':>8} {'peer':>8} {'diff':>8}")
    for line in lines:
        print(line)
    print(f"adam: {ADAM_SETTINGS}")
    print(f"sgd-gramian: {GRAMIAN_SETTINGS}")


if __name__ == "__main__":
    main()
