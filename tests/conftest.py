"""Shared fixtures: small ratings tables built with plain numpy; numba's thread count."""

import numba
import numpy as np
import pandas as pd
import pytest


def make_ratings(users: int, items: int, per_user: int, seed: int = 0) -> pd.DataFrame:
    """``per_user`` distinct random items for each user, half-star ratings, and timestamps
    with a few ties, rows in random order; user/item dense int32 ids."""
    rng = np.random.default_rng(seed)
    user = np.repeat(np.arange(users, dtype=np.int32), per_user)
    item = np.concatenate([rng.choice(items, per_user, replace=False) for _ in range(users)]).astype(np.int32)
    order = rng.permutation(len(user))
    return pd.DataFrame({
        "user": user[order],
        "item": item[order],
        "rating": (rng.integers(1, 11, len(user)) / 2).astype(np.float32),
        "timestamp": rng.integers(1_000_000, 1_000_000 + len(user) // 2, len(user)).astype(np.int64),
    })


@pytest.fixture
def tiny_ratings() -> pd.DataFrame:
    """40 users x 30 items, 12 ratings each (480 rows)."""
    return make_ratings(40, 30, 12)


@pytest.fixture
def threads():
    """Set numba's thread count inside a test (at most its pool's); restored afterwards."""
    before = numba.get_num_threads()
    yield lambda n: numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(before)
