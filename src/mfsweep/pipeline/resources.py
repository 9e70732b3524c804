"""Threads, memory (MB) and runtime (minutes) of the workflow's jobs, from the ratings count.

The rules hand these to a cluster (``resources: mem_mb, runtime`` and ``threads:``), so a
job asks for what it needs rather than a flat default. Every figure comes from the
measurements below, taken with this package's jobs on synthetic data
(``mfsweep.data.synthetic``: 100k ratings on 943 x 1682, 1M on 6040 x 3706, 5M on
30000 x 15000; a random split with 72% training, 8% validation, 20% test), one
thread, on a shared 2-core machine, each run in a fresh process (peak RSS from
``getrusage``):

================================  ===========  ==========  ==========
job (embedding size 64)           100k         1M          5M
================================  ===========  ==========  ==========
train + evaluate, peak RSS        275 MB       355-400 MB  720-780 MB
  ... at size 256 (als-biased)    .            381 MB      769 MB
  ... at size 256 (adam)          .            399 MB      831 MB
als-biased, CPU s per epoch       0.005        0.14        0.68
als-biased at size 256            .            1.19        6.3
sgd-biased                        0.0015       0.015       0.12
bpr (one negative)                0.008        .           1.0-1.25
bpr at size 256                   .            .           1.6-1.75
sgd-gramian                       0.028        0.44        6.2
adam                              0.009        0.21        5.6
validation per epoch (2000 users) 0.02-0.1     0.05        0.13
evaluate (all test users)         0.05-0.2     0.25-0.45   2.6-5.7
split (peak RSS / s)              165 MB/0.1   250 MB/0.5  540 MB/1.0
prepare from CSV or a MovieLens   213 MB/0.1   316 MB/0.4  710-825 MB/3.7
archive (peak RSS / s)
================================  ===========  ==========  ==========

From which, per job:

- A job's Python process holds about 180 MB once numpy, pandas, pyarrow, numba and
  the package are imported, 270 MB with its first buffers (PROCESS_MB). Memory then
  grows by about 135 bytes per training rating (the frames as read, the matrix by user
  and by item, the validation part), and by a few copies of the factors (FACTOR_COPIES):
  the model's own, the best epoch's snapshot, the optimizer's moments for ``adam``.
- On a cluster a job also runs two snakemake processes around the script (the batch
  step and the ``srun`` step, about 240 MB each), counted in a job's memory wherever
  the cluster enforces it: SNAKEMAKE_MB.
- Per epoch, ALS costs c + a k + b k^2 per training rating; per-rating SGD c + a k;
  ``bpr`` c + a k per step (``negatives`` steps a rating; three rows gathered at random
  and a sampled negative, so several times a step of SGD); ``sgd-gramian`` adds a term in (steps x rows x k) and ``adam`` updates every row at
  each minibatch step (its dense AdamW), so both grow with the number of users and
  items, not only with the ratings. Validation ranks up to 2000 users over every item
  each epoch; ``evaluate`` ranks every test user.

Safety: memory is MEMORY_SAFETY (1.5) times the estimate of the script plus the
snakemake processes, at least MIN_MEM_MB; runtime is RUNTIME_SAFETY (3) times the
estimate (cluster cores are often slower than this machine, nodes are shared, and a
job killed at its limit costs far more than a generous limit), at least
MIN_RUNTIME_MIN. Runtime assumes one thread (more threads only make a job finish
early) and every epoch run (early stopping only shortens a trial).

``n_ratings`` is the number of ratings the job reads as training data: the rows of
the fold's ``train.parquet`` for train and evaluate, of the dataset's
``ratings.parquet`` for split, and ``dataset_ratings(source)`` for prepare.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from mfsweep.data import release
from mfsweep.io import parquet_rows

MB = 1 << 20

#: The snakemake processes that wrap a job on a cluster (batch step and srun step).
SNAKEMAKE_MB = 500
#: A job script's Python process with its imports and first buffers.
PROCESS_MB = 270
#: Memory per training rating in train and evaluate (frames, both matrix orientations, validation).
TRAIN_BYTES_PER_RATING = 135
#: Memory per rating of split (the ratings and the three parts) and prepare (parsing the source).
SPLIT_BYTES_PER_RATING = 100
PREPARE_BYTES_PER_RATING = 150
#: Copies of the factor matrices (users + items) x embedding_size x float32 alive while training.
FACTOR_COPIES = {"als": 4, "als-biased": 4, "wals": 4, "sgd": 4, "sgd-biased": 4, "sgd-gramian": 5, "adam": 6,
                 "bpr": 4}
#: Copies alive while evaluating: the loaded model and its float32 working arrays.
EVALUATE_FACTOR_COPIES = 3

#: CPU seconds per training rating and epoch: ALS c + a k + b k^2, SGD c + a k.
ALS_SECONDS = (1.5e-8, 1.8e-9, 2.0e-11)
SGD_SECONDS = (1.5e-8, 3.0e-10)
#: bpr: CPU seconds per step (a rating and one negative), c + a k.
BPR_SECONDS = (2.5e-7, 1.0e-9)
#: sgd-gramian: per training rating and unit of embedding size, and per step x row x unit of size.
GRAMIAN_SECONDS = (5.0e-9, 5.0e-9)
#: adam: per step and row, c + a k (every row is updated at every minibatch).
ADAM_STEP_SECONDS = (1.2e-8, 5.0e-10)
#: Ranking one user over one item at one unit of embedding size (validation, evaluate).
RANK_SECONDS = 2.0e-10
#: Users ranked by the validation of every epoch (the config's evaluation.validation_users).
VALIDATION_USERS = 2000
#: Per job: starting snakemake twice, imports, numba's cached code; and reading per rating.
STARTUP_SECONDS = 20.0
READ_SECONDS_PER_RATING = 1.0e-6
#: split and prepare: fixed seconds and seconds per rating.
DATA_SECONDS = (60.0, 2.0e-6)

MEMORY_SAFETY = 1.5
RUNTIME_SAFETY = 3.0
MIN_MEM_MB = 1000
MIN_RUNTIME_MIN = 5

#: Bytes per rating line of a delimited text file, at the short end (user,item,rating,time).
TEXT_BYTES_PER_RATING = 16


# ----- threads ------------------------------------------------------------------------------
def prepare_threads(n_ratings: int) -> int:
    """Threads of prepare (parsing and the synthetic generator are parallel): 1 below 5M, else 2."""
    return 1 if _count("n_ratings", n_ratings) < 5_000_000 else 2


# ----- memory ---------------------------------------------------------------------------------
def train_mem_mb(n_ratings: int, n_users: int, n_items: int, embedding_size, kind: str) -> int:
    """Memory (MB) of a train job; ``embedding_size`` is one size or the sizes of a batch's trials.

    A batch trains its trials one after another but keeps every trial's best state
    until the end: the working copies of the largest, plus one copy of each.
    """
    n = _count("n_ratings", n_ratings)
    rows = _count("n_users", n_users) + _count("n_items", n_items)
    sizes = _sizes(embedding_size)
    copies = FACTOR_COPIES[_kind(kind)]
    factors = rows * 4 * (copies * max(sizes) + sum(sizes))
    return _memory(n * TRAIN_BYTES_PER_RATING + factors)


def evaluate_mem_mb(n_ratings: int, n_users: int, n_items: int, embedding_size) -> int:
    """Memory (MB) of an evaluate job (one trial's model loaded at a time)."""
    n = _count("n_ratings", n_ratings)
    rows = _count("n_users", n_users) + _count("n_items", n_items)
    factors = rows * 4 * EVALUATE_FACTOR_COPIES * max(_sizes(embedding_size))
    return _memory(n * TRAIN_BYTES_PER_RATING + factors)


def split_mem_mb(n_ratings: int) -> int:
    """Memory (MB) of a split job over a dataset of ``n_ratings``."""
    return _memory(_count("n_ratings", n_ratings) * SPLIT_BYTES_PER_RATING)


def prepare_mem_mb(n_ratings: int) -> int:
    """Memory (MB) of prepare for a dataset of ``n_ratings`` (see ``dataset_ratings``)."""
    return _memory(_count("n_ratings", n_ratings) * PREPARE_BYTES_PER_RATING)


def _memory(script_bytes: float) -> int:
    script_mb = PROCESS_MB + script_bytes / MB
    return max(MIN_MEM_MB, _round_up(SNAKEMAKE_MB + MEMORY_SAFETY * script_mb, 100))


# ----- runtime --------------------------------------------------------------------------------
def train_runtime_min(n_ratings: int, embedding_size, max_epochs: int, kind: str,
                      n_users: int | None = None, n_items: int | None = None,
                      batch_size: int | None = None, validation_users: int = VALIDATION_USERS,
                      negatives: int | None = None) -> int:
    """Runtime limit (minutes) of a train job running every epoch of each of its trials.

    ``embedding_size`` is one size or the sizes of a batch's trials (their times add up).
    Without ``n_users``/``n_items`` they are estimated as n_ratings / 60 each (MovieLens
    has 35 to 110 ratings per user-or-item row); ``adam`` and ``sgd-gramian`` depend on
    them, so pass them when known. ``batch_size`` and ``negatives`` (``bpr``) default to
    the kind's own.
    """
    n = _count("n_ratings", n_ratings)
    epochs = _count("max_epochs", max_epochs, minimum=1)
    kind = _kind(kind)
    users, items = _users_items(n, n_users, n_items)
    batch = default_param(kind, "batch_size", 1) if batch_size is None else _count("batch_size", batch_size, minimum=1)
    draws = default_param(kind, "negatives", 1) if negatives is None else _count("negatives", negatives, minimum=1)
    seconds = STARTUP_SECONDS + n * READ_SECONDS_PER_RATING
    for k in _sizes(embedding_size):
        epoch = epoch_seconds(n, users + items, k, kind, batch, draws)
        validation = min(users, validation_users) * items * k * RANK_SECONDS
        seconds += epochs * (epoch + validation)
    return _minutes(seconds)


def epoch_seconds(n_ratings: int, rows: int, embedding_size: int, kind: str, batch_size: int = 1,
                  negatives: int = 1) -> float:
    """Estimated CPU seconds of one training epoch on one thread (before the safety factor)."""
    k = float(embedding_size)
    if kind in ("als", "als-biased", "wals"):
        c, a, b = ALS_SECONDS
        return n_ratings * (c + a * k + b * k * k)
    if kind == "bpr":
        c, a = BPR_SECONDS
        return n_ratings * negatives * (c + a * k)
    c, a = SGD_SECONDS
    seconds = n_ratings * (c + a * k)
    steps = math.ceil(n_ratings / batch_size)
    if kind == "sgd-gramian":
        per_rating, per_step_row = GRAMIAN_SECONDS
        seconds += n_ratings * per_rating * k + steps * rows * per_step_row * k
    elif kind == "adam":
        c, a = ADAM_STEP_SECONDS
        seconds += steps * rows * (c + a * k)
    return seconds


def evaluate_runtime_min(n_ratings: int, embedding_size, n_users: int | None = None,
                         n_items: int | None = None) -> int:
    """Runtime limit (minutes) of an evaluate job ranking every user over every item
    (the sizes of a batch's trials add up)."""
    n = _count("n_ratings", n_ratings)
    users, items = _users_items(n, n_users, n_items)
    seconds = STARTUP_SECONDS + n * READ_SECONDS_PER_RATING
    seconds += sum(users * items * k * RANK_SECONDS for k in _sizes(embedding_size))
    return _minutes(seconds)


def split_runtime_min(n_ratings: int) -> int:
    """Runtime limit (minutes) of a split job."""
    fixed, per_rating = DATA_SECONDS
    return _minutes(fixed + _count("n_ratings", n_ratings) * per_rating)


def prepare_runtime_min(n_ratings: int) -> int:
    """Runtime limit (minutes) of prepare."""
    return split_runtime_min(n_ratings)


def _minutes(seconds: float) -> int:
    return max(MIN_RUNTIME_MIN, math.ceil(RUNTIME_SAFETY * seconds / 60))


def embedding_sizes(kind: str, trials) -> list[int]:
    """The embedding size of each trial (parameter dicts) of a unit, the kind's default where unset."""
    return [int(size) for size in trial_values(kind, trials, "embedding_size")]


def smallest_batch(kind: str, trials) -> int | None:
    """The smallest ``batch_size`` among a unit's trials (its slowest epochs; the kind's
    default where unset); None for kinds without minibatches."""
    sizes = [size for size in trial_values(kind, trials, "batch_size") if size is not None]
    return min(int(size) for size in sizes) if sizes else None


def most_negatives(kind: str, trials) -> int | None:
    """The most ``negatives`` among a unit's trials (its slowest epochs; the kind's default
    where unset); None for kinds without negative sampling."""
    counts = [count for count in trial_values(kind, trials, "negatives") if count is not None]
    return max(int(count) for count in counts) if counts else None


def trial_values(kind: str, trials, name: str) -> list:
    """Parameter ``name`` of each trial (parameter dicts), the kind's default where unset."""
    default = default_param(kind, name)
    return [params.get(name, default) for params in trials]


def default_param(kind: str, name: str, otherwise=None):
    """The default of parameter ``name`` of a model kind (``otherwise`` where the kind has none)."""
    from mfsweep.models import model_class
    from mfsweep.models.base import COMMON_DEFAULTS

    return {**COMMON_DEFAULTS, **model_class(_kind(kind)).defaults}.get(name, otherwise)


# ----- dataset size before prepare ----------------------------------------------------------
def dataset_ratings(source: dict, path: str | os.PathLike | None = None) -> int:
    """Ratings a dataset will have, known before prepare runs (for prepare's resources).

    ``source`` is the dataset's config mapping: MovieLens releases have known sizes, a
    synthetic source says its own, and a user file is estimated from its size (a bound:
    TEXT_BYTES_PER_RATING bytes a line) or read from its metadata (parquet). ``path``
    overrides the file's configured path (a rule's input, relative to the workdir).
    """
    kind = source.get("source")
    if kind == "movielens":
        return release(source.get("name", "")).n_ratings
    if kind == "synthetic":
        return _count("ratings", source.get("ratings"))
    if kind == "file":
        file = Path(path if path is not None else source.get("path", ""))
        if not file.is_file():
            raise ValueError(f"dataset file {str(file)!r} not found")
        if file.suffix.lower() in (".parquet", ".pq"):
            return parquet_rows(file)
        return max(1, file.stat().st_size // TEXT_BYTES_PER_RATING)
    raise ValueError(f"unknown dataset source {kind!r}; known: movielens, file, synthetic")


# ----- checks ---------------------------------------------------------------------------------
def _count(name: str, value, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _sizes(embedding_size) -> list[int]:
    sizes = [embedding_size] if np.ndim(embedding_size) == 0 else list(embedding_size)
    if not sizes:
        raise ValueError("embedding_size: no sizes given")
    return [_count("embedding_size", k, minimum=1) for k in sizes]


def _kind(kind: str) -> str:
    if kind not in FACTOR_COPIES:
        raise ValueError(f"unknown model kind {kind!r}; allowed: {', '.join(FACTOR_COPIES)}")
    return kind


def _users_items(n: int, n_users: int | None, n_items: int | None) -> tuple[int, int]:
    guess = max(500, n // 60)
    users = guess if n_users is None else _count("n_users", n_users)
    items = guess if n_items is None else _count("n_items", n_items)
    return users, items


def _round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)
