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


import importlib

# The names load lazily: the classifier imports only ``optim`` from this package, and the other
# modules (about 20 kernels, never called by ``fastembed train`` or ``predict``) cost start-up.
_MODULE_OF = {
    "embedding_bag": "embedding", "embedding_bag_grad": "embedding", "gather": "embedding",
    "adagrad_update": "updates", "coalesce": "updates", "rowwise_adagrad_update": "updates",
    "sgd_update": "updates",
}

__all__ = [
    "adagrad_update",
    "coalesce",
    "embedding_bag",
    "embedding_bag_grad",
    "gather",
    "rowwise_adagrad_update",
    "sgd_update",
]


def __getattr__(name):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"fastembed.kernels.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module 'fastembed.kernels' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_MODULE_OF])
