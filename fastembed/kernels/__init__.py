"""Validated public API of the Numba embedding kernels.

Tables are 2-D C-contiguous float32 or float64 arrays ``(n_rows, dim)``; ids
are int32 or int64 (other integer dtypes are converted to int64).  Each
function checks its arguments (one pass over the ids), then calls the pure
``@njit(cache=True)`` kernels of :mod:`fastembed.kernels.lookup` or
:mod:`fastembed.kernels.optim` (one for ``gather`` / ``embedding_bag``; a
sort then a sum for the sparse-gradient functions, chained from Python so
that each kernel is compiled once).  Callers that already know their
arguments are valid can call the unvalidated entry point named in each
docstring; invalid input there is undefined behaviour.

Errors: ``TypeError`` for a wrong kind or dtype, ``ValueError`` for a wrong
shape, layout or value, ``IndexError`` for an id out of range (naming the
first bad value and its position).

The per-row update primitives used by fused training loops are
``fastembed.kernels.optim.sgd_row``, ``adagrad_row`` and
``rowwise_adagrad_row``; the batch updates here use the same functions.
Parallel kernels use ``numba.get_num_threads()`` threads; every output row is
written by one thread, so results do not depend on the thread count.
"""

import numpy as np

from fastembed import _numba_startup

_numba_startup.prepare()  # before any kernel compiles or loads: see that module

from fastembed.kernels import _validate as _v  # noqa: E402
from fastembed.kernels import lookup as _lookup  # noqa: E402
from fastembed.kernels import optim as _optim  # noqa: E402

__all__ = [
    "adagrad_update",
    "coalesce",
    "embedding_bag",
    "embedding_bag_grad",
    "gather",
    "rowwise_adagrad_update",
    "sgd_update",
]


def gather(table, ids):
    """Rows of ``table`` selected by ``ids``: ``table[ids]`` (= ``one_hot(ids) @ table``).

    Parameters
    ----------
    table : ndarray, shape (n_rows, dim), float32 or float64, C-contiguous
    ids : ndarray, shape (n,), int32 or int64, each in ``[0, n_rows)``

    Returns
    -------
    ndarray, shape (n, dim), dtype of ``table``
        A new array.

    Raises
    ------
    TypeError, ValueError, IndexError
        See the module docstring.

    Notes
    -----
    To skip validation (one pass over ``ids``) call
    ``fastembed.kernels.lookup.gather_kernel(table, ids, out)`` with ``ids`` a
    1-D C-contiguous int32/int64 array already known to be in range and
    ``out`` a C-contiguous ``(n, dim)`` array of the table's dtype (it can be
    reused across calls).
    """
    table = _v.check_table(table)
    ids, _ = _v.check_ids(ids, "ids", table.shape[0])
    out = np.empty((ids.shape[0], table.shape[1]), table.dtype)
    return _lookup.gather_kernel(table, ids, out)


def embedding_bag(table, indices, offsets, mode="mean", per_sample_weights=None):
    """Sum or mean of the table rows of each bag (``torch.nn.functional.embedding_bag``).

    Bags are in CSR layout: bag ``b`` is ``indices[offsets[b]:offsets[b + 1]]``.
    Equals ``csr_matrix((data, indices, offsets), shape=(n_bags, n_rows)) @ table``
    with ``data`` = 1 ("sum"), the weights ("sum" with ``per_sample_weights``)
    or 1 / bag size ("mean").

    Parameters
    ----------
    table : ndarray, shape (n_rows, dim), float32 or float64, C-contiguous
    indices : ndarray, shape (nnz,), int32 or int64, each in ``[0, n_rows)``
    offsets : ndarray, shape (n_bags + 1,), integer
        Non-decreasing, ``offsets[0] == 0`` and ``offsets[-1] == nnz``
        (like scipy's ``indptr``).  Converted to int64.
    mode : {"mean", "sum"}
    per_sample_weights : ndarray, shape (nnz,), dtype of ``table``, optional
        One weight per index; only with ``mode="sum"`` (as in PyTorch).

    Returns
    -------
    ndarray, shape (n_bags, dim), dtype of ``table``
        Accumulated in the table's dtype, in index order.  An empty bag gives a
        row of zeros.

    Raises
    ------
    TypeError, ValueError, IndexError
        See the module docstring.

    Notes
    -----
    To skip validation (one pass over ``indices``, one over ``offsets``) call
    ``fastembed.kernels.lookup.embedding_bag_kernel(table, indices, offsets,
    weights, use_weights, mean, out)`` with int64 ``offsets``, ``mean`` and
    ``use_weights`` bools, ``weights`` an empty array of the table's dtype
    when ``use_weights`` is False, and ``out`` a C-contiguous
    ``(n_bags, dim)`` array of the table's dtype (overwritten; reusable).
    """
    table = _v.check_table(table)
    indices, _ = _v.check_ids(indices, "indices", table.shape[0])
    offsets = _v.check_offsets(offsets, indices.shape[0])
    mean = _v.check_mode(mode)
    weights, use_weights = _v.check_weights(
        per_sample_weights, mean, indices.shape[0], table.dtype
    )
    out = np.empty((offsets.shape[0] - 1, table.shape[1]), table.dtype)
    return _lookup.embedding_bag_kernel(table, indices, offsets, weights, use_weights, mean, out)


def embedding_bag_grad(grad_out, indices, offsets, mode="mean", per_sample_weights=None):
    """Sparse gradient of ``sum(grad_out * embedding_bag(table, indices, offsets, mode))``.

    The gradient w.r.t. ``table``, restricted to the rows that occur in
    ``indices``: ``row_grads[u] = sum over positions k with indices[k] ==
    rows[u] of c_k * grad_out[bag(k)]``, ``c_k`` being 1 ("sum"), the weight
    (``per_sample_weights``) or ``1 / len(bag)`` ("mean", computed in the
    grad's dtype, then multiplied).  Equals ``(csr.T @ grad_out)[rows]`` with
    the matrix of :func:`embedding_bag`.

    Parameters
    ----------
    grad_out : ndarray, shape (n_bags, dim), float32 or float64
    indices : ndarray, shape (nnz,), int32 or int64, each ``>= 0``
    offsets : ndarray, shape (n_bags + 1,), integer
        As in :func:`embedding_bag`.
    mode : {"mean", "sum"}
    per_sample_weights : ndarray, shape (nnz,), dtype of ``grad_out``, optional
        Only with ``mode="sum"``.

    Returns
    -------
    rows : ndarray, shape (n_unique,), dtype of ``indices``
        Sorted unique ids of ``indices``.
    row_grads : ndarray, shape (n_unique, dim), dtype of ``grad_out``
        Summed per row in position order, one row per thread (deterministic).

    Raises
    ------
    TypeError, ValueError, IndexError
        See the module docstring.

    Notes
    -----
    To skip validation call
    ``fastembed.kernels.lookup.embedding_bag_grad_unchecked(grad_out, indices,
    offsets, weights, use_weights, mean)`` (arguments as for
    ``embedding_bag_kernel``, with ``grad_out`` C-contiguous and
    ``indices >= 0``).  It runs two @njit kernels: a stable counting-sort
    transpose of the bags (``counting_transpose``; ``radix_transpose`` when
    the id span exceeds ``2 * nnz + 65536``), then ``bag_grad_sums``.
    """
    grad_out = _v.check_float_array(grad_out, "grad_out", 2)
    indices, scan = _v.check_ids(indices, "indices")
    offsets = _v.check_offsets(offsets, indices.shape[0])
    if grad_out.shape[0] != offsets.shape[0] - 1:
        raise ValueError(
            f"grad_out must have one row per bag ({offsets.shape[0] - 1}), got {grad_out.shape[0]}"
        )
    mean = _v.check_mode(mode)
    weights, use_weights = _v.check_weights(
        per_sample_weights, mean, indices.shape[0], grad_out.dtype
    )
    return _lookup.embedding_bag_grad_unchecked(
        grad_out, indices, offsets, weights, use_weights, mean, scan
    )


def coalesce(rows, row_grads):
    """Merge repeated rows of a sparse gradient.

    Parameters
    ----------
    rows : ndarray, shape (n,), int32 or int64, each ``>= 0``
    row_grads : ndarray, shape (n, dim), float32 or float64

    Returns
    -------
    unique_rows : ndarray, shape (n_unique,), dtype of ``rows``
        Sorted unique rows.
    summed_grads : ndarray, shape (n_unique, dim), dtype of ``row_grads``
        The gradients of each row summed in position order (starting from the
        first one), by one thread per row.  Always new arrays.

    Raises
    ------
    TypeError, ValueError, IndexError
        See the module docstring.

    Notes
    -----
    To skip validation call ``fastembed.kernels.lookup.coalesce_unchecked(rows,
    row_grads)`` (C-contiguous arrays; any int64 values work).  Cost: one pass
    to detect already sorted unique rows (then a copy), else a stable counting
    sort over ``[min, max]`` when that span is below ``2 * n + 65536`` (else a
    radix sort), then a parallel sum (``group_sums``).
    """
    rows, scan = _v.check_ids(rows, "rows")
    row_grads = _v.check_float_array(row_grads, "row_grads", 2)
    if row_grads.shape[0] != rows.shape[0]:
        raise ValueError(
            f"row_grads must have one row per id ({rows.shape[0]}), got {row_grads.shape[0]}"
        )
    return _lookup.coalesce_unchecked(rows, row_grads, scan)


def _check_update(table, rows, row_grads):
    table = _v.check_table(table, writeable=True)
    rows, scan = _v.check_ids(rows, "rows", table.shape[0])
    row_grads = _v.check_row_grads(row_grads, rows.shape[0], table.shape[1], table.dtype)
    return table, rows, row_grads, scan


def sgd_update(table, rows, row_grads, lr):
    """Sparse SGD step, in place: ``table[r] -= lr * g``.

    Repeated rows are allowed: the result is exactly :func:`coalesce`
    followed by the update (PyTorch sparse-gradient semantics).

    Parameters
    ----------
    table : ndarray, shape (n_rows, dim), float32 or float64, C-contiguous, writeable
        Updated in place.
    rows : ndarray, shape (n,), int32 or int64, each in ``[0, n_rows)``
    row_grads : ndarray, shape (n, dim), dtype of ``table``
    lr : float
        Finite; rounded to the table's dtype.

    Returns
    -------
    None

    Raises
    ------
    TypeError, ValueError, IndexError
        See the module docstring.

    Notes
    -----
    Math in the table's dtype, via ``fastembed.kernels.optim.sgd_row``.
    To skip validation call
    ``fastembed.kernels.optim.sgd_update_unchecked(table, rows, row_grads, lr)``
    (coalesce, then the @njit kernel ``optim.sgd_unique``).
    """
    table, rows, row_grads, scan = _check_update(table, rows, row_grads)
    lr = _v.check_scalar(lr, "lr")
    _v.check_no_alias(table, ("row_grads", row_grads))
    _optim.sgd_update_unchecked(table, rows, row_grads, lr, scan)


def adagrad_update(table, state, rows, row_grads, lr, eps=1e-10):
    """Sparse element-wise Adagrad step, in place (``torch.optim.Adagrad``).

    ``state[r] += g**2; table[r] -= lr * (g / (sqrt(state[r]) + eps))``.
    Repeated rows are allowed: the result is exactly :func:`coalesce`
    followed by the update.

    Parameters
    ----------
    table : ndarray, shape (n_rows, dim), float32 or float64, C-contiguous, writeable
        Updated in place.
    state : ndarray, shape (n_rows, dim), dtype of ``table``, C-contiguous, writeable
        Sum of squared gradients (start from zeros); updated in place.
    rows : ndarray, shape (n,), int32 or int64, each in ``[0, n_rows)``
    row_grads : ndarray, shape (n, dim), dtype of ``table``
    lr : float
        Finite.
    eps : float, default 1e-10
        Finite, ``>= 0``.

    Returns
    -------
    None

    Raises
    ------
    TypeError, ValueError, IndexError
        See the module docstring.

    Notes
    -----
    Math (and the state) in the table's dtype, so float32 for a float32 table,
    as PyTorch; via ``fastembed.kernels.optim.adagrad_row``.  To skip
    validation call ``fastembed.kernels.optim.adagrad_update_unchecked(table,
    state, rows, row_grads, lr, eps)`` (coalesce, then the @njit kernel
    ``optim.adagrad_unique``).
    """
    table, rows, row_grads, scan = _check_update(table, rows, row_grads)
    state = _v.check_state(state, table, table.shape)
    lr = _v.check_scalar(lr, "lr")
    eps = _v.check_scalar(eps, "eps", nonnegative=True)
    _v.check_no_alias(table, ("row_grads", row_grads))
    _v.check_no_alias(state, ("row_grads", row_grads))
    _optim.adagrad_update_unchecked(table, state, rows, row_grads, lr, eps, scan)


def rowwise_adagrad_update(table, state, rows, row_grads, lr, eps=1e-10):
    """Sparse row-wise Adagrad step, in place (FBGEMM's ``rowwise_adagrad``).

    One accumulator per row: ``state[r] += mean(g**2);
    table[r] -= (lr / (sqrt(state[r]) + eps)) * g``.  Repeated rows are
    allowed: the result is exactly :func:`coalesce` followed by the update.

    Parameters
    ----------
    table : ndarray, shape (n_rows, dim), float32 or float64, C-contiguous, writeable
        Updated in place.
    state : ndarray, shape (n_rows,), dtype of ``table``, writeable
        Per-row sum of mean squared gradients (start from zeros); in place.
    rows : ndarray, shape (n,), int32 or int64, each in ``[0, n_rows)``
    row_grads : ndarray, shape (n, dim), dtype of ``table``
    lr : float
        Finite.
    eps : float, default 1e-10
        Finite, ``>= 0``.

    Returns
    -------
    None

    Raises
    ------
    TypeError, ValueError, IndexError
        See the module docstring.

    Notes
    -----
    Math (and the state) in the table's dtype; ``mean(g**2)`` is a sequential
    sum divided by ``dim``; via ``fastembed.kernels.optim.rowwise_adagrad_row``.
    To skip validation call
    ``fastembed.kernels.optim.rowwise_adagrad_update_unchecked(table, state,
    rows, row_grads, lr, eps)`` (coalesce, then the @njit kernel
    ``optim.rowwise_adagrad_unique``).
    """
    table, rows, row_grads, scan = _check_update(table, rows, row_grads)
    state = _v.check_state(state, table, (table.shape[0],))
    lr = _v.check_scalar(lr, "lr")
    eps = _v.check_scalar(eps, "eps", nonnegative=True)
    _v.check_no_alias(table, ("row_grads", row_grads))
    _v.check_no_alias(state, ("row_grads", row_grads))
    _optim.rowwise_adagrad_update_unchecked(table, state, rows, row_grads, lr, eps, scan)
