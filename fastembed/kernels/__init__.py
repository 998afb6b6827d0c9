"""Validated public API of the Numba embedding kernels.

Tables are 2-D C-contiguous float32 or float64 arrays ``(n_rows, dim)``; ids
are int32 or int64 (other integer dtypes are converted to int64).  Each
function checks its arguments (one pass over the ids), then calls the pure
``@njit(cache=True)`` kernels of :mod:`fastembed.kernels.lookup`,
:mod:`fastembed.kernels.grouping` or :mod:`fastembed.kernels.optim` (one for ``gather`` / ``embedding_bag``; a
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

from fastembed.kernels.embedding import embedding_bag, embedding_bag_grad, gather
from fastembed.kernels.updates import adagrad_update, coalesce, rowwise_adagrad_update, sgd_update

__all__ = [
    "adagrad_update",
    "coalesce",
    "embedding_bag",
    "embedding_bag_grad",
    "gather",
    "rowwise_adagrad_update",
    "sgd_update",
]
