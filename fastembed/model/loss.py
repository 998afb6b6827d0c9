"""The output layer's losses, written once: scores, probabilities, loss and (on request) backprop.

Each loss follows fastText's ``Loss::forward(targets, state, lr, backprop)``: it scores the
hidden vector against the output rows, returns the loss of the target(s) and, when
``backprop`` is true, adds the loss's gradient w.r.t. the hidden vector to ``grad`` and
updates the output rows it scored (update rule ``opt_kind``, step ``lr``). Training calls
:func:`loss_forward` with ``backprop=True``, prediction (:func:`fastembed.model.forward.predict_probs`)
with ``backprop=False`` and no target, so both run the same arithmetic.

Arguments shared by the helpers:

* ``out`` (n_out, dim) float32, ``out_state`` = (element-wise (n_out, dim) or (0, 0),
  row-wise (n_out,) or (0,)) float32: the output layer and its optimizer accumulators.
* ``hidden`` (dim,) float32: the pooled input; ``grad`` (dim,) float32: receives, when
  ``backprop``, d loss / d hidden (added to, so the caller zeroes it).
* ``probs``: the label probabilities, filled in place: (n_labels,) for softmax and ova (they
  need every score anyway); for hs only when it is non-empty (training passes an empty one,
  since a hierarchical softmax only scores the target's path), using ``node_probs``
  (n_out,) as scratch.

Every helper is ``inline="always"``: one compiled body per caller, with no call in the
per-example loop.
"""

import numpy as np

from fastembed.jit import INLINE, njit
from fastembed.kernels.optim import ADAGRAD_EPS, adagrad_row, rowwise_adagrad_row, sgd_row

LOSS_SOFTMAX = 0
LOSS_OVA = 1
LOSS_HS = 2
LOSS_CODES = {"softmax": LOSS_SOFTMAX, "ova": LOSS_OVA, "hs": LOSS_HS}

OPT_SGD = 0
OPT_ADAGRAD = 1
OPT_ROWWISE_ADAGRAD = 2
OPTIMIZER_CODES = {"sgd": OPT_SGD, "adagrad": OPT_ADAGRAD, "rowwise-adagrad": OPT_ROWWISE_ADAGRAD}

# fastText's guard inside the log of a probability: a loss term is at most -log(1e-5) = 11.5
LOG_EPS = 1e-5


@njit(**INLINE)
def update_row(table, state, row, grad, scale, lr, opt_kind):
    """One row's update ``table[row] -= lr * step(scale * grad)``; ``state`` as ``out_state``."""
    if opt_kind == OPT_SGD:
        sgd_row(table, row, grad, scale, lr)
    elif opt_kind == OPT_ADAGRAD:
        adagrad_row(table, state[0], row, grad, scale, lr, ADAGRAD_EPS)
    else:
        rowwise_adagrad_row(table, state[1], row, grad, scale, lr, ADAGRAD_EPS)


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


@njit(**INLINE)
def _backprop_row(out, out_state, row, hidden, coef, grad, lr, opt_kind):
    """grad += coef * out[row] (the row before its update), then out[row] -= lr * coef * hidden."""
    for j in range(hidden.size):
        grad[j] += coef * out[row, j]
    update_row(out, out_state, row, hidden, coef, lr, opt_kind)


@njit(**INLINE)
def binary_logistic(out, out_state, row, hidden, positive, grad, lr, opt_kind, backprop):
    """One sigmoid unit: returns (p, loss) of label ``positive``; backprop as described above."""
    p = sigmoid(dot_row(out, row, hidden))
    if backprop:
        coef = p - np.float32(1.0) if positive else p  # d loss / d score
        _backprop_row(out, out_state, row, hidden, coef, grad, lr, opt_kind)
    if positive:
        return p, -np.log(p + np.float32(LOG_EPS))
    return p, -np.log(np.float32(1.0) - p + np.float32(LOG_EPS))


@njit(**INLINE)
def softmax_loss(out, out_state, hidden, target, probs, grad, lr, opt_kind, backprop):
    """probs = softmax(out @ hidden); returns -log p[target] (0 when ``target < 0``)."""
    for lab in range(out.shape[0]):
        probs[lab] = dot_row(out, lab, hidden)
    softmax_inplace(probs)
    if target < 0:
        return np.float32(0.0)
    if backprop:
        for lab in range(out.shape[0]):
            coef = probs[lab] - (np.float32(1.0) if lab == target else np.float32(0.0))
            _backprop_row(out, out_state, lab, hidden, coef, grad, lr, opt_kind)
    return -np.log(probs[target] + np.float32(LOG_EPS))


@njit(**INLINE)
def ova_loss(out, out_state, hidden, labels, l0, l1, probs, grad, lr, opt_kind, backprop):
    """probs = sigmoid(out @ hidden); returns the summed binary losses of the positive labels
    ``labels[l0:l1]`` and of every other label as negative (0 and no update when ``l0 == l1``)."""
    loss = np.float32(0.0)
    if l1 == l0:
        for lab in range(out.shape[0]):
            probs[lab] = sigmoid(dot_row(out, lab, hidden))
        return loss
    for lab in range(out.shape[0]):
        positive = False
        for q in range(l0, l1):
            if labels[q] == lab:
                positive = True
        p, term = binary_logistic(out, out_state, lab, hidden, positive, grad, lr, opt_kind, backprop)
        probs[lab] = p
        loss += term
    return loss


@njit(**INLINE)
def hs_loss(out, out_state, hidden, target, paths, codes, offsets, probs, node_probs, grad, lr,
            opt_kind, backprop):
    """Hierarchical softmax over the Huffman tree of :mod:`fastembed.model.huffman`.

    Returns the loss of the ``target``'s path (0 when ``target < 0``); when ``probs`` is not
    empty it also receives every label's probability, the product of its branch probabilities.
    """
    loss = np.float32(0.0)
    if target >= 0:
        for q in range(offsets[target], offsets[target + 1]):
            _, term = binary_logistic(out, out_state, paths[q], hidden, codes[q] != 0, grad, lr,
                                      opt_kind, backprop)
            loss += term
    if probs.size > 0:
        for node in range(out.shape[0]):
            node_probs[node] = sigmoid(dot_row(out, node, hidden))
        for lab in range(probs.size):
            p = np.float32(1.0)
            for q in range(offsets[lab], offsets[lab + 1]):
                s = node_probs[paths[q]]
                p *= s if codes[q] else np.float32(1.0) - s
            probs[lab] = p
    return loss


@njit(**INLINE)
def loss_forward(loss_kind, out, out_state, hidden, labels, l0, l1, target, hs_paths, hs_codes,
                 hs_offsets, probs, node_probs, grad, lr, opt_kind, backprop):
    """The loss ``loss_kind`` (a ``LOSS_CODES`` value): ova scores ``labels[l0:l1]``, softmax and
    hs the single ``target`` (-1: none)."""
    if loss_kind == LOSS_OVA:
        return ova_loss(out, out_state, hidden, labels, l0, l1, probs, grad, lr, opt_kind, backprop)
    if loss_kind == LOSS_SOFTMAX:
        return softmax_loss(out, out_state, hidden, target, probs, grad, lr, opt_kind, backprop)
    return hs_loss(out, out_state, hidden, target, hs_paths, hs_codes, hs_offsets, probs,
                   node_probs, grad, lr, opt_kind, backprop)
