"""Quantizing a fastText model into a ``.ftz`` (:func:`quantize_fasttext`), as fastText's own
``quantize`` does without ``retrain``.

The result is a fastText file, not a fastembed one: a fastText model predicts with fastText's
forward (a bucket without a row is left out of the bag, which fastembed's row map cannot say),
so its compressed form is the format that keeps that forward, and fastText's ``load_model``
reads it too.

The steps are fastText's (``FastText::quantize``): keep the ``cutoff`` input rows of largest
norm, ``</s>`` first (:func:`fastembed.quantize.prune_rows`, fastText's ``selectEmbeddings``);
the pruned words leave the dictionary, the kept n-gram rows get a ``pruneidx`` entry each, by
decreasing norm (``Dictionary::prune``); then the kept rows are product-quantized (and the
output matrix with ``qout``). ``cutoff`` takes what :meth:`Model.quantize` takes; its "auto" is
as many rows as fit in 1/10.5 of the model written with dense matrices, counted exactly from
the layout (:func:`~fastembed.fasttext.layout.matrix_bytes`).
"""

from __future__ import annotations

import functools
import numbers

import numpy as np

from fastembed.errors import ArgumentError
from fastembed.fasttext.layout import (
    HEADER_BYTES,
    PRUNE_PAIR_BYTES,
    FastTextFile,
    entry_bytes,
    matrix_bytes,
)
from fastembed.model.quantized import AUTO_RATIO, rows_that_fit, rows_to_keep
from fastembed.quantize import (
    NITER,
    importance,
    prune_rows,
    pruning_order,
    quantize_matrix,
)

__all__ = ["quantize_fasttext"]


def quantize_fasttext(ft: FastTextFile, *, dsub=2, qnorm=False, cutoff="auto", qout=False, seed=0,
                      niter=NITER) -> FastTextFile:
    """A pruned, product-quantized copy of the supervised model ``ft`` (see the module
    docstring); ``ft`` is left as it is. The settings are :meth:`Model.quantize`'s."""
    a = ft.args
    dim = a["dim"]
    if isinstance(dsub, bool) or not isinstance(dsub, numbers.Integral) or not 1 <= dsub <= dim:
        raise ArgumentError(f"quantize: dsub must be an integer in [1, {dim}], got {dsub!r}")
    nwords = ft.nwords
    # the bucket of every n-gram row; none when the model reads no n-gram (the .bin's bucket
    # rows are then rows nothing reads, and the .ftz gets none)
    if not (a["bucket"] > 0 and (a["maxn"] > 0 or a["wordNgrams"] > 1)):
        row_bucket = np.zeros(0, np.int64)
    elif ft.pruneidx_size < 0:
        row_bucket = np.arange(a["bucket"], dtype=np.int64)
    else:
        row_bucket = np.empty(ft.pruneidx_size, np.int64)
        row_bucket[ft.pruneidx[:, 1]] = ft.pruneidx[:, 0]
    matrix = ft.dense_input()[:nwords + row_bucket.size]
    eos = [ft.words.index(b"</s>")] if b"</s>" in ft.words else []
    n = matrix.shape[0]
    order = functools.cache(lambda: pruning_order(matrix, eos))  # one sort, and none when nothing is pruned
    keep = rows_to_keep(cutoff, n, lambda: _rows_that_fit(ft, order(), dsub, qnorm, qout))
    if keep == n and ft.pruneidx_size < 0 and row_bucket.size:  # nothing pruned: fastText's layout stays
        rows, pairs, size = np.arange(n), np.zeros((0, 2), np.int32), -1
        entries = np.arange(len(ft.entries))
    else:
        pruned = prune_rows(matrix, nwords, keep, keep=eos, order=order())
        rows = pruned.rows
        pairs = np.stack([row_bucket[pruned.ngram_rows - nwords], np.arange(pruned.ngram_rows.size)],
                         axis=1).astype(np.int32)
        size = int(pairs.shape[0])
        entries = np.concatenate([pruned.word_rows, np.arange(nwords, len(ft.entries))])
    out = ft.dense_output()
    return FastTextFile(
        dict(a), [ft.entries[i] for i in entries.tolist()], ft.counts[entries], ft.types[entries], ft.ntokens,
        _quantize(matrix[rows], dsub, qnorm, seed, niter), _quantize(out, dsub, qnorm, seed, niter) if qout else out,
        pruneidx_size=size, pruneidx=pairs, version=ft.version)


def _quantize(matrix, dsub, qnorm, seed, niter):
    return quantize_matrix(matrix, dsub=dsub, qnorm=qnorm, seed=seed, niter=niter, weights=importance(matrix))


def _rows_that_fit(ft, order, dsub, qnorm, qout):
    """The most rows, taken in ``order``, whose ``.ftz`` is at most 1/AUTO_RATIO of ``ft``
    written with dense matrices (both exact, from the layout)."""
    dim, nwords = ft.args["dim"], ft.nwords
    labels = sum(entry_bytes(e) for e in ft.labels)
    n_out = ft.output_matrix.shape[0]
    dense = (HEADER_BYTES + labels + sum(entry_bytes(w) for w in ft.words)
             + PRUNE_PAIR_BYTES * max(ft.pruneidx_size, 0) + 2
             + matrix_bytes(ft.input_matrix.shape[0], dim) + matrix_bytes(n_out, dim))
    fixed = (HEADER_BYTES + labels + 2 + matrix_bytes(0, dim, dsub, qnorm)
             + matrix_bytes(n_out, dim, dsub if qout else None, qnorm))
    row = -(-dim // dsub) + int(qnorm)
    word_cost = np.array([entry_bytes(w) for w in ft.words] or [0], np.int64)
    cost = row + np.where(order < nwords, word_cost[np.minimum(order, max(nwords - 1, 0))], PRUNE_PAIR_BYTES)
    return rows_that_fit(cost, dense / AUTO_RATIO - fixed)
