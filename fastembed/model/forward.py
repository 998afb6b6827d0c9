"""The classifier's forward pass: pooling a bag of rows, then the output layer (:mod:`.loss`).

Bags are CSR (``indices``, ``offsets``); ``weights`` holds one pooling weight per index,
or is empty for the plain mean (weight ``1 / len(bag)``), fastText's pooling.
"""

import numpy as np

from fastembed.jit import INLINE, PARALLEL, njit, prange, prefetch_distance, prefetch_row
from fastembed.model.loss import LOSS_CODES, LOSS_HS, OPT_SGD, loss_forward

__all__ = ["LOSS_CODES", "pool_bag", "predict_probs"]


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


@njit(**PARALLEL)
def predict_probs(inp, out, indices, offsets, weights, loss_kind, hs_paths, hs_codes, hs_offsets, probs):
    """Label probabilities of every bag: probs (n_bags, n_labels) float32, filled in place.

    softmax: a distribution; ova: an independent sigmoid per label; hs: the product of the
    branch probabilities along each label's path in the Huffman tree. The arithmetic is the
    training loss's own (:func:`fastembed.model.loss.loss_forward`, without backprop).
    """
    n_bags = offsets.size - 1
    dim = inp.shape[1]
    no_state = (np.empty((0, 0), dtype=np.float32), np.empty(0, dtype=np.float32))
    no_labels = np.empty(0, dtype=np.int32)
    no_grad = np.empty(0, dtype=np.float32)
    for b in prange(n_bags):
        hidden = np.empty(dim, dtype=np.float32)
        node_probs = np.empty(out.shape[0] if loss_kind == LOSS_HS else 0, dtype=np.float32)
        pool_bag(inp, indices, weights, offsets[b], offsets[b + 1], hidden)
        loss_forward(loss_kind, out, no_state, hidden, no_labels, 0, 0, -1, hs_paths, hs_codes,
                     hs_offsets, probs[b], node_probs, no_grad, np.float32(0.0), OPT_SGD, False)
