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

from fastembed.jit import BYTES, njit
from fastembed.settings import POOLINGS


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
def _tfidf_weights(indices, offsets, idf, out):
    tf = np.zeros(idf.size, dtype=np.int32)
    for b in range(offsets.size - 1):
        b0, b1 = offsets[b], offsets[b + 1]
        for i in range(b0, b1):
            tf[indices[i]] += 1
        sq = 0.0
        for i in range(b0, b1):
            r = indices[i]
            t = tf[r]
            w = (1.0 + np.log(t)) * idf[r]
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
        _tfidf_weights(indices, offsets, idf, out)
    else:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
    return out
