"""Hashed n-gram rows: compact the buckets a corpus uses, drop the rare ones.

The input table is logically ``(nwords + bucket, dim)``; only the buckets a training corpus
uses get a row (in order of first appearance), and ``min_count_ngram`` drops the rare ones.
"""

import numpy as np

from fastembed.jit import SERIAL, njit


@njit(**SERIAL)
def remap_buckets(indices, nwords, bucket_map, bucket_ids, n_used):
    """Give every hashed n-gram row its own compact row, in order of first appearance.

    ``indices`` holds rows of the full (nwords + bucket) space and is rewritten in place to
    rows of the compact (nwords + n_used) space. ``bucket_map`` (bucket,) int32 holds -1 for
    buckets not seen yet; ``bucket_ids`` receives the bucket of each new compact row.
    Returns the new ``n_used``.
    """
    for i in range(indices.size):
        r = indices[i]
        if r >= nwords:
            b = r - nwords
            c = bucket_map[b]
            if c < 0:
                c = n_used
                bucket_map[b] = c
                bucket_ids[c] = b
                n_used += 1
            indices[i] = nwords + c
    return n_used


@njit(**SERIAL)
def prune_rare_buckets(indices, nwords, n_used, min_count):
    """Drop compact n-gram rows seen fewer than ``min_count`` times; renumber the rest.

    ``indices`` is rewritten in place: a kept row moves to its rank among the kept rows, a
    dropped one to ``nwords + n_kept``, the zero row that stands for unseen buckets.
    Returns the boolean mask of kept rows, shape (n_used,).
    """
    counts = np.zeros(n_used, dtype=np.int64)
    for i in range(indices.size):
        r = indices[i]
        if r >= nwords:
            counts[r - nwords] += 1
    new_id = np.full(n_used, -1, dtype=np.int64)
    n_kept = 0
    for c in range(n_used):
        if counts[c] >= min_count:
            new_id[c] = n_kept
            n_kept += 1
    unseen = nwords + n_kept
    for i in range(indices.size):
        r = indices[i]
        if r >= nwords:
            c = new_id[r - nwords]
            indices[i] = unseen if c < 0 else nwords + c
    return new_id >= 0
