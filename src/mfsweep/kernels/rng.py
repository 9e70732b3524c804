"""splitmix64: the random numbers of the kernels (shuffles, negatives) and of the synthetic data.

A stream is a uint64 state that advances by ``GOLDEN`` a draw; ``splitmix64`` turns a
state into 64 well-mixed bits. ``stream(seed, index)`` starts an independent stream per
(seed, index), so a kernel that keys its draws by position rather than by thread gives
the same numbers on any number of threads. Integer arithmetic only (and exact float
conversion in ``uniform``): the same bits wherever it is compiled.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: splitmix64's increment (2^64 / golden ratio).
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True)
def splitmix64(z):
    """splitmix64's output for state ``z`` (uint64): 64 random bits."""
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def stream(seed, index):
    """The start of an independent random stream for (seed, index)."""
    return splitmix64(seed ^ splitmix64(np.uint64(index) * GOLDEN + np.uint64(1)))


@njit(cache=True)
def uniform(state):
    """(next state, a uniform number in [0, 1)) from a stream."""
    state = state + GOLDEN
    return state, float(splitmix64(state) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def below(bits, n):
    """A pick in 0..n-1 from 64 random bits: (their 32 high bits * n) >> 32, uniform up to a
    bias below n / 2^32."""
    return np.int64(((bits >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))
