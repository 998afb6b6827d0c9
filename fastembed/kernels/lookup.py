"""Numba kernels for embedding lookups and sparse gradients.

The kernels here are pure ``@njit(**SERIAL)`` functions: arrays
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
of the ids (:mod:`fastembed.kernels.grouping`: a counting sort, or a radix sort
for wide id spans), then a parallel sum (:func:`bag_grad_sums` here,
``grouping.group_sums`` for ``coalesce_unchecked``, which lives there).

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
The prefetch helpers for fused kernels are in :mod:`fastembed.jit`.
"""

import numpy as np

from fastembed.jit import PARALLEL, njit, prange, prefetch_distance, prefetch_row
from fastembed.kernels.grouping import scan_ids, sum_chunks, transpose

__all__ = [
    "bag_grad_sums",
    "embedding_bag_grad_unchecked",
    "embedding_bag_kernel",
    "gather_kernel",
]


@njit(**PARALLEL)
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


@njit(**PARALLEL)
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


@njit(**PARALLEL)
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
    bounds = sum_chunks(starts)
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


