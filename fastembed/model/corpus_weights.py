"""The pooling weights of a training corpus, in memory or, for a mapped corpus, in a mapped file.

For a :class:`~fastembed.text.out_of_core.MappedCorpus` the document frequencies and the
per-row weights are computed over pieces of about :data:`_PIECE_ROWS` bag rows (a bag's
weights depend only on the bag and the idf), the weights appended to a temporary file that is
then mapped like the corpus, and the pages read are released after each piece: the resident
set does not grow with the corpus.
"""

import mmap
import tempfile

import numpy as np

from fastembed.model.pooling import bag_weights, document_frequency, smooth_idf
from fastembed.text.out_of_core import MappedCorpus

__all__ = ["corpus_weights"]

_PIECE_ROWS = 4 << 20


def corpus_weights(pooling, corpus, n_rows, idf=None):
    """``(idf or None, weights, doc_freq or None)`` of ``corpus`` (see
    :func:`~fastembed.model.pooling.bag_weights`); ``doc_freq`` (int64, per row) for tf-idf:
    continued training adds to it (:mod:`fastembed.model.continuation`). Given ``idf`` (a
    continued or resumed run's), only the weights are computed (``doc_freq`` None)."""
    df = None
    mapped = isinstance(corpus, MappedCorpus)
    if pooling == "tfidf" and idf is None:
        if mapped:
            df = np.zeros(n_rows, dtype=np.int64)
            for ind, off in _pieces(corpus):
                df += document_frequency(ind, off, n_rows)
        else:
            df = document_frequency(corpus.indices, corpus.offsets, n_rows).astype(np.int64)
        idf = smooth_idf(df, corpus.n_lines)
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


def _pieces(corpus):
    """``(indices, offsets)`` of consecutive runs of bags, offsets rebased; pages released after each."""
    offsets, n = corpus.offsets, corpus.n_lines
    b0 = 0
    while b0 < n:
        b1 = int(np.searchsorted(offsets, offsets[b0] + _PIECE_ROWS, side="right")) - 1
        b1 = min(max(b1, b0 + 1), n)
        o0 = int(offsets[b0])
        yield corpus.indices[o0:int(offsets[b1])], np.ascontiguousarray(offsets[b0:b1 + 1] - o0)
        corpus.release_pages()
        b0 = b1
