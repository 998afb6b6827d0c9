"""Numba kernels for embedding lookups and sparse gradients.

The kernels here are pure ``@njit(cache=True, nogil=True)`` functions: arrays
and scalars in, arrays out, no Python objects, no bounds checks.  Large
outputs are passed in by the caller (NumPy allocates them on transparent huge
pages, several times cheaper to fault in than Numba's own allocations, and a
caller can reuse them).  The validated public API lives in
:mod:`fastembed.kernels`; the entry points it uses, to call directly when the
arguments are already known to be valid, are:

* ``gather_kernel(table, ids, out)``  (@njit)
* ``embedding_bag_kernel(table, indices, offsets, weights, use_weights, mean, out)``  (@njit)
* ``embedding_bag_grad_unchecked(grad_out, indices, offsets, weights, use_weights, mean)``
* ``coalesce_unchecked(rows, row_grads)``

The last two are Python functions chaining @njit kernels: a stable grouping
of the ids (:func:`counting_transpose`, or :func:`radix_transpose` for wide id
spans), then a parallel sum (:func:`bag_grad_sums` / :func:`group_sums`).

"Valid" means: ``table`` / ``grad_out`` / ``row_grads`` / ``out`` are 2-D
C-contiguous float32 or float64 of matching dtypes and shapes; ``ids`` /
``indices`` / ``rows`` are 1-D C-contiguous int32 or int64 and inside
``[0, n_rows)``; ``offsets`` is 1-D C-contiguous int64, non-decreasing,
``offsets[0] == 0`` and ``offsets[-1] == len(indices)``; ``weights`` has the
dtype of the table and, when ``use_weights`` is true, one entry per index
(pass an empty array otherwise); ``use_weights`` and ``mean`` are bools, never
both true.  Anything else is undefined behaviour (Numba does not check
bounds).

Compilation: each kernel compiles at most once per (float32|float64) x
(int32|int64) combination (the groupings only per id dtype, the sums only per
float dtype); flags are bools and offsets int64, so no other variants.
Helpers for fused kernels written elsewhere: :func:`prefetch`,
:func:`prefetch_row`, :func:`prefetch_distance`.
"""

import numpy as np
from llvmlite import ir
from numba import get_num_threads, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = [
    "bag_grad_sums",
    "coalesce_unchecked",
    "counting_transpose",
    "embedding_bag_grad_unchecked",
    "embedding_bag_kernel",
    "gather_kernel",
    "group_ids",
    "group_sums",
    "prefetch",
    "prefetch_distance",
    "prefetch_row",
    "radix_transpose",
    "scan_ids",
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

# Software prefetch: the row ``prefetch_distance(table)`` positions ahead is
# requested while the current one is summed (random rows of a large table are
# cache misses that the hardware prefetcher cannot guess).  The distance is
# about PREFETCH_BYTES of rows ahead, clamped to [PREFETCH_MIN, PREFETCH_MAX]
# rows (tuned on 1M-row float32 tables, dims 16..300, 2 threads: best
# distances were ~96, 48, 32 and 16 rows for dims 16, 64, 128 and 300).
PREFETCH_BYTES = 16384
PREFETCH_MIN = 16
PREFETCH_MAX = 96
CACHE_LINE = 64


@intrinsic
def prefetch(typingctx, arr, i, j):
    """Hint the CPU to load the cache line holding ``arr[i, j]`` (2-D array).

    Compiles to ``llvm.prefetch`` (read, high locality, data cache): no
    fault, no effect on results, a no-op on targets without prefetch.  No
    bounds check: the address is only computed, never dereferenced.
    """
    if not isinstance(arr, types.Array) or arr.ndim != 2:
        return None
    if not isinstance(i, types.Integer) or not isinstance(j, types.Integer):
        return None
    sig = types.void(arr, i, j)

    def codegen(context, builder, signature, args):
        aryty, ity, jty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        iv = context.cast(builder, args[1], ity, types.intp)
        jv = context.cast(builder, args[2], jty, types.intp)
        ptr = cgutils.get_item_pointer2(
            context, builder, ary.data,
            cgutils.unpack_tuple(builder, ary.shape),
            cgutils.unpack_tuple(builder, ary.strides),
            aryty.layout, [iv, jv], wraparound=False, boundscheck=False,
        )
        i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [i8p, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def prefetch_row(arr, i):
    """Prefetch every cache line of row ``i`` of the 2-D C-contiguous ``arr``."""
    dim = arr.shape[1]
    if dim > 0:
        step = max(1, CACHE_LINE // arr.itemsize)
        for j in range(0, dim, step):
            prefetch(arr, i, j)
        prefetch(arr, i, dim - 1)  # rows need not start on a line boundary


@njit(cache=True, nogil=True, inline="always")
def prefetch_distance(arr):
    """How many rows ahead to prefetch in a random walk over the rows of ``arr``."""
    row_bytes = max(arr.shape[1] * arr.itemsize, 1)
    return min(PREFETCH_MAX, max(PREFETCH_MIN, PREFETCH_BYTES // row_bytes))


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True, parallel=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True, parallel=True)
def gather_kernel(table, ids, out):
    """``out[i] = table[ids[i]]``; ``out`` is ``(len(ids), dim)`` of the table's dtype.

    Returns ``out``.  Parallel over ids, rows ahead prefetched.
    """
    n = ids.shape[0]
    dim = table.shape[1]
    ahead = prefetch_distance(table)
    for i in prange(n):
        if i + ahead < n:
            prefetch_row(table, ids[i + ahead])
        r = ids[i]
        for j in range(dim):
            out[i, j] = table[r, j]
    return out


@njit(cache=True, nogil=True, parallel=True)
def embedding_bag_kernel(table, indices, offsets, weights, use_weights, mean, out):
    """Sum / weighted sum / mean of the rows of each bag, into ``out`` ``(n_bags, dim)``.

    Bag ``b`` is ``indices[offsets[b]:offsets[b + 1]]``.  Accumulates in the
    table's dtype, strictly in index order, directly into the output row
    (four rows per pass over the output row, added one after the other, so
    the rounding is that of the plain sequential loop); the mean divides the
    sum by the bag size.  Empty bags give zeros.  Parallel over bags; rows a
    few positions ahead are prefetched.  Returns ``out`` (any previous
    content is overwritten, so buffers can be reused).
    """
    n_bags = offsets.shape[0] - 1
    n = indices.shape[0]
    dim = table.shape[1]
    ahead = prefetch_distance(table)
    for b in prange(n_bags):
        start = offsets[b]
        end = offsets[b + 1]
        for j in range(dim):
            out[b, j] = 0
        k = start
        while k + 4 <= end:
            if k + ahead + 3 < n:
                prefetch_row(table, indices[k + ahead])
                prefetch_row(table, indices[k + ahead + 1])
                prefetch_row(table, indices[k + ahead + 2])
                prefetch_row(table, indices[k + ahead + 3])
            r0 = indices[k]
            r1 = indices[k + 1]
            r2 = indices[k + 2]
            r3 = indices[k + 3]
            if use_weights:
                w0 = weights[k]
                w1 = weights[k + 1]
                w2 = weights[k + 2]
                w3 = weights[k + 3]
                for j in range(dim):
                    out[b, j] = (((out[b, j] + w0 * table[r0, j]) + w1 * table[r1, j])
                                 + w2 * table[r2, j]) + w3 * table[r3, j]
            else:
                for j in range(dim):
                    out[b, j] = (((out[b, j] + table[r0, j]) + table[r1, j])
                                 + table[r2, j]) + table[r3, j]
            k += 4
        while k < end:
            if k + ahead < n:
                prefetch_row(table, indices[k + ahead])
            r = indices[k]
            if use_weights:
                w = weights[k]
                for j in range(dim):
                    out[b, j] += w * table[r, j]
            else:
                for j in range(dim):
                    out[b, j] += table[r, j]
            k += 1
        if mean and end > start:
            c = table.dtype.type(end - start)
            for j in range(dim):
                out[b, j] /= c
    return out


@njit(cache=True, nogil=True)
def _sum_chunks(starts):
    """Split the groups into ``SUM_CHUNKS`` ranges of ~equal numbers of positions."""
    return _sort_chunks(starts, starts[starts.shape[0] - 1], SUM_CHUNKS)


@njit(cache=True, nogil=True, parallel=True)
def bag_grad_sums(grad_out, offsets, starts, src, pos, weights, use_weights, mean, out):
    """``out[u] = sum over p in group u of c_p * grad_out[src[p]]``, from +0, in order.

    ``c_p`` is ``weights[pos[p]]`` (``use_weights``), ``1 / bag size`` computed
    in the grad dtype (``mean``) or 1.  ``out`` is ``(len(starts) - 1, dim)``
    of the grad dtype; returned.  Groups are split into chunks of ~equal work;
    each output row is summed by one thread.
    """
    nnz = starts.shape[0] - 1
    n = starts[nnz]
    dim = grad_out.shape[1]
    T = grad_out.dtype.type
    ahead = prefetch_distance(grad_out)
    bounds = _sum_chunks(starts)
    for t in prange(bounds.shape[0] - 1):
        for u in range(bounds[t], bounds[t + 1]):
            for j in range(dim):
                out[u, j] = 0
            for p in range(starts[u], starts[u + 1]):
                if p + ahead < n:
                    prefetch_row(grad_out, src[p + ahead])
                b = src[p]
                if use_weights:
                    c = weights[pos[p]]
                elif mean:
                    c = T(1) / T(offsets[b + 1] - offsets[b])
                else:
                    c = T(1)
                for j in range(dim):
                    out[u, j] += c * grad_out[b, j]
    return out


@njit(cache=True, nogil=True, parallel=True)
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
    bounds = _sum_chunks(starts)
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


# ------------------------------------------------------------------ unchecked entry points
# Python-level compositions of the kernels above.  Each kernel is compiled
# once and called from Python: composing them inside another @njit function
# would make Numba generate the whole call tree again for that function.
# Large outputs are allocated here with NumPy (huge pages), not in the kernels.


def embedding_bag_grad_unchecked(grad_out, indices, offsets, weights, use_weights, mean,
                                 scan=None):
    """:func:`fastembed.kernels.embedding_bag_grad` without validation.

    Arguments as for :func:`embedding_bag_kernel` (``grad_out`` C-contiguous
    ``(n_bags, dim)``, ``indices >= 0``); ``scan`` is ``scan_ids(indices)`` if
    already known.  Returns ``(rows, row_grads)``.
    """
    lo, hi, _ = scan_ids(indices) if scan is None else scan
    use_weights, mean = bool(use_weights), bool(mean)
    rows, starts, src, pos = transpose(indices, offsets, lo, hi, use_weights)
    out = np.empty((rows.shape[0], grad_out.shape[1]), grad_out.dtype)
    bag_grad_sums(grad_out, offsets, starts, src, pos, weights, use_weights, mean, out)
    return rows, out


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
