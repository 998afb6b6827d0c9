"""Numba kernels for sparse row-wise optimizer updates.

Per-row primitives (the only place the update math lives; the batch updates
below and the fused training kernels call them):

* ``sgd_row(table, row, grad, scale, lr)``
      ``g = scale * grad; table[row] -= lr * g``
* ``adagrad_row(table, state, row, grad, scale, lr, eps)``
      ``g = scale * grad; state[row] += g * g;
      table[row] -= lr * (g / (sqrt(state[row]) + eps))``
* ``rowwise_adagrad_row(table, state, row, grad, scale, lr, eps)``
      ``g = scale * grad; state[row] += mean(g * g);
      table[row] -= (lr / (sqrt(state[row]) + eps)) * g``

``table`` is a 2-D C-contiguous float32/float64 array, ``state`` has the
table's dtype (shape of the table for Adagrad, ``(n_rows,)`` for row-wise
Adagrad), ``row`` an integer in ``[0, n_rows)`` (not checked), ``grad`` a 1-D
array of length ``dim`` (any float dtype; each element is first converted to
the table's dtype), ``scale``/``lr``/``eps`` floats.  They allocate nothing.

Precision: all arithmetic is done in the table's dtype, as PyTorch does on the
CPU: ``scale``, ``lr`` and ``eps`` are first rounded to that dtype, and for a
float32 table the Adagrad state is float32 and accumulated in float32.
Operation order: element-wise Adagrad follows ``torch.optim.Adagrad``'s sparse
path (``std = sqrt(state) + eps``; ``table += -lr * (g / std)``); row-wise
Adagrad follows FBGEMM (``mean(g*g)`` is a sequential sum divided by ``dim``;
one multiplier ``lr / (sqrt(state) + eps)`` per row).

Batch updates without validation (what :mod:`fastembed.kernels` calls):

* ``sgd_update_unchecked(table, rows, row_grads, lr)``
* ``adagrad_update_unchecked(table, state, rows, row_grads, lr, eps=ADAGRAD_EPS)``
* ``rowwise_adagrad_update_unchecked(table, state, rows, row_grads, lr, eps=ADAGRAD_EPS)``

Python functions: they coalesce ``rows`` with
:func:`fastembed.kernels.grouping.coalesce_unchecked` (unless already strictly
increasing), then call the @njit kernel ``sgd_unique`` / ``adagrad_unique`` /
``rowwise_adagrad_unique`` (parallel over unique int64 rows, one row per
thread, so compiled per float dtype only), so the result is exactly
``coalesce`` followed by the update, whatever the thread count.  They require
``rows`` inside ``[0, n_rows)``, ``row_grads`` of shape ``(len(rows), dim)``
and the table's dtype, everything C-contiguous.  The ``*_unique`` kernels
can be called directly with already unique rows.
"""

import numpy as np

from fastembed.jit import INLINE, OUTLINE, PARALLEL, njit, prange, prefetch_distance, prefetch_row
from fastembed.kernels.grouping import coalesce_unchecked

ADAGRAD_EPS = 1e-10  # the default epsilon of both Adagrads (torch.optim.Adagrad's)

__all__ = [
    "ADAGRAD_EPS",
    "adagrad_row",
    "adagrad_unique",
    "adagrad_update_unchecked",
    "rowwise_adagrad_row",
    "rowwise_adagrad_unique",
    "rowwise_adagrad_update_unchecked",
    "sgd_row",
    "sgd_unique",
    "sgd_update_unchecked",
]


# --------------------------------------------------------------------------
# per-row primitives
# --------------------------------------------------------------------------


# Inlined, unlike the Adagrads: the classifier's training step calls it for every row of every
# bag, and the call cost about 10% of its time per example (SST-2, dims 10 and 100).
@njit(**INLINE)
def sgd_row(table, row, grad, scale, lr):
    """``table[row] -= lr * (scale * grad)`` in the table's dtype, in place."""
    T = table.dtype.type
    s = T(scale)
    step = T(lr)
    for j in range(table.shape[1]):
        table[row, j] -= step * (s * T(grad[j]))


@njit(**OUTLINE)
def adagrad_row(table, state, row, grad, scale, lr, eps):
    """Element-wise Adagrad on one row, in place (PyTorch's formula).

    ``g = scale * grad; state[row] += g * g;
    table[row] -= lr * (g / (sqrt(state[row]) + eps))``, in the table's dtype.
    """
    T = table.dtype.type
    s = T(scale)
    step = T(lr)
    e = T(eps)
    for j in range(table.shape[1]):
        g = s * T(grad[j])
        acc = state[row, j] + g * g
        state[row, j] = acc
        table[row, j] -= step * (g / (np.sqrt(acc) + e))


@njit(**OUTLINE)
def rowwise_adagrad_row(table, state, row, grad, scale, lr, eps):
    """Row-wise Adagrad on one row, in place (FBGEMM's formula).

    ``g = scale * grad; state[row] += mean(g * g);
    table[row] -= (lr / (sqrt(state[row]) + eps)) * g``, in the table's
    dtype; ``mean`` is a sequential sum divided by ``dim`` (0 when dim == 0).
    """
    T = table.dtype.type
    s = T(scale)
    dim = table.shape[1]
    sq = T(0)
    for j in range(dim):
        g = s * T(grad[j])
        sq += g * g
    if dim > 0:
        sq = sq / T(dim)
    acc = state[row] + sq
    state[row] = acc
    mult = T(lr) / (np.sqrt(acc) + T(eps))
    for j in range(dim):
        table[row, j] -= mult * (s * T(grad[j]))


# --------------------------------------------------------------------------
# batch updates over unique rows (parallel, one row per thread)
# --------------------------------------------------------------------------


@njit(**PARALLEL)
def sgd_unique(table, rows, row_grads, lr):
    """:func:`sgd_row` for each ``rows[i]``; ``rows`` must be unique."""
    n = rows.shape[0]
    ahead = prefetch_distance(table)
    for i in prange(n):
        if i + ahead < n:
            prefetch_row(table, rows[i + ahead])
        sgd_row(table, rows[i], row_grads[i], 1.0, lr)


@njit(**PARALLEL)
def adagrad_unique(table, state, rows, row_grads, lr, eps):
    """:func:`adagrad_row` for each ``rows[i]``; ``rows`` must be unique."""
    n = rows.shape[0]
    ahead = prefetch_distance(table)
    for i in prange(n):
        if i + ahead < n:
            prefetch_row(table, rows[i + ahead])
            prefetch_row(state, rows[i + ahead])
        adagrad_row(table, state, rows[i], row_grads[i], 1.0, lr, eps)


@njit(**PARALLEL)
def rowwise_adagrad_unique(table, state, rows, row_grads, lr, eps):
    """:func:`rowwise_adagrad_row` for each ``rows[i]``; ``rows`` must be unique."""
    n = rows.shape[0]
    ahead = prefetch_distance(table)
    for i in prange(n):
        if i + ahead < n:
            prefetch_row(table, rows[i + ahead])
        rowwise_adagrad_row(table, state, rows[i], row_grads[i], 1.0, lr, eps)


# --------------------------------------------------------------------------
# unchecked entry points: coalesce (unless already coalesced), then update
# --------------------------------------------------------------------------


def _coalesced(rows, row_grads, scan):
    urows, ugrads = coalesce_unchecked(rows, row_grads, scan, copy=False)
    return urows.astype(np.int64, copy=False), ugrads


def sgd_update_unchecked(table, rows, row_grads, lr, scan=None):
    """:func:`fastembed.kernels.sgd_update` without validation; ``scan = scan_ids(rows)``."""
    urows, ugrads = _coalesced(rows, row_grads, scan)
    sgd_unique(table, urows, ugrads, float(lr))


def adagrad_update_unchecked(table, state, rows, row_grads, lr, eps=ADAGRAD_EPS, scan=None):
    """:func:`fastembed.kernels.adagrad_update` without validation."""
    urows, ugrads = _coalesced(rows, row_grads, scan)
    adagrad_unique(table, state, urows, ugrads, float(lr), float(eps))


def rowwise_adagrad_update_unchecked(table, state, rows, row_grads, lr, eps=ADAGRAD_EPS, scan=None):
    """:func:`fastembed.kernels.rowwise_adagrad_update` without validation."""
    urows, ugrads = _coalesced(rows, row_grads, scan)
    rowwise_adagrad_unique(table, state, urows, ugrads, float(lr), float(eps))
