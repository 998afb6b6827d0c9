"""Prediction from bytes to the top k labels, in one kernel call per line or per block of lines.

Each line goes through the whole chain in one pass: tokens hashed and looked up
(:func:`fastembed.text.line.line_rows`), pooling weights, the hidden vector
(:func:`fastembed.model.forward.pool_bag`), the output layer and its loss
(:func:`fastembed.model.loss.loss_forward`, the training loss's arithmetic), the top k. The
numbers are those of the batch path (:meth:`Model._bag_probabilities`): same rows, same
weights, same summation order.

* :func:`line_top_k` -- one line, serial, into buffers made once (:func:`new_scratch`,
  :func:`line_buffers`): :mod:`fastembed.model.predictor` calls it per line, with one
  thread's buffers, and :func:`_predict_lines` for each line of a block.
* :func:`predict_block` -- a block of ``'\\n'``-separated lines, serially; blocks worth
  waking a second thread for (:func:`worth_threads`) go to :mod:`fastembed.model.claim_team`,
  whose threads claim chunks of lines through :func:`_predict_lines`.

The model's part of the arguments is one :class:`Classifier` tuple, the buffers of a line
views of one scratch array (:func:`new_scratch`).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from fastembed.jit import BYTES, njit, prefetch_distance, prefetch_row
from fastembed.model.forward import pool_bag
from fastembed.model.loss import LOSS_HS, OPT_SGD, loss_forward
from fastembed.text.hashing import NEWLINE
from fastembed.text.line import line_rows, prefetch_item, row_capacity

POOLING_CODES = {"mean": 0, "sqrt": 1, "tfidf": 2}
POOL_MEAN, POOL_SQRT, POOL_TFIDF = 0, 1, 2
# A block is predicted on several threads only when its estimated serial time
# (:func:`worth_threads`) is at least PARALLEL_MIN_NS. Measured on this 2-core machine at load
# 12: waking a thread for 1-2 TREC lines cost 35-65 us more than the serial call (median
# 85-98 us against 50-63 us), and the serial kernel (CPU time, whole test files) took 50-76 ns
# a byte (TREC, SMS, SST-2, AG News), ~200 ns a line, and 0.15 ns an output-layer multiply-add
# (TREC-50 against TREC-6: 2.70 against 2.05 us a line). Numba's thread team
# (a ``prange`` over chunks of lines, removed) needed 3 ms: its join waits for the slowest thread, which on
# a busy machine waits for a scheduler slice (the TREC-6 test file, ~1.9 ms serial, took a
# median 15.9 ms on the team at that load). Blocks now go to :mod:`.claim_team`, whose caller
# never waits for a stalled worker (it predicts the worker's unfinished chunk again), so the
# threshold is the wake-up's cost with a margin: 400 us.
NS_PER_BYTE = 50
NS_PER_LINE = 200
NS_PER_MAC = 0.15
PARALLEL_MIN_NS = 400_000
_TOP_K_INSERTION_MAX = 16  # above this k, the top k come from a sort instead of insertions
_FIB32 = np.uint64(2654435769)  # 2**32 / golden ratio: spreads row numbers over the tf table


class Classifier(NamedTuple):
    """The model's arrays as the kernels read them; ``idf`` is empty unless ``pooling`` is tfidf."""

    inp: np.ndarray
    out: np.ndarray
    idf: np.ndarray
    hs_paths: np.ndarray
    hs_codes: np.ndarray
    hs_offsets: np.ndarray
    pooling: int
    loss: int


class LineBuffers(NamedTuple):
    """Scratch of one line: rows, word hashes, n-gram bytes, the tf table, weights, vectors.

    Views of one scratch array (:func:`new_scratch`, :func:`line_buffers`). The three empty
    arrays stand for what :func:`loss_forward` takes and prediction does not use (optimizer
    state, target labels, gradient).
    """

    rows: np.ndarray
    hashes: np.ndarray
    spans: np.ndarray
    ngram_bytes: np.ndarray
    tf_rows: np.ndarray
    tf_counts: np.ndarray
    weights: np.ndarray
    hidden: np.ndarray
    node_p: np.ndarray
    probs: np.ndarray
    no_state_2d: np.ndarray
    no_floats: np.ndarray
    no_labels: np.ndarray


# The scratch of a line is one uint8 array: a header of int64 (start, bytes) pairs, then the
# buffers, each starting on a cache line, in this order. One array instead of 15 makes a
# single-line call cheaper: Numba unboxes every array argument (about 50-90 ns each here).
_HEAD = 32  # int64 slots: (start, bytes) of each of the 12 buffers
TOP_PROBS, TOP_IDS, ROWS, HASHES, SPANS, NGRAM_BYTES, TF_ROWS, TF_COUNTS, WEIGHTS, HIDDEN, NODE_P, PROBS = range(12)


@njit(**BYTES)
def new_scratch(vocab, clf, n_bytes):
    """Scratch for lines of up to ``n_bytes`` bytes (see :func:`row_capacity`), its header written."""
    n_rows, tokens = row_capacity(vocab, n_bytes)
    n_out = clf.out.shape[0] if clf.loss == LOSS_HS else 0
    n_labels = clf.hs_offsets.size - 1 if clf.loss == LOSS_HS else clf.out.shape[0]
    n_tf = _tf_slots(n_rows) if clf.pooling == POOL_TFIDF else 0
    top = max(n_labels, 1)  # k == 1 with no label at all writes one slot (and returns 0)
    sizes = (8 * top, 4 * top, 4 * n_rows, 8 * tokens, 16 * tokens, n_bytes + 2, 4 * n_tf, 4 * n_tf,
             4 * n_rows, 4 * clf.inp.shape[1], 4 * n_out, 4 * n_labels)
    head = np.zeros(_HEAD, np.int64)
    at = 8 * _HEAD
    i = 0
    for size in sizes:
        head[2 * i] = at
        head[2 * i + 1] = size
        at += (size + 63) // 64 * 64
        i += 1
    scratch = np.empty(at, np.uint8)
    scratch[:8 * _HEAD].view(np.int64)[:] = head
    return scratch


@njit(**BYTES)
def _part(scratch, head, i, dtype):
    return scratch[head[2 * i]:head[2 * i] + head[2 * i + 1]].view(dtype)


@njit(**BYTES)
def line_buffers(scratch, clf):
    """The :class:`LineBuffers` views of ``scratch``, and its top ids and probabilities."""
    head = scratch[:8 * _HEAD].view(np.int64)
    no_floats = clf.idf[:0]
    rows = _part(scratch, head, ROWS, np.int32)
    b = LineBuffers(rows, _part(scratch, head, HASHES, np.uint64),
                    _part(scratch, head, SPANS, np.int64), _part(scratch, head, NGRAM_BYTES, np.uint8),
                    _part(scratch, head, TF_ROWS, np.int32), _part(scratch, head, TF_COUNTS, np.int32),
                    _part(scratch, head, WEIGHTS, np.float32), _part(scratch, head, HIDDEN, np.float32),
                    _part(scratch, head, NODE_P, np.float32), _part(scratch, head, PROBS, np.float32),
                    clf.out[:0, :0], no_floats, rows[:0])
    return b, _part(scratch, head, TOP_IDS, np.int32), _part(scratch, head, TOP_PROBS, np.float64)


@njit(**BYTES)
def _tf_slots(n):
    """Slots of the term-frequency table of a bag of ``n`` rows: a power of two >= 2n."""
    slots = 16
    while slots < 2 * n:
        slots *= 2
    return slots


@njit(**BYTES)
def _tf_slot(tf_rows, mask, shift, r):
    """Slot of row ``r`` in the tf table: where it is, or the free slot it would take."""
    s = np.int64(((np.uint64(r) * _FIB32) & np.uint64(0xFFFFFFFF)) >> np.uint64(shift)) & mask
    while tf_rows[s] != r and tf_rows[s] != -1:
        s = (s + 1) & mask
    return s


@njit(**BYTES)
def count_rows(rows, n, tf_rows, tf_counts):
    """Occurrences of each row of ``rows[:n]`` in an open-addressing table; returns ``(mask, shift)``.

    O(n) whatever the repeats (a sort took 250 us on 20 Newsgroups documents, whose bags repeat
    the zero row of unseen n-grams hundreds of times).
    """
    slots = _tf_slots(n)
    bits = 0
    while (1 << bits) < slots:
        bits += 1
    mask = slots - 1
    shift = 32 - bits
    tf_rows[:slots] = -1
    for i in range(n):
        s = _tf_slot(tf_rows, mask, shift, rows[i])
        if tf_rows[s] == -1:
            tf_rows[s] = rows[i]
            tf_counts[s] = 0
        tf_counts[s] += 1
    return mask, shift


@njit(**BYTES)
def bag_weights_of(rows, n, pooling, idf, tf_rows, tf_counts, weights):
    """Pooling weights of the bag ``rows[:n]`` into ``weights[:n]``; an empty array for the mean.

    As :func:`fastembed.model.pooling.bag_weights` computes them (the same float64 steps), but
    the term frequencies come from a table sized by the bag (:func:`count_rows`), not from an
    array of every row.
    """
    if pooling == POOL_MEAN:
        return weights[:0]
    if pooling == POOL_SQRT:
        if n > 0:
            w = 1.0 / np.sqrt(n)
            for i in range(n):
                weights[i] = w
        return weights[:n]
    for i in range(n):
        prefetch_item(idf, rows[i])  # random reads of an array of every row: requested at once
    mask, shift = count_rows(rows, n, tf_rows, tf_counts)
    sq = 0.0
    for i in range(n):
        r = rows[i]
        t = tf_counts[_tf_slot(tf_rows, mask, shift, r)]
        if t == 1:  # most rows: 1 + ln 1 == 1 and x / 1 == x exactly, without a log or a division
            w = np.float64(idf[r])
            weights[i] = w
            sq += w * w
        else:
            w = (1.0 + np.log(t)) * idf[r]
            weights[i] = w / t  # this occurrence's share
            sq += w * w / t
    inv = 1.0 / np.sqrt(sq) if sq > 0.0 else 0.0
    for i in range(n):
        weights[i] *= inv
    return weights[:n]


@njit(**BYTES)
def top_k(probs, k, threshold, top_ids, top_probs):
    """The ``k`` largest of ``probs`` that reach ``threshold``, descending, ties by label id.

    Writes ``top_ids[:count]``/``top_probs[:count]`` (float64, as the API returns them), zeros
    in ``[count:k]`` (so that the ids can index a label array whole), and returns ``count``.
    """
    top_ids[:k] = 0
    top_probs[:k] = 0.0
    count = 0
    if k > _TOP_K_INSERTION_MAX:
        order = np.argsort(-probs, kind="mergesort")
        for lab in order[:k]:
            if not probs[lab] >= threshold:
                break
            top_ids[count] = lab
            top_probs[count] = probs[lab]
            count += 1
        return count
    for lab in range(probs.size):
        p = probs[lab]
        if not p >= threshold or (count == k and p <= top_probs[count - 1]):
            continue
        pos = count if count < k else k - 1
        while pos > 0 and top_probs[pos - 1] < p:
            top_probs[pos] = top_probs[pos - 1]
            top_ids[pos] = top_ids[pos - 1]
            pos -= 1
        top_probs[pos] = p
        top_ids[pos] = lab
        if count < k:
            count += 1
    return count


@njit(**BYTES)
def line_top_k(data, start, end, vocab, clf, buffers, k, threshold, top_ids, top_probs):
    """Top ``k`` of one line; ``k == 0`` stops at the hidden vector (``buffers.hidden``)."""
    b = buffers
    n = line_rows(data, start, end, vocab, b.rows, b.hashes, b.spans, b.ngram_bytes)
    for i in range(min(n, prefetch_distance(clf.inp))):
        prefetch_row(clf.inp, b.rows[i])
    weights = bag_weights_of(b.rows, n, clf.pooling, clf.idf, b.tf_rows, b.tf_counts, b.weights)
    pool_bag(clf.inp, b.rows, weights, 0, n, b.hidden)
    if k == 0:
        return 0
    loss_forward(clf.loss, clf.out, (b.no_state_2d, b.no_floats), b.hidden, b.no_labels, 0, 0, -1,
                 clf.hs_paths, clf.hs_codes, clf.hs_offsets, b.probs, b.node_p, b.no_floats, np.float32(0.0),
                 OPT_SGD, False)
    return top_k(b.probs, k, threshold, top_ids, top_probs)


@njit(**BYTES)
def line_ends(data):
    """End (the ``'\\n'``, or ``data.size``) of every line: a final line without one counts."""
    n = data.size
    count = 0
    for i in range(n):
        if data[i] == NEWLINE:
            count += 1
    if n > 0 and data[n - 1] != NEWLINE:
        count += 1
    ends = np.empty(count, np.int64)
    j = 0
    for i in range(n):
        if data[i] == NEWLINE:
            ends[j] = i
            j += 1
    if j < count:
        ends[j] = n
    return ends


@njit(**BYTES)
def _predict_lines(data, ends, l0, l1, vocab, clf, k, threshold, top_ids, top_probs, counts):
    """Lines ``l0..l1-1`` of a block, with buffers sized for the longest of them."""
    longest = 0
    for line in range(l0, l1):
        start = ends[line - 1] + 1 if line > 0 else 0
        longest = max(longest, ends[line] - start)
    buffers = line_buffers(new_scratch(vocab, clf, longest), clf)[0]
    for line in range(l0, l1):
        start = ends[line - 1] + 1 if line > 0 else 0
        counts[line] = line_top_k(data, start, ends[line], vocab, clf, buffers, k, threshold, top_ids[line],
                                   top_probs[line])


@njit(**BYTES)
def predict_block(data, ends, vocab, clf, k, threshold):
    """Top ``k`` labels of every line of ``data`` (uint8, ``'\\n'``-separated, line ends
    ``ends`` from :func:`line_ends`), on this thread.

    Returns ``(top_ids int32[n_lines, k], top_probs float64[n_lines, k], counts int32[n_lines])``:
    line ``i``'s labels are ``top_ids[i, :counts[i]]``.
    """
    n = ends.size
    top_ids = np.empty((n, k), np.int32)
    top_probs = np.empty((n, k), np.float64)
    counts = np.empty(n, np.int32)
    _predict_lines(data, ends, 0, n, vocab, clf, k, threshold, top_ids, top_probs, counts)
    return top_ids, top_probs, counts


def worth_threads(n_bytes, n_lines, line_macs):
    """Whether a block of ``n_lines`` lines, ``n_bytes`` bytes in all, is worth waking the thread team.

    Its serial time is estimated from its bytes (tokens hashed, rows looked up and summed) and its
    lines (the output layer: ``line_macs`` multiply-adds each, and a fixed part).
    """
    if numba.get_num_threads() < 2:
        return False
    work_ns = NS_PER_BYTE * n_bytes + n_lines * (NS_PER_LINE + NS_PER_MAC * line_macs)
    return work_ns >= PARALLEL_MIN_NS


__all__ = ["Classifier", "LineBuffers", "line_buffers", "line_ends", "line_top_k", "new_scratch", "predict_block",
           "worth_threads"]
