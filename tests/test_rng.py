"""The uniform initialisation of tables (fastembed.model.rng.init_uniform).

Both kernels, the serial one (small tables) and the parallel one (large tables), are checked
against the formula replayed in Python integers, and against each other at every thread count:
a table's values depend on (seed, row, column) only.
"""

import numba
import numpy as np
import pytest

from fastembed.model import rng

MASK = (1 << 64) - 1


def reference_table(n_rows, dim, bound, seed):
    """Element (i, j): the (j + 1)-th splitmix64 output from the row's state, scaled to U(-bound, bound)."""
    table = np.empty((n_rows, dim), np.float32)
    base = (seed * 0x100000001B3) & MASK
    for i in range(n_rows):
        state = base ^ ((i * 0xD6E8FEB86659FD93) & MASK)
        for j in range(dim):
            state = (state + 0x9E3779B97F4A7C15) & MASK
            z = state
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            z ^= z >> 31
            u = np.float32((z >> 40) / 2.0**24)
            table[i, j] = np.float32(bound) * (np.float32(2.0) * u - np.float32(1.0))
    return table


@pytest.mark.parametrize("kernel", [rng.init_uniform_serial, rng.init_uniform_parallel])
def test_kernels_match_the_formula(kernel):
    table = np.full((37, 5), np.nan, np.float32)
    kernel(table, 0.25, 7)
    np.testing.assert_array_equal(table, reference_table(37, 5, 0.25, 7))


def test_parallel_kernel_is_thread_count_independent():
    serial = np.empty((301, 16), np.float32)
    rng.init_uniform_serial(serial, 0.05, 3)
    n_threads = numba.get_num_threads()
    try:
        for threads in range(1, numba.config.NUMBA_NUM_THREADS + 1):
            numba.set_num_threads(threads)
            table = np.empty_like(serial)
            rng.init_uniform_parallel(table, 0.05, 3)
            np.testing.assert_array_equal(table, serial)
    finally:
        numba.set_num_threads(n_threads)


def test_init_uniform_picks_a_kernel_by_size(monkeypatch):
    """Below the threshold the serial kernel runs; from it on, the parallel one: same bits."""
    calls = []
    for name in ("init_uniform_serial", "init_uniform_parallel"):
        kernel = getattr(rng, name)
        monkeypatch.setattr(rng, name, lambda t, b, s, k=kernel, n=name: (calls.append(n), k(t, b, s)))
    monkeypatch.setattr(rng, "PARALLEL_MIN_ELEMENTS", 100)
    small, large = np.empty((9, 11), np.float32), np.empty((10, 10), np.float32)
    rng.init_uniform(small, 0.5, 1, 1)
    rng.init_uniform(large, 0.5, 1, 1)
    assert calls == ["init_uniform_serial", "init_uniform_parallel"]
    np.testing.assert_array_equal(small, reference_table(9, 11, 0.5, 1))
    np.testing.assert_array_equal(large, reference_table(10, 10, 0.5, 1))


def test_a_thread_count_given_to_init_uniform_is_not_left_behind(monkeypatch):
    """Numba's thread count belongs to the calling thread: training with threads=1 must not leave
    later parallel work of that thread (batch prediction) on one thread."""
    monkeypatch.setattr(rng, "PARALLEL_MIN_ELEMENTS", 100)
    before = numba.get_num_threads()
    rng.init_uniform(np.empty((10, 10), np.float32), 0.5, 1, threads=1)
    assert numba.get_num_threads() == before
