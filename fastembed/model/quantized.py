"""Compressed classifiers: :meth:`Model.quantize` (pruning, then product quantization), and the
quantized arrays of a ``.fe`` file.

:func:`quantize_model` first keeps the ``cutoff`` input rows of largest L2 norm (by default as
many as fit in a file 10.5x smaller than the float one) (fastText's
``-cutoff``: words and hashed n-gram buckets compete alike; ``</s>`` is always kept). A pruned
word leaves the dictionary (it is then an unknown word, as in fastText's ``.ftz``); a pruned
bucket leaves the row map and reads the zero row, as every bucket unseen in training does. The
remaining rows are product-quantized (:func:`fastembed.quantize.quantize_matrix`: ``dsub``
columns per one-byte code, norms apart with ``qnorm``), and with ``qout`` the output matrix too;
the codebooks are learnt on rows drawn by squared norm (:func:`fastembed.quantize.importance`).

The file holds the codes and codebooks instead of the float matrices (:data:`QUANTIZED_MEMBERS`
in :mod:`fastembed.model.file_schema`); loading rebuilds the float rows once
(:meth:`~fastembed.quantize.QuantizedMatrix.dense`, as fastText rebuilds a row), so a quantized
model predicts with the same kernels as any model. The zero row of unseen buckets is not stored.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from fastembed.errors import ArgumentError
from fastembed.quantize import (
    NITER,
    QuantizedMatrix,
    importance,
    prune_rows,
    pruning_order,
    quantize_matrix,
)
from fastembed.text import Dictionary

__all__ = ["Quantization", "decode", "encode", "quantize_model"]

DEFAULT_CUTOFF = "auto"
# 4 columns a code, not fastText's 2: at the 10.5x of cutoff="auto", 2 columns (8x on a row)
# leave room for 44-60% of the rows, 4 columns for 63-100%, and dropping rows costs more than
# coarser codes. Measured on the same trained models of the eight datasets (README): P@1 lost at
# most 0.55 points with dsub 2 (SST-2; 0.44 of it from pruning alone), at most 0.20 with dsub 4.
DEFAULT_DSUB = 4
# cutoff="auto" keeps as many rows as fit in 1/AUTO_RATIO of the float file: the target is a
# file at least 10x smaller, and the estimate below leaves out a few hundred bytes of zip headers.
AUTO_RATIO = 10.5
_ZIP_BYTES_PER_MEMBER = 300  # local and central zip headers and the .npy header of a member


@dataclass
class Quantization:
    """The codes of a quantized model, and the float matrices they stand for (the model's own
    ``input_matrix``/``output_matrix`` objects: a model whose matrix was replaced since is
    saved as floats)."""

    dsub: int
    qnorm: bool
    input_codes: QuantizedMatrix
    input_matrix: np.ndarray
    output_codes: QuantizedMatrix | None = None
    output_matrix: np.ndarray | None = None

    def meta(self):
        return {"dsub": self.dsub, "qnorm": self.qnorm, "qout": self.output_codes is not None}


def rows_to_keep(cutoff, n, fit):
    """``cutoff`` as a row count: an integer (0: all), a fraction in (0, 1), or "auto" (then
    ``fit()``, the count that fits the size target)."""
    if isinstance(cutoff, str) and cutoff == "auto":
        return fit()
    if isinstance(cutoff, bool) or not isinstance(cutoff, numbers.Real):
        raise ArgumentError(f"quantize: cutoff must be a row count, a fraction in (0, 1) or 'auto', "
                           f"got {cutoff!r}")
    if isinstance(cutoff, numbers.Integral) or float(cutoff).is_integer() and cutoff >= 1:
        if cutoff < 0:
            raise ArgumentError(f"quantize: cutoff must not be negative, got {cutoff!r}")
        return n if cutoff == 0 else min(int(cutoff), n)
    if not 0.0 < cutoff < 1.0:
        raise ArgumentError(f"quantize: cutoff must be a row count, a fraction in (0, 1) or 'auto', "
                            f"got {cutoff!r}")
    return max(1, round(cutoff * n))


def rows_that_fit(cost, budget):
    """How many rows, taken in order, fit in ``budget`` bytes when row ``i`` costs ``cost[i]``
    (at least one)."""
    return max(1, int(np.searchsorted(np.cumsum(cost, dtype=np.int64), budget, side="right")))


def _rows_that_fit(model, order, dsub, qnorm, qout):
    """The most rows, taken in ``order``, whose quantized file is at most 1/AUTO_RATIO of the
    float file (both estimated from the arrays each would hold)."""
    d = model.dictionary
    dim = model.dim
    arrays = d.to_arrays()
    word_bytes = np.diff(arrays["word_offsets"]) if d.nwords else np.zeros(0, np.int64)
    idf = 4 if model.idf is not None else 0
    label_bytes = int(arrays["label_offsets"][-1]) + 16 * d.nlabels
    out = model.output_matrix.nbytes
    members = 13
    floats = (model.input_matrix.nbytes + out + idf * d.n_rows + 4 * d.bucket_ids.size
              + int(word_bytes.sum()) + 16 * d.nwords + label_bytes + members * _ZIP_BYTES_PER_MEMBER)
    nsubq = -(-dim // dsub)
    row = nsubq + int(qnorm) + idf
    fixed = (4 * dim * 256 + (1024 if qnorm else 0) + label_bytes + idf
             + ((model.output_matrix.shape[0] * (nsubq + int(qnorm)) + 4 * dim * 256) if qout else out)
             + (members + 3) * _ZIP_BYTES_PER_MEMBER)
    cost = np.where(order < d.nwords, row + 16 + word_bytes[np.minimum(order, max(d.nwords - 1, 0))],
                    row + 4).astype(np.int64)
    return rows_that_fit(cost, floats / AUTO_RATIO - fixed)


def quantize_model(model, *, dsub=DEFAULT_DSUB, qnorm=False, cutoff=DEFAULT_CUTOFF, qout=False, seed=0,
                   niter=NITER):
    """A compressed copy of ``model`` (see the module docstring); ``model`` is left as it is.

    Parameters
    ----------
    dsub : int
        Columns per code (fastText's ``-dsub``; 4 by default, fastText's 2: see DEFAULT_DSUB): a row of
        ``dim`` floats becomes ``dim / dsub`` bytes.
    qnorm : bool
        Quantize each row's norm apart (one byte more a row; fastText's ``-qnorm``).
    cutoff : int, float or "auto"
        Input rows kept, by largest norm: a count (0 keeps every row, fastText's ``-cutoff``), a
        fraction in (0, 1), or "auto": as many as fit in a file 10.5x smaller than the float
        one (estimated from the arrays; the target is at least 10x).
    qout : bool
        Quantize the output matrix too (fastText's ``-qout``).
    seed, niter : int
        k-means seed and rounds: equal seeds give equal models.
    """
    if isinstance(dsub, bool) or not isinstance(dsub, numbers.Integral) or not 1 <= dsub <= model.dim:
        raise ArgumentError(f"quantize: dsub must be an integer in [1, {model.dim}], got {dsub!r}")
    d = model.dictionary
    n_real = d.unseen_row  # every row but the zero row of unseen buckets
    eos = [d.get_word_id("</s>")] if d.get_word_id("</s>") >= 0 else []
    order = pruning_order(model.input_matrix[:n_real], eos)  # one sort for "auto" and the pruning
    keep = rows_to_keep(cutoff, n_real, lambda: _rows_that_fit(model, order, dsub, qnorm, qout))
    pruned = prune_rows(model.input_matrix[:n_real], d.nwords, keep, keep=eos, order=order)
    word_rows, ngram_rows = pruned.word_rows, np.sort(pruned.ngram_rows)
    rows = np.concatenate([word_rows, ngram_rows])
    dictionary = _kept_dictionary(d, word_rows, model.bucket_ids[ngram_rows - d.nwords])
    kept = model.input_matrix[rows]
    codes = quantize_matrix(kept, dsub=dsub, qnorm=qnorm, seed=seed, niter=niter, weights=importance(kept))
    inp = np.concatenate([codes.dense(), np.zeros((1, model.dim), np.float32)])
    out, out_codes = model.output_matrix, None
    if qout:
        out_codes = quantize_matrix(model.output_matrix, dsub=dsub, qnorm=qnorm, seed=seed, niter=niter,
                                    weights=importance(model.output_matrix))
        out = out_codes.dense()
    idf = None if model.idf is None else np.ascontiguousarray(model.idf[np.append(rows, d.unseen_row)])
    stats = dict(model.train_stats, quantized_rows=int(rows.size), original_rows=int(n_real))
    small = type(model)(model.args, dictionary, inp, out, idf=idf, train_stats=stats)
    small.quantization = Quantization(int(dsub), bool(qnorm), codes, inp, out_codes, out if qout else None)
    return small


def _kept_dictionary(d, word_rows, bucket_ids):
    """``d`` with only the words ``word_rows`` (ascending: the order and counts stay sorted) and
    the n-gram rows of ``bucket_ids``."""
    from fastembed.wordvec.vectors import _offsets, _pool

    words = d.word_bytes
    kept = [words[i] for i in word_rows.tolist()]
    labels = d.label_bytes
    return Dictionary(
        word_pool=_pool(kept), word_offsets=_offsets(kept), word_counts=d.word_counts[word_rows],
        label_pool=_pool(labels), label_offsets=_offsets(labels), label_counts=d.label_counts,
        ntokens=d.ntokens, label_prefix=d.label_prefix, word_ngrams=d.word_ngrams, bucket=d.bucket,
        minn=d.minn, maxn=d.maxn, min_count=d.min_count, min_count_label=d.min_count_label,
        bucket_ids=np.ascontiguousarray(bucket_ids, dtype=np.int32))


# -- the file ----------------------------------------------------------------------------------

def encode(model):
    """``(arrays, meta)`` for :meth:`Model.save`: the quantized members replacing the matrices
    they stand for, and the metadata entry; ``({}, None)`` for a model saved as floats."""
    q = getattr(model, "quantization", None)
    if q is None or q.input_matrix is not model.input_matrix or (
            q.output_codes is not None and q.output_matrix is not model.output_matrix):
        return {}, None
    arrays = _members("input", q.input_codes)
    if q.output_codes is not None:
        arrays.update(_members("output", q.output_codes))
    return arrays, q.meta()


def _members(which, codes):
    arrays = {f"{which}_codes": codes.codes, f"{which}_centroids": codes.centroids}
    if codes.qnorm:
        arrays[f"{which}_norm_codes"] = codes.norm_codes
        arrays[f"{which}_norm_centroids"] = codes.norm_centroids
    return arrays


def decode(arrays, dims):
    """The float input and output matrices of a file read by :func:`~fastembed.model.file_schema.read_model`,
    and its :class:`Quantization` (None for a float file). The schema has checked every shape,
    and the codes index 256 centroids, so any byte is in range."""
    quant = dims.quantization
    if quant is None:
        return arrays["input_matrix"], arrays["output_matrix"], None
    inp_codes = _matrix(arrays, "input", dims.dim, quant)
    inp = np.concatenate([inp_codes.dense(), np.zeros((1, dims.dim), np.float32)])
    out_codes, out = None, arrays.get("output_matrix")
    if quant["qout"]:
        out_codes = _matrix(arrays, "output", dims.dim, quant)
        out = out_codes.dense()
    return inp, out, Quantization(quant["dsub"], quant["qnorm"], inp_codes, inp, out_codes,
                                  out if out_codes is not None else None)


def _matrix(arrays, which, dim, quant):
    return QuantizedMatrix(arrays[f"{which}_centroids"], arrays[f"{which}_codes"], dim, quant["dsub"],
                           arrays.get(f"{which}_norm_codes"), arrays.get(f"{which}_norm_centroids"))
