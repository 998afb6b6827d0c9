"""Random numbers of training: splitmix64 streams and the uniform initialisation of tables.

splitmix64 is counter-based, so independent streams are cheap to derive (one per thread,
one per table row) and results do not depend on how work is split between threads.
"""

import numpy as np

from fastembed.jit import INLINE, PARALLEL, njit, prange


@njit(**INLINE)
def splitmix64(x):
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x, z ^ (z >> np.uint64(31))


@njit(**PARALLEL)
def init_uniform(table, bound, seed):
    """Fill ``table`` (n_rows, dim) float32 in place with U(-bound, bound).

    Element (i, j) depends only on (seed, i, j), not on the thread count.
    """
    n_rows, dim = table.shape
    base = np.uint64(seed) * np.uint64(0x100000001B3)
    for i in prange(n_rows):
        state = base ^ (np.uint64(i) * np.uint64(0xD6E8FEB86659FD93))
        for j in range(dim):
            state, z = splitmix64(state)
            u = np.float32((z >> np.uint64(40)) * (1.0 / 16777216.0))  # 24 random bits in [0, 1)
            table[i, j] = np.float32(bound) * (np.float32(2.0) * u - np.float32(1.0))
