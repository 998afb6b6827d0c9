"""Validated embedding lookups and their gradient: ``gather``, ``embedding_bag``, ``embedding_bag_grad``.

Contracts and errors: see :mod:`fastembed.kernels`. Ids (and offsets) are copied, then
checked: the kernels read only the checked copies.
"""

import numpy as np

from fastembed.kernels import _validate as _v
from fastembed.kernels import lookup as _lookup


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
    Arguments must not change during the call (no other thread may write them
    meanwhile). The ids are copied before they are checked, so such a write
    cannot send the kernel out of bounds; to the other arrays it is a data race.

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
    Arguments must not change during the call (no other thread may write them
    meanwhile). The ids and offsets are copied before they are checked, so such a write
    cannot send the kernel out of bounds; to the other arrays it is a data race.

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
    Arguments must not change during the call (no other thread may write them
    meanwhile). The ids and offsets are copied before they are checked, so such a write
    cannot send the kernel out of bounds; to the other arrays it is a data race.

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
