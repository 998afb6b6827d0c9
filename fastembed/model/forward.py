"""The classifier's forward pass: pooling a bag of rows, then the output layer and its loss.

Bags are CSR (``indices``, ``offsets``); ``weights`` holds one pooling weight per index,
or is empty for the plain mean (weight ``1 / len(bag)``), fastText's pooling.
"""

import numpy as np

from fastembed.jit import INLINE, PARALLEL, njit, prange, prefetch_distance, prefetch_row

LOSS_SOFTMAX = 0
LOSS_OVA = 1
LOSS_HS = 2
LOSS_CODES = {"softmax": LOSS_SOFTMAX, "ova": LOSS_OVA, "hs": LOSS_HS}


@njit(**INLINE)
def pool_bag(table, indices, weights, b0, b1, hidden):
    """hidden = sum_i w_i * table[indices[i]] over the bag [b0, b1)."""
    hidden[:] = 0.0
    n = b1 - b0
    if n == 0:
        return
    mean_w = np.float32(1.0) / np.float32(n)
    dim = hidden.size
    ahead = prefetch_distance(table)
    for i in range(b0, b1):
        if i + ahead < b1:
            prefetch_row(table, indices[i + ahead])
        w = weights[i] if weights.size > 0 else mean_w
        row = indices[i]
        for j in range(dim):
            hidden[j] += w * table[row, j]


@njit(**INLINE)
def dot_row(out, row, hidden):
    s = np.float32(0.0)
    for j in range(hidden.size):
        s += out[row, j] * hidden[j]
    return s


@njit(**INLINE)
def sigmoid(x):
    if x < -30.0:
        return np.float32(0.0)
    if x > 30.0:
        return np.float32(1.0)
    return np.float32(1.0) / (np.float32(1.0) + np.exp(-x))


@njit(**INLINE)
def softmax_inplace(scores):
    m = scores[0]
    for i in range(1, scores.size):
        if scores[i] > m:
            m = scores[i]
    z = np.float32(0.0)
    for i in range(scores.size):
        scores[i] = np.exp(scores[i] - m)
        z += scores[i]
    for i in range(scores.size):
        scores[i] /= z


@njit(**PARALLEL)
def predict_probs(inp, out, indices, offsets, weights, loss_kind, hs_paths, hs_codes, hs_offsets, probs):
    """Label probabilities of every bag: probs (n_bags, n_labels) float32, filled in place.

    softmax: a distribution; ova: an independent sigmoid per label; hs: the product of the
    branch probabilities along each label's path in the Huffman tree.
    """
    n_bags = offsets.size - 1
    dim = inp.shape[1]
    n_labels = probs.shape[1]
    n_out = out.shape[0]
    for b in prange(n_bags):
        hidden = np.empty(dim, dtype=np.float32)
        pool_bag(inp, indices, weights, offsets[b], offsets[b + 1], hidden)
        row = probs[b]
        if loss_kind == LOSS_HS:
            node_p = np.empty(n_out, dtype=np.float32)
            for r in range(n_out):
                node_p[r] = sigmoid(dot_row(out, r, hidden))
            for lab in range(n_labels):
                p = np.float32(1.0)
                for q in range(hs_offsets[lab], hs_offsets[lab + 1]):
                    s = node_p[hs_paths[q]]
                    p *= s if hs_codes[q] else np.float32(1.0) - s
                row[lab] = p
        else:
            for lab in range(n_labels):
                row[lab] = dot_row(out, lab, hidden)
            if loss_kind == LOSS_SOFTMAX:
                softmax_inplace(row)
            else:
                for lab in range(n_labels):
                    row[lab] = sigmoid(row[lab])
