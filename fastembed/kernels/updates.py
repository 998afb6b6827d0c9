"""Validated sparse updates: ``coalesce`` and the SGD / Adagrad / row-wise Adagrad steps.

Contracts and errors: see :mod:`fastembed.kernels`. Ids (and offsets) are copied, then
checked: the kernels read only the checked copies.
"""

from fastembed.kernels import _validate as _v
from fastembed.kernels import grouping as _grouping
from fastembed.kernels import optim as _optim
from fastembed.kernels.optim import ADAGRAD_EPS


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
    Arguments must not change during the call (no other thread may write them
    meanwhile). The ids are copied before they are checked, so such a write
    cannot send the kernel out of bounds; to the other arrays it is a data race.

    To skip validation call ``fastembed.kernels.grouping.coalesce_unchecked(rows,
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
    return _grouping.coalesce_unchecked(rows, row_grads, scan)


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
    Arguments must not change during the call (no other thread may write them
    meanwhile). The ids are copied before they are checked, so such a write
    cannot send the kernel out of bounds; to the other arrays it is a data race.

    Math in the table's dtype, via ``fastembed.kernels.optim.sgd_row``.
    To skip validation call
    ``fastembed.kernels.optim.sgd_update_unchecked(table, rows, row_grads, lr)``
    (coalesce, then the @njit kernel ``optim.sgd_unique``).
    """
    table, rows, row_grads, scan = _check_update(table, rows, row_grads)
    lr = _v.check_scalar(lr, "lr")
    _v.check_no_alias(table, ("row_grads", row_grads))
    _optim.sgd_update_unchecked(table, rows, row_grads, lr, scan)


def adagrad_update(table, state, rows, row_grads, lr, eps=ADAGRAD_EPS):
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
    Arguments must not change during the call (no other thread may write them
    meanwhile). The ids are copied before they are checked, so such a write
    cannot send the kernel out of bounds; to the other arrays it is a data race.

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


def rowwise_adagrad_update(table, state, rows, row_grads, lr, eps=ADAGRAD_EPS):
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
    Arguments must not change during the call (no other thread may write them
    meanwhile). The ids are copied before they are checked, so such a write
    cannot send the kernel out of bounds; to the other arrays it is a data race.

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
