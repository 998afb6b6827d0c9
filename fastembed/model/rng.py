"""Random numbers of training: splitmix64 streams and the uniform initialisation of tables.

splitmix64 is counter-based, so independent streams are cheap to derive (one per thread,
one per table row) and results do not depend on how work is split between threads.
"""

import numpy as np

from fastembed.jit import INLINE, PARALLEL, SERIAL, njit, prange, thread_count


@njit(**INLINE)
def splitmix64(x):
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x, z ^ (z >> np.uint64(31))


# Tables smaller than this many elements are filled on the calling thread. The fill costs
# about 1 ns an element, so below 4M elements it takes a few milliseconds; the first parallel
# call of a process also loads Numba's threading layer and starts its threads, and each call
# wakes the team (tens of microseconds idle, milliseconds when another process holds a core).
# Below it, `fastembed train` on a small corpus (TREC-6: ~0.5M elements) neither loads a
# parallel kernel nor sets Numba's thread count, which also starts the threading layer.
PARALLEL_MIN_ELEMENTS = 4 << 20


@njit(**INLINE)
def _fill_row(table, i, bound, base):
    """Row ``i`` of :func:`init_uniform`: element (i, j) from (seed, i, j) only."""
    state = base ^ (np.uint64(i) * np.uint64(0xD6E8FEB86659FD93))
    for j in range(table.shape[1]):
        state, z = splitmix64(state)
        u = np.float32((z >> np.uint64(40)) * (1.0 / 16777216.0))  # 24 random bits in [0, 1)
        table[i, j] = np.float32(bound) * (np.float32(2.0) * u - np.float32(1.0))


@njit(**SERIAL)
def init_uniform_serial(table, bound, seed):
    """:func:`init_uniform` on the calling thread."""
    base = np.uint64(seed) * np.uint64(0x100000001B3)
    for i in range(table.shape[0]):
        _fill_row(table, i, bound, base)


@njit(**PARALLEL)
def init_uniform_parallel(table, bound, seed):
    """:func:`init_uniform` on the thread team, one row per iteration."""
    base = np.uint64(seed) * np.uint64(0x100000001B3)
    for i in prange(table.shape[0]):
        _fill_row(table, i, bound, base)


def init_uniform(table, bound, seed, threads=0):
    """Fill ``table`` (n_rows, dim) float32 in place with U(-bound, bound).

    Element (i, j) depends only on (seed, i, j), not on the thread count, so the serial and
    the parallel kernel (tables of :data:`PARALLEL_MIN_ELEMENTS` or more) write the same bits.
    ``threads``: at most this many threads for the parallel kernel (0: Numba's setting).
    """
    if table.size < PARALLEL_MIN_ELEMENTS:
        init_uniform_serial(table, bound, seed)
        return
    if not threads:
        init_uniform_parallel(table, bound, seed)
        return
    with thread_count(threads):
        init_uniform_parallel(table, bound, seed)
