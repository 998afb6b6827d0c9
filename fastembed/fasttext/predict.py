"""fastText's supervised forward pass, float for float (``model.cc``, ``loss.cc``, fastText 0.9.x).

A line's rows come from fastembed's line kernel (:func:`fastembed.text.line.line_rows`: the
same tokens, word ids, character n-grams, ``</s>`` and word n-gram hashes as fastText's
``Dictionary::getLine``); what differs is fastText's own:

* a bucket without a row (pruned away in a ``.ftz``) is left out of the bag, as
  ``Dictionary::pushHash`` does, so the mean divides by the rows that remain -- the row map
  gives such buckets the row ``n_rows``, which is dropped here;
* the hidden vector is the float32 sum of the rows, in order, times ``float(1.0 / n)``
  (``Model::computeHidden``), and every score a float32 dot product summed in order
  (``DenseMatrix::dotRow``): no reassociation, because ova's sigmoid is a table looked up at
  ``floor((x + 8) * 32)`` and a last-bit difference in a score can move it to the next entry
  (0.008 of probability);
* softmax: ``exp(x - max)`` in float32 over their float32 sum; ova: the 513-entry table
  (``Loss::sigmoid``); hs: ``1 / (1 + exp(-x))`` at each node of the Huffman tree, and a
  depth-first walk summing ``log(p + 1e-5)`` terms in float32, which leaves out a subtree
  whose score falls below ``log(threshold + 1e-5)`` -- so at threshold 0 a label whose path
  drops below log(1e-5) is not returned, as in fastText;
* the reported probability is ``exp(log(p + 1e-5))`` (``std_log`` in ``findKBest``): p + 1e-5.

Labels are ranked by that float32 log-probability in a heap that replays libstdc++'s
``push_heap``/``pop_heap``/``sort_heap``, so that labels of equal score come out in fastText's order.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fastembed.jit import BYTES, njit
from fastembed.model.huffman import build_paths
from fastembed.model.line_predict import line_ends
from fastembed.text.hashing import _find
from fastembed.text.line import _has_prefix, line_rows, next_token, row_capacity

LOSS_SOFTMAX, LOSS_OVA, LOSS_HS = 0, 1, 2
FASTTEXT_LOSSES = {"softmax": LOSS_SOFTMAX, "ova": LOSS_OVA, "hs": LOSS_HS}
_MAX_SIGMOID = 8
_SIGMOID_TABLE_SIZE = 512
_LOG_EPS = 1e-5  # fastText's std_log: log(x + 1e-5)


def sigmoid_table():
    """fastText's ``t_sigmoid_``: ``1.0 / (1.0 + expf(-x))`` at x = i * 16 / 512 - 8 (float), in float."""
    x = (np.arange(_SIGMOID_TABLE_SIZE + 1, dtype=np.float32) * np.float32(2 * _MAX_SIGMOID)
         / np.float32(_SIGMOID_TABLE_SIZE) - np.float32(_MAX_SIGMOID))
    return (1.0 / (1.0 + np.exp(-x).astype(np.float64))).astype(np.float32)


def hs_tree(label_counts):
    """Children of every node of fastText's Huffman tree (``HierarchicalSoftmaxLoss::buildTree``):
    ``(left, right)`` int32 arrays of ``2 * n - 1`` nodes, -1 at leaves; node ``i >= n`` reads
    output row ``i - n``; the root is the last node. fastembed's tree (:mod:`fastembed.model.huffman`)
    is built by the same rule; its paths give the children back (code 1: right)."""
    n = len(label_counts)
    paths, codes, offsets = build_paths(label_counts)
    children = np.full((2 * n - 1, 2), -1, dtype=np.int32)
    for leaf in range(n):
        node = leaf
        for k in range(offsets[leaf], offsets[leaf + 1]):
            children[n + paths[k], codes[k]] = node
            node = n + paths[k]
    return np.ascontiguousarray(children[:, 0]), np.ascontiguousarray(children[:, 1])


class FastTextNet(NamedTuple):
    """The arrays the kernels read: ``inp`` (n_rows, dim) and ``out`` float32; ``loss`` a
    :data:`FASTTEXT_LOSSES` code; the sigmoid table; the tree (empty unless hs)."""

    inp: np.ndarray
    out: np.ndarray
    loss: int
    n_labels: int
    table: np.ndarray
    left: np.ndarray
    right: np.ndarray


def make_net(inp, out, loss, label_counts):
    n_labels = len(label_counts)
    if loss == "hs":
        left, right = hs_tree(label_counts)
    else:
        left = right = np.zeros(0, np.int32)
    return FastTextNet(np.ascontiguousarray(inp, dtype=np.float32), np.ascontiguousarray(out, dtype=np.float32),
                       FASTTEXT_LOSSES[loss], n_labels, sigmoid_table(), left, right)


@njit(**BYTES)
def _dot(out, row, hidden):
    """fastText's ``dotRow``: float32, in order (unlike :func:`fastembed.model.loss.dot_row`,
    which may reassociate; see the module docstring for why this one must not)."""
    d = np.float32(0.0)
    for j in range(hidden.size):
        d += out[row, j] * hidden[j]
    return d


@njit(**BYTES)
def _std_log(x):
    return np.float32(np.log(np.float64(x) + _LOG_EPS))


@njit(**BYTES)
def _table_sigmoid(table, x):
    if x < np.float32(-_MAX_SIGMOID):
        return np.float32(0.0)
    if x > np.float32(_MAX_SIGMOID):
        return np.float32(1.0)
    pos = (x + np.float32(_MAX_SIGMOID)) * np.float32(_SIGMOID_TABLE_SIZE) / np.float32(_MAX_SIGMOID) / np.float32(2)
    return table[np.int64(pos)]


@njit(**BYTES)
def hidden_of(data, start, end, vocab, n_rows, rows, hashes, spans, buf, hidden):
    """fastText's hidden vector of ``data[start:end]`` into ``hidden``; returns the rows in the
    bag (0: fastText predicts nothing). Rows ``>= n_rows`` (buckets without a row) are left out."""
    n = line_rows(data, start, end, vocab, rows, hashes, spans, buf)
    m = 0
    for i in range(n):
        r = rows[i]
        if 0 <= r < n_rows:
            rows[m] = r
            m += 1
    hidden[:] = 0.0
    return m


@njit(**BYTES)
def _pool(inp, rows, m, hidden):
    for i in range(m):
        r = rows[i]
        for j in range(hidden.size):
            hidden[j] += inp[r, j]
    scale = np.float32(1.0 / m)
    for j in range(hidden.size):
        hidden[j] *= scale


@njit(**BYTES)
def _k_best(net, hidden, k, threshold, b):
    """fastText's ``Loss::predict``: the heap of the ``k`` best (float32 log-probability, label)
    into ``b.heap_score``/``b.heap_id``, sorted best first; returns its size."""
    thr = np.float32(threshold)
    score, ids = b.heap_score, b.heap_id
    size = 0
    if net.loss != LOSS_HS:  # computeOutput, then findKBest
        out = b.scores
        n = net.out.shape[0]
        for i in range(n):
            out[i] = _dot(net.out, i, hidden)
        if net.loss == LOSS_SOFTMAX:
            top = out[0]
            for i in range(1, n):
                top = max(top, out[i])
            z = np.float32(0.0)
            for i in range(n):
                out[i] = np.exp(out[i] - top)
                z += out[i]
            for i in range(n):
                out[i] = out[i] / z
        else:
            for i in range(n):
                out[i] = _table_sigmoid(net.table, out[i])
        for i in range(n):
            if out[i] < thr:
                continue
            v = _std_log(out[i])
            if size == k and v < score[0]:
                continue
            size = _push(score, ids, size, k, v, i)
        _sort(score, ids, size)
        return size
    n = net.n_labels
    node_log = b.node_log
    for node in range(n - 1):  # node_log[2i], [2i + 1]: the branches of internal node n + i
        f = _dot(net.out, node, hidden)
        p = np.float32(1.0 / (np.float32(1.0) + np.exp(-f)))
        node_log[2 * node] = _std_log(np.float32(1.0 - np.float64(p)))  # std_log takes a float
        node_log[2 * node + 1] = _std_log(p)
    floor = _std_log(thr)
    stack_node, stack_score = b.stack_node, b.stack_score
    top = 0
    stack_node[0] = 2 * n - 2
    stack_score[0] = np.float32(0.0)
    while top >= 0:  # dfs in fastText's order: a node's left subtree, then its right
        node = stack_node[top]
        v = stack_score[top]
        top -= 1
        if v < floor or (size == k and v < score[0]):
            continue
        if net.left[node] < 0:
            size = _push(score, ids, size, k, v, node)
            continue
        inner = node - n
        top += 1
        stack_node[top] = net.right[node]
        stack_score[top] = v + node_log[2 * inner + 1]
        top += 1
        stack_node[top] = net.left[node]
        stack_score[top] = v + node_log[2 * inner]
    _sort(score, ids, size)
    return size

# -- fastText's k-best heap: libstdc++'s push_heap / pop_heap / sort_heap, with fastText's
# comparePairs (a before b when a's score is greater), so that labels of equal score (common:
# ova's table sigmoid has 513 values, and a model may be uniform) come out in fastText's order.

@njit(**BYTES)
def _sift_up(score, ids, hole, top, v_score, v_id):
    parent = (hole - 1) // 2
    while hole > top and score[parent] > v_score:
        score[hole] = score[parent]
        ids[hole] = ids[parent]
        hole = parent
        parent = (hole - 1) // 2
    score[hole] = v_score
    ids[hole] = v_id


@njit(**BYTES)
def _adjust(score, ids, hole, length, v_score, v_id):
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if score[child] > score[child - 1]:
            child -= 1
        score[hole] = score[child]
        ids[hole] = ids[child]
        hole = child
    if (length & 1) == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        score[hole] = score[child - 1]
        ids[hole] = ids[child - 1]
        hole = child - 1
    _sift_up(score, ids, hole, top, v_score, v_id)


@njit(**BYTES)
def _pop_to_back(score, ids, length):
    """``std::pop_heap`` of ``[0, length)``: the front moves to ``length - 1``."""
    if length > 1:
        last = length - 1
        v_score, v_id = score[last], ids[last]
        score[last], ids[last] = score[0], ids[0]
        _adjust(score, ids, 0, last, v_score, v_id)


@njit(**BYTES)
def _push(score, ids, size, k, v_score, v_id):
    """``heap.push_back``, ``push_heap``, and a ``pop_heap`` + ``pop_back`` past ``k``; the new size."""
    score[size] = v_score
    ids[size] = v_id
    _sift_up(score, ids, size, 0, v_score, v_id)
    size += 1
    if size > k:
        _pop_to_back(score, ids, size)
        size -= 1
    return size


@njit(**BYTES)
def _sort(score, ids, size):
    """``std::sort_heap``: best first."""
    while size > 1:
        _pop_to_back(score, ids, size)
        size -= 1


class FastTextBuffers(NamedTuple):
    rows: np.ndarray
    hashes: np.ndarray
    spans: np.ndarray
    buf: np.ndarray
    hidden: np.ndarray
    scores: np.ndarray
    node_log: np.ndarray
    stack_node: np.ndarray
    stack_score: np.ndarray
    heap_score: np.ndarray
    heap_id: np.ndarray


@njit(**BYTES)
def new_buffers(vocab, net, n_bytes):
    n_rows, tokens = row_capacity(vocab, n_bytes)
    n = net.n_labels
    return FastTextBuffers(np.empty(n_rows, np.int32), np.empty(tokens, np.uint64), np.empty(2 * tokens, np.int64),
                           np.empty(n_bytes + 2, np.uint8), np.empty(net.inp.shape[1], np.float32),
                           np.empty(max(n, 1), np.float32), np.empty(2 * max(n, 1), np.float32),
                           np.empty(2 * max(n, 1), np.int32), np.empty(2 * max(n, 1), np.float32),
                           np.empty(n + 1, np.float32), np.empty(n + 1, np.int32))


@njit(**BYTES)
def _line_top_k(data, start, end, vocab, net, b, k, threshold, top_ids, top_probs):
    """Top ``k`` of one line into ``top_ids``/``top_probs`` (probabilities as fastText reports
    them); returns their count. ``k == 0``: the hidden vector only (``b.hidden``)."""
    m = hidden_of(data, start, end, vocab, net.inp.shape[0], b.rows, b.hashes, b.spans, b.buf, b.hidden)
    if m == 0:
        top_ids[:k] = 0
        top_probs[:k] = 0.0
        return 0
    _pool(net.inp, b.rows, m, b.hidden)
    if k == 0:
        return 0
    count = _k_best(net, b.hidden, k, threshold, b)
    top_ids[:k] = 0
    top_probs[:k] = 0.0
    for i in range(count):
        top_ids[i] = b.heap_id[i]
        top_probs[i] = np.exp(np.float64(b.heap_score[i]))
    return count


@njit(**BYTES)
def predict_one(line, vocab, net, k, threshold, top_ids, top_probs, hidden):
    b = new_buffers(vocab, net, len(line))
    count = _line_top_k(line, 0, len(line), vocab, net, b, k, threshold, top_ids, top_probs)
    hidden[:] = b.hidden
    return count


@njit(**BYTES)
def predict_block(data, vocab, net, k, threshold):
    """Top ``k`` of every line of ``data`` (uint8, ``'\\n'``-separated): ``(top_ids int32[n, k],
    top_probs float64[n, k], counts int32[n])``, as :func:`fastembed.model.line_predict.predict_block`."""
    ends = line_ends(data)
    n = ends.size
    top_ids = np.empty((n, k), np.int32)
    top_probs = np.empty((n, k), np.float64)
    counts = np.empty(n, np.int32)
    longest = 0
    for line in range(n):
        start = ends[line - 1] + 1 if line > 0 else 0
        longest = max(longest, ends[line] - start)
    b = new_buffers(vocab, net, longest)
    for line in range(n):
        start = ends[line - 1] + 1 if line > 0 else 0
        counts[line] = _line_top_k(data, start, ends[line], vocab, net, b, k, threshold, top_ids[line],
                                   top_probs[line])
    return top_ids, top_probs, counts


@njit(**BYTES)
def gold_labels(data, vocab):
    """fastText's ``test`` view of a labelled file: per line, its known labels (duplicates kept,
    as ``getLine`` gives them) in CSR ``(offsets int64[n + 1], label_ids int32[...])``."""
    ends = line_ends(data)
    n = ends.size
    offsets = np.zeros(n + 1, np.int64)
    ids = np.empty(max(data.size // 2 + 1, 1), np.int32)  # tokens are at least a byte apart
    count = 0
    for line in range(n):
        i = ends[line - 1] + 1 if line > 0 else 0
        end = ends[line]
        while True:
            s, i, h = next_token(data, i, end)
            if s >= end:
                break
            if _has_prefix(data, s, i - s, vocab.prefix):
                e = _find(vocab.table, vocab.bits, vocab.offsets, vocab.pool, data, s, i - s, h)
                if e >= vocab.nwords:
                    ids[count] = e - vocab.nwords
                    count += 1
        offsets[line + 1] = count
    return offsets, ids[:count].copy()


__all__ = ["FASTTEXT_LOSSES", "FastTextNet", "gold_labels", "hs_tree", "make_net", "predict_block", "predict_one",
           "sigmoid_table"]
