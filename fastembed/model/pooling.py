"""How a bag of rows becomes the hidden vector: one weight per index of the bag.

The hidden vector is ``sum_i w_i * table[indices[i]]`` over the bag, i.e.
``embedding_bag(table, indices, offsets, "sum", per_sample_weights=w)``:

* ``mean``  -- ``w_i = 1 / n`` (fastText). Long documents get tiny per-row gradients, which is
  why fastText's defaults collapse on 20 Newsgroups.
* ``sqrt``  -- ``w_i = 1 / sqrt(n)``: the sum scaled so a bag of n random rows keeps a unit-size
  hidden vector whatever n is.
* ``tfidf`` -- the L2-normalised sublinear tf-idf vector of the bag, as scikit-learn's
  ``TfidfVectorizer(sublinear_tf=True)``: row ``r`` with ``tf`` occurrences gets
  ``(1 + ln tf) * idf[r] / norm`` in total, shared equally by its occurrences, where
  ``idf[r] = ln((1 + n_docs) / (1 + df[r])) + 1`` and ``norm`` makes the bag's weight vector
  unit length. With it, the model is a low-rank linear model on tf-idf features.

"mean" is returned as an empty weight array, which the kernels read as ``1 / n``.
"""

import numpy as np

from fastembed.jit import BYTES, njit, prefetch_row
from fastembed.settings import POOLINGS

_LOG_TABLE = 256  # 1 + ln(tf) is looked up below this tf (bit-identical: the same np.log)
_AHEAD = 16  # bag rows ahead whose table rows are prefetched


@njit(**BYTES)
def document_frequency(indices, offsets, n_rows):
    """Bags that contain each row: (n_rows,) int32. Repeats within a bag count once."""
    df = np.zeros(n_rows, dtype=np.int32)
    last = np.full(n_rows, -1, dtype=np.int64)
    for b in range(offsets.size - 1):
        for i in range(offsets[b], offsets[b + 1]):
            r = indices[i]
            if last[r] != b:
                last[r] = b
                df[r] += 1
    return df


def smooth_idf(df, n_docs):
    """scikit-learn's smoothed idf: ``ln((1 + n_docs) / (1 + df)) + 1``, float32."""
    return (np.log((1.0 + n_docs) / (1.0 + df.astype(np.float64))) + 1.0).astype(np.float32)


@njit(**BYTES)
def _tfidf_weights(indices, offsets, idf_rows, out, tf_rows, log1):
    # Two cache misses per bag row on a large vocabulary (tf and idf, random rows): both are
    # prefetched while tf is counted, and 1 + ln(tf) is a table look-up. On a 0.3 GB IMDB-like
    # corpus (105M bag rows, 2.3M table rows) 3.1-4.6 s of CPU instead of 5.3-6.0 s (load ~4).
    # The same prefetch in document_frequency, label_row_counts and prune_rows gained nothing.
    # idf_rows: (n_rows, 1) float32, one row per table row (2-D for prefetch_row, made by the
    # caller: a reshape here makes the loaded kernel import numba.np.arrayobj, 21 ms);
    # tf_rows: zeros (n_rows, 1) int32, left zero; log1: (_LOG_TABLE,) float64 scratch
    idf = idf_rows[:, 0]
    tf = tf_rows[:, 0]
    log1[0] = 0.0
    for t in range(1, _LOG_TABLE):
        log1[t] = 1.0 + np.log(t)
    n = indices.size
    for b in range(offsets.size - 1):
        b0, b1 = offsets[b], offsets[b + 1]
        for i in range(b0, b1):
            if i + _AHEAD < n:
                prefetch_row(idf_rows, indices[i + _AHEAD])
                prefetch_row(tf_rows, indices[i + _AHEAD])
            tf[indices[i]] += 1
        sq = 0.0
        for i in range(b0, b1):
            r = indices[i]
            t = tf[r]
            w = (log1[t] if t < _LOG_TABLE else 1.0 + np.log(t)) * idf[r]
            out[i] = w / t  # this occurrence's share
            sq += w * w / t  # each of the t occurrences adds 1/t of w**2
        inv = 1.0 / np.sqrt(sq) if sq > 0.0 else 0.0
        for i in range(b0, b1):
            out[i] *= inv
            tf[indices[i]] = 0


@njit(**BYTES)
def _sqrt_weights(offsets, out):
    for b in range(offsets.size - 1):
        n = offsets[b + 1] - offsets[b]
        if n > 0:
            w = 1.0 / np.sqrt(n)
            for i in range(offsets[b], offsets[b + 1]):
                out[i] = w


def bag_weights(pooling, indices, offsets, idf=None):
    """Per-index pooling weights of CSR bags.

    Parameters
    ----------
    pooling : {"mean", "sqrt", "tfidf"}
    indices : ndarray of int32, shape (nnz,)
    offsets : ndarray of int64, shape (n_bags + 1,)
    idf : ndarray of float32, shape (n_rows,), for "tfidf"

    Returns
    -------
    ndarray of float32, shape (nnz,), or shape (0,) for "mean"
    """
    if pooling == "mean":
        return np.zeros(0, dtype=np.float32)
    out = np.empty(indices.size, dtype=np.float32)
    if pooling == "sqrt":
        _sqrt_weights(offsets, out)
    elif pooling == "tfidf":
        # scratch from here: allocating it in the kernel made its bitcode 29.4 kB instead of 24.5
        _tfidf_weights(indices, offsets, idf.reshape(-1, 1), out, np.zeros((idf.size, 1), dtype=np.int32),
                       np.empty(_LOG_TABLE, dtype=np.float64))
    else:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
    return out
