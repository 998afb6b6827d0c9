"""Numba kernels that group equal ids: the stable sorts behind sparse gradients.

``scan_ids`` (one pass: min, max, sortedness), a stable counting sort for small id spans
(:func:`counting_transpose`, parallel) or an LSD radix sort (:func:`radix_transpose`), then
per-group sums (:func:`group_sums`).  :func:`coalesce_unchecked` chains them; the validated
entry point is :func:`fastembed.kernels.coalesce`.  Contracts as in :mod:`fastembed.kernels.lookup`.
"""

import numpy as np

from fastembed.jit import PARALLEL, SERIAL, njit, prange, prefetch_distance, prefetch_row
from numba import get_num_threads

__all__ = [
    "coalesce_unchecked",
    "counting_transpose",
    "group_ids",
    "group_sums",
    "radix_transpose",
    "scan_ids",
    "sum_chunks",
    "transpose",
]


# Counting sort is used to group ids when the id span (max - min + 1) is at
# most COUNTING_FACTOR * len(ids) + COUNTING_SLACK; a stable LSD radix sort
# otherwise (e.g. a few hashed ids spread over 2**40).  The counting sort runs
# in min(threads, MAX_SORT_CHUNKS) parallel chunks, each with its own int32
# histogram over the span (each chunk costs one more pass over the span).
# Sums over groups run in SUM_CHUNKS chunks of ~equal work, statically shared
# by the threads.  Neither chunking changes any result.
COUNTING_FACTOR = 2
COUNTING_SLACK = 1 << 16
MAX_SORT_CHUNKS = 4
SUM_CHUNKS = 64
RADIX_BITS = 16
RADIX = 1 << RADIX_BITS


@njit(**SERIAL)
def scan_ids(ids):
    """One pass over ``ids``: ``(min, max, n_not_increasing)``.

    ``n_not_increasing`` counts the positions ``i >= 1`` with
    ``ids[i] <= ids[i - 1]``; it is 0 exactly when ``ids`` is strictly
    increasing (sorted and unique).  For an empty array returns ``(0, -1, 0)``.
    """
    n = ids.shape[0]
    if n == 0:
        return np.int64(0), np.int64(-1), np.int64(0)
    lo = np.int64(ids[0])
    hi = np.int64(ids[0])
    bad = np.int64(0)
    for i in range(1, n):
        v = np.int64(ids[i])
        lo = min(lo, v)
        hi = max(hi, v)
        bad += v <= ids[i - 1]
    return lo, hi, bad


@njit(**SERIAL)
def _radix_order(ids, lo, hi):
    """Stable argsort of ``ids`` (int64 positions), LSD radix sort on ``ids - lo``.

    16-bit digits, as many passes as the span ``hi - lo`` needs (at most 4).
    Keys are computed modulo 2**64, so any int64 ``lo <= ids <= hi`` works.
    """
    n = ids.shape[0]
    base = np.uint64(lo)
    span = np.uint64(hi) - base
    keys = np.empty(n, np.uint64)
    for k in range(n):
        keys[k] = np.uint64(ids[k]) - base
    order = np.arange(n)
    tmp = np.empty(n, np.int64)
    count = np.empty(RADIX + 1, np.int64)
    mask = np.uint64(RADIX - 1)
    shift = np.uint64(0)
    while shift < np.uint64(64) and (span >> shift) != np.uint64(0):
        count[:] = 0
        for k in range(n):
            count[np.int64((keys[k] >> shift) & mask) + 1] += 1
        for d in range(RADIX):
            count[d + 1] += count[d]
        for p in range(n):
            k = order[p]
            d = np.int64((keys[k] >> shift) & mask)
            tmp[count[d]] = k
            count[d] += 1
        order, tmp = tmp, order
        shift += np.uint64(RADIX_BITS)
    return order


def use_counting(n, lo, hi):
    """Whether :func:`transpose` groups ``n`` ids in ``[lo, hi]`` by counting sort."""
    return 0 < n < 2**31 and int(hi) - int(lo) < COUNTING_FACTOR * n + COUNTING_SLACK


@njit(**SERIAL)
def _sort_chunks(offsets, n, n_chunks):
    """Split ``n`` positions into ``n_chunks`` ranges of ~equal size.

    Returns ``n_chunks + 1`` non-decreasing bounds: bag bounds (ranges of
    ``offsets``) or, when ``offsets`` is empty (each position its own bag),
    position bounds.
    """
    bounds = np.empty(n_chunks + 1, np.int64)
    if offsets.shape[0] == 0:
        for t in range(n_chunks + 1):
            bounds[t] = (n * t) // n_chunks
    else:
        n_bags = offsets.shape[0] - 1
        for t in range(n_chunks + 1):
            bounds[t] = min(np.searchsorted(offsets, (n * t) // n_chunks), n_bags)
        bounds[0] = 0
        bounds[n_chunks] = n_bags
    return bounds


@njit(**PARALLEL)
def counting_transpose(ids, offsets, lo, hist, uniq, starts, src, pos):
    """Stable counting sort of the positions of ``ids`` by id (a CSR transpose).

    Inputs: ``ids`` (int32/int64) with ``lo <= ids`` and a small span, fewer
    than ``2**31`` of them (see :func:`use_counting`); ``offsets`` the bags
    (int64), or an empty array for "each position is its own bag".
    Work/output buffers, allocated by the caller: ``hist`` int32 zeros
    ``(n_chunks, span)``; ``uniq`` (dtype of ``ids``) and ``starts`` (int64)
    of at least ``min(span, n)`` and ``min(span, n) + 1`` entries; ``src``
    int64 ``(n,)``; ``pos`` int64, ``(n,)`` to record positions (bag mode) or
    empty.

    Returns ``nnz``, having written ``uniq[:nnz]`` the sorted unique ids,
    ``starts[:nnz + 1]`` the group bounds and, for the ``p``-th position in
    (id, position) order, ``src[p]`` its bag (its position if ``offsets`` is
    empty) and ``pos[p]`` its position (if ``pos`` is not empty).

    Parallel: each of the ``n_chunks = len(hist)`` chunks (contiguous bags or
    positions) counts, then scatters, its own positions with its own cursors,
    placed after those of the chunks before it, so the sort is stable
    whatever the chunking or the thread count.
    """
    n = ids.shape[0]
    n_chunks = hist.shape[0]
    span = hist.shape[1]
    identity = offsets.shape[0] == 0
    keep_pos = pos.shape[0] > 0
    bounds = _sort_chunks(offsets, n, n_chunks)
    for t in prange(n_chunks):
        if identity:
            for k in range(bounds[t], bounds[t + 1]):
                hist[t, ids[k] - lo] += 1
        else:
            for k in range(offsets[bounds[t]], offsets[bounds[t + 1]]):
                hist[t, ids[k] - lo] += 1
    u = 0
    p = 0
    for v in range(span):
        first = p
        for t in range(n_chunks):
            c = hist[t, v]
            hist[t, v] = p  # becomes this chunk's write cursor for id v
            p += c
        if p != first:
            uniq[u] = v + lo
            starts[u] = first
            u += 1
    starts[u] = n
    for t in prange(n_chunks):
        if identity:
            for k in range(bounds[t], bounds[t + 1]):
                v = ids[k] - lo
                dst = hist[t, v]
                hist[t, v] = dst + 1
                src[dst] = k
        else:
            for b in range(bounds[t], bounds[t + 1]):
                for k in range(offsets[b], offsets[b + 1]):
                    v = ids[k] - lo
                    dst = hist[t, v]
                    hist[t, v] = dst + 1
                    src[dst] = b
                    if keep_pos:
                        pos[dst] = k
    return u


@njit(**SERIAL)
def radix_transpose(ids, offsets, lo, hi, keep_pos):
    """:func:`counting_transpose` for any span, by a stable LSD radix sort (serial).

    Allocates its outputs; returns ``(uniq, starts, src, pos)`` (``pos`` is
    empty unless ``keep_pos`` and ``offsets`` is not empty).  O(n) per 16 bits
    of ``hi - lo``; any int64 values.
    """
    n = ids.shape[0]
    identity = offsets.shape[0] == 0
    if n == 0:
        return (np.empty(0, ids.dtype), np.zeros(1, np.int64), np.empty(0, np.int64),
                np.empty(0, np.int64))
    order = _radix_order(ids, lo, hi)
    nnz = 1
    for p in range(1, n):
        if ids[order[p]] != ids[order[p - 1]]:
            nnz += 1
    uniq = np.empty(nnz, ids.dtype)
    starts = np.empty(nnz + 1, np.int64)
    uniq[0] = ids[order[0]]
    starts[0] = 0
    u = 1
    for p in range(1, n):
        v = ids[order[p]]
        if v != ids[order[p - 1]]:
            uniq[u] = v
            starts[u] = p
            u += 1
    starts[nnz] = n
    if identity:
        return uniq, starts, order, np.empty(0, np.int64)
    bag = np.empty(n, np.int64)
    for b in range(offsets.shape[0] - 1):
        for k in range(offsets[b], offsets[b + 1]):
            bag[k] = b
    src = np.empty(n, np.int64)
    for p in range(n):
        src[p] = bag[order[p]]
    if keep_pos:
        return uniq, starts, src, order
    return uniq, starts, src, np.empty(0, np.int64)


def transpose(ids, offsets, lo, hi, keep_pos=False):
    """Group the positions of ``ids`` by id: ``(uniq, starts, src, pos)``.

    See :func:`counting_transpose` (used when the span is small; buffers
    allocated here with NumPy, whose large allocations use transparent huge
    pages: several times cheaper to fault in than Numba's) and
    :func:`radix_transpose` (otherwise).
    """
    n = ids.shape[0]
    if not use_counting(n, lo, hi):
        return radix_transpose(ids, offsets, lo, hi, keep_pos)
    span = int(hi) - int(lo) + 1
    cap = min(span, n)
    hist = np.zeros((max(1, min(get_num_threads(), MAX_SORT_CHUNKS)), span), np.int32)
    uniq = np.empty(cap, ids.dtype)
    starts = np.empty(cap + 1, np.int64)
    src = np.empty(n, np.int64)
    pos = np.empty(n if (keep_pos and offsets.shape[0] > 0) else 0, np.int64)
    nnz = counting_transpose(ids, offsets, lo, hist, uniq, starts, src, pos)
    return uniq[:nnz].copy(), starts[: nnz + 1].copy(), src, pos


def group_ids(ids, lo, hi):
    """Stable grouping of equal ids: ``(uniq, starts, order)``.

    ``uniq`` the sorted unique ids, ``starts`` int64 group bounds and
    ``order`` the int64 positions sorted by (id, position): the positions
    holding ``uniq[u]`` are ``order[starts[u]:starts[u + 1]]``.  ``lo``/``hi``
    are the min and max of ``ids`` (:func:`scan_ids`).
    """
    uniq, starts, order, _ = transpose(ids, np.empty(0, np.int64), lo, hi)
    return uniq, starts, order


@njit(**SERIAL)
def sum_chunks(starts):
    """Split the groups into ``SUM_CHUNKS`` ranges of ~equal numbers of positions."""
    return _sort_chunks(starts, starts[starts.shape[0] - 1], SUM_CHUNKS)


@njit(**PARALLEL)
def group_sums(row_grads, starts, order, out):
    """``out[u] = row_grads[order[p0]] + row_grads[order[p0 + 1]] + ...`` over group ``u``.

    Starts from the first gradient (no ``0 +``), in position order, one
    thread per output row, groups split into chunks of ~equal work.  ``out``
    is ``(len(starts) - 1, dim)`` of the grads dtype; returned.
    """
    nnz = starts.shape[0] - 1
    n = starts[nnz]
    dim = row_grads.shape[1]
    ahead = prefetch_distance(row_grads)
    bounds = sum_chunks(starts)
    for t in prange(bounds.shape[0] - 1):
        for u in range(bounds[t], bounds[t + 1]):
            p0 = starts[u]
            k = order[p0]
            for j in range(dim):
                out[u, j] = row_grads[k, j]
            for p in range(p0 + 1, starts[u + 1]):
                if p + ahead < n:
                    prefetch_row(row_grads, order[p + ahead])
                k = order[p]
                for j in range(dim):
                    out[u, j] += row_grads[k, j]
    return out


def coalesce_unchecked(rows, row_grads, scan=None, copy=True):
    """:func:`fastembed.kernels.coalesce` without validation (any int64 values).

    ``scan`` is ``scan_ids(rows)`` if already known.  When ``rows`` is already
    strictly increasing, returns copies of the inputs (the inputs themselves
    if ``copy`` is false).
    """
    lo, hi, n_not_increasing = scan_ids(rows) if scan is None else scan
    if n_not_increasing == 0:
        return (rows.copy(), row_grads.copy()) if copy else (rows, row_grads)
    uniq, starts, order = group_ids(rows, lo, hi)
    out = np.empty((uniq.shape[0], row_grads.shape[1]), row_grads.dtype)
    group_sums(row_grads, starts, order, out)
    return uniq, out
