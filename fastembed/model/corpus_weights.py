"""The pooling weights of a training corpus, in memory or, for a mapped corpus, in a mapped file.

For a :class:`~fastembed.text.out_of_core.MappedCorpus` the document frequencies and the
per-row weights are computed over pieces of about :data:`_PIECE_ROWS` bag rows (a bag's
weights depend only on the bag and the idf), the weights appended to a temporary file that is
then mapped like the corpus, and the pages read are released after each piece: the resident
set does not grow with the corpus.
"""

import functools
import mmap
import tempfile

import numpy as np

from fastembed.model.label_informativeness import (
    apply_label_weighting,
    corpus_block_counts,
    label_line_counts,
    row_divergence,
)
from fastembed.model.pooling import bag_weights, document_frequency, smooth_idf
from fastembed.text.out_of_core import MappedCorpus

__all__ = ["corpus_weights", "label_divergence"]

_PIECE_ROWS = 4 << 20


def corpus_weights(args, corpus, n_rows, nlabels, idf=None):
    """``(idf or None, weights, doc_freq or None)`` of ``corpus`` under ``args.pooling`` (see
    :func:`~fastembed.model.pooling.bag_weights`); ``doc_freq`` (int64, per row) for tf-idf:
    continued training adds to it (:mod:`fastembed.model.continuation`). The idf carries the
    factor of ``args.label_weighting`` (:mod:`fastembed.model.label_informativeness`). Given
    ``idf`` (a continued or resumed run's), only the weights are computed (``doc_freq`` None)."""
    df = None
    pooling = args.pooling
    mapped = isinstance(corpus, MappedCorpus)
    if pooling == "tfidf" and idf is None:
        divergence = None
        if args.label_weighting > 0 and corpus.label_indices.size == corpus.n_lines:
            # one label per line (every line has one at least): a row's document frequency is
            # the sum of its label counts, so the pass over the bags that counts them gives df
            # too (a 0.3 GB corpus: 1.5-3 s of document_frequency saved)
            divergence, df = label_divergence(corpus, n_rows, nlabels, args.dim, with_df=True)
        elif mapped:
            df = np.zeros(n_rows, dtype=np.int64)
            for ind, off in _pieces(corpus):
                df += document_frequency(ind, off, n_rows)
        else:
            df = document_frequency(corpus.indices, corpus.offsets, n_rows).astype(np.int64)
        idf = smooth_idf(df, corpus.n_lines)
        if args.label_weighting > 0:
            if divergence is None:
                divergence, _ = label_divergence(corpus, n_rows, nlabels, args.dim)
            idf = apply_label_weighting(idf, args.label_weighting, divergence)
        idf[-1] = 0.0  # the unseen-bucket row: dropped from the norm, as scikit-learn drops unknown terms
    if not mapped or pooling == "mean":
        return idf, bag_weights(pooling, corpus.indices, corpus.offsets, idf), df
    with tempfile.TemporaryFile(prefix="fastembed-weights-") as f:
        for ind, off in _pieces(corpus):
            bag_weights(pooling, ind, off, idf).tofile(f)
        f.flush()
        size = corpus.indices.size * 4
        if size == 0:
            return idf, np.zeros(0, np.float32), df
        m = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
    corpus.maps.append(m)
    return idf, np.frombuffer(m, dtype=np.float32), df


def label_divergence(corpus, n_rows, nlabels, dim, with_df=False):
    """:func:`~fastembed.model.label_informativeness.row_divergence` of an encoded corpus, in
    memory or mapped (read piece by piece, a pass per block of labels). ``with_df``: returns
    ``(divergence, summed counts)`` instead, the counts of every (row, label) summed over the
    labels (int64): each row's document frequency when every line has one label."""
    if isinstance(corpus, MappedCorpus):  # the label files read a piece at a time, pages released
        pieces = functools.partial(_pieces, corpus, labels=True)
        line_counts = sum((label_line_counts(li, lo, nlabels) for _, _, li, lo in pieces()),
                          np.zeros(nlabels, np.int64))
    else:
        pieces = lambda: [(corpus.indices, corpus.offsets, corpus.label_indices, corpus.label_offsets)]  # noqa: E731
        line_counts = label_line_counts(corpus.label_indices, corpus.label_offsets, nlabels)
    block_counts = corpus_block_counts(pieces, n_rows)
    if not with_df:
        return row_divergence(block_counts, line_counts, n_rows, dim)
    summed = np.zeros(n_rows, np.int64)

    def summing(first, stop, dtype):
        counts = block_counts(first, stop, dtype)
        summed[:] += counts.sum(axis=0, dtype=np.int64)
        return counts
    return row_divergence(summing, line_counts, n_rows, dim)[0], summed


def _pieces(corpus, labels=False):
    """``(indices, offsets)`` of consecutive runs of bags, offsets rebased, with their
    ``(label_indices, label_offsets)`` too if ``labels``; pages released after each."""
    offsets, n = corpus.offsets, corpus.n_lines
    b0 = 0
    while b0 < n:
        b1 = int(np.searchsorted(offsets, offsets[b0] + _PIECE_ROWS, side="right")) - 1
        b1 = min(max(b1, b0 + 1), n)
        o0 = int(offsets[b0])
        piece = (corpus.indices[o0:int(offsets[b1])], np.ascontiguousarray(offsets[b0:b1 + 1] - o0))
        if labels:
            l0, l1 = int(corpus.label_offsets[b0]), int(corpus.label_offsets[b1])
            piece += (corpus.label_indices[l0:l1],
                      np.ascontiguousarray(corpus.label_offsets[b0:b1 + 1] - l0))
        yield piece
        corpus.release_pages()
        b0 = b1
