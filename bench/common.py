"""Shared helpers of the benchmarks: ML-100K, its 80/20 split, timing, threads."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RATINGS = ROOT / "results" / "data" / "ml-100k" / "ratings.parquet"


def ml100k_ratings() -> pd.DataFrame:
    """ML-100K ratings (user, item dense 0-based; rating; timestamp), built by the workflow if missing."""
    if not RATINGS.exists():
        snakemake = Path(sys.executable).with_name("snakemake")
        command = [str(snakemake) if snakemake.exists() else "snakemake", "--cores", "1",
                   str(RATINGS.relative_to(ROOT))]
        subprocess.run(command, cwd=ROOT, check=True)
    return pd.read_parquet(RATINGS)


def ml100k_split(seed: int = 42, test_fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random holdout of rows; test rows with a user or item unseen in training are dropped."""
    ratings = ml100k_ratings()
    order = np.random.default_rng(seed).permutation(len(ratings))
    n_train = int(round(len(ratings) * (1.0 - test_fraction)))
    train = ratings.iloc[order[:n_train]].reset_index(drop=True)
    test = ratings.iloc[order[n_train:]]
    known = test["user"].isin(train["user"].unique()) & test["item"].isin(train["item"].unique())
    return train, test[known].reset_index(drop=True)


def timed(fn, *args, **kw):
    """(fn(*args, **kw), wall seconds)."""
    start = time.perf_counter()
    result = fn(*args, **kw)
    return result, time.perf_counter() - start


def rmse(pred, truth) -> float:
    diff = np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return float(np.sqrt(np.mean(diff * diff)))


def set_threads(n: int) -> None:
    """Use ``n`` threads in numba and in the peers' OpenMP / BLAS pools."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(n)
    import numba  # NUMBA_NUM_THREADS stays as is: numba refuses a change once its pool runs

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass
