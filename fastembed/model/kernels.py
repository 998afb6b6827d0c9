"""Numba kernels of the classifier: one hogwild training pass, the forward pass, initialisation.

The per-row update rules come from :mod:`fastembed.kernels.optim`, so SGD and both
Adagrads exist in one place and the trainer fuses them per example.

Bags are CSR (``indices``, ``offsets``); ``weights`` holds one pooling weight per index,
or is empty for the plain mean (weight ``1 / len(bag)``), fastText's pooling.
"""

import numpy as np

from fastembed import _numba_startup

_numba_startup.prepare()  # before any kernel compiles or loads: see that module

from numba import njit, prange

from fastembed.kernels.lookup import prefetch_distance, prefetch_row
from fastembed.kernels.optim import adagrad_row, rowwise_adagrad_row, sgd_row

LOSS_SOFTMAX = 0
LOSS_OVA = 1
LOSS_HS = 2
LOSS_CODES = {"softmax": LOSS_SOFTMAX, "ova": LOSS_OVA, "hs": LOSS_HS}

OPT_SGD = 0
OPT_ADAGRAD = 1
OPT_ROWWISE_ADAGRAD = 2
OPTIMIZER_CODES = {"sgd": OPT_SGD, "adagrad": OPT_ADAGRAD, "rowwise-adagrad": OPT_ROWWISE_ADAGRAD}

ADAGRAD_EPS = 1e-10


# -- random numbers: splitmix64, a counter-based generator, so streams are cheap to derive ----

@njit(cache=True, nogil=True, inline="always")
def _splitmix64(x):
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x, z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True, parallel=True)
def init_uniform(table, bound, seed):
    """Fill ``table`` (n_rows, dim) float32 in place with U(-bound, bound).

    Element (i, j) depends only on (seed, i, j), not on the thread count.
    """
    n_rows, dim = table.shape
    base = np.uint64(seed) * np.uint64(0x100000001B3)
    for i in prange(n_rows):
        state = base ^ (np.uint64(i) * np.uint64(0xD6E8FEB86659FD93))
        for j in range(dim):
            state, z = _splitmix64(state)
            u = np.float32((z >> np.uint64(40)) * (1.0 / 16777216.0))  # 24 random bits in [0, 1)
            table[i, j] = np.float32(bound) * (np.float32(2.0) * u - np.float32(1.0))


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


# -- forward ----------------------------------------------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def _pool(table, indices, weights, b0, b1, hidden):
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


@njit(cache=True, nogil=True, inline="always")
def _dot(out, row, hidden):
    s = np.float32(0.0)
    for j in range(hidden.size):
        s += out[row, j] * hidden[j]
    return s


@njit(cache=True, nogil=True, inline="always")
def _sigmoid(x):
    if x < -30.0:
        return np.float32(0.0)
    if x > 30.0:
        return np.float32(1.0)
    return np.float32(1.0) / (np.float32(1.0) + np.exp(-x))


@njit(cache=True, nogil=True, inline="always")
def _softmax_inplace(scores):
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


@njit(cache=True, nogil=True, parallel=True)
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
        _pool(inp, indices, weights, offsets[b], offsets[b + 1], hidden)
        row = probs[b]
        if loss_kind == LOSS_HS:
            node_p = np.empty(n_out, dtype=np.float32)
            for r in range(n_out):
                node_p[r] = _sigmoid(_dot(out, r, hidden))
            for lab in range(n_labels):
                p = np.float32(1.0)
                for q in range(hs_offsets[lab], hs_offsets[lab + 1]):
                    s = node_p[hs_paths[q]]
                    p *= s if hs_codes[q] else np.float32(1.0) - s
                row[lab] = p
        else:
            for lab in range(n_labels):
                row[lab] = _dot(out, lab, hidden)
            if loss_kind == LOSS_SOFTMAX:
                _softmax_inplace(row)
            else:
                for lab in range(n_labels):
                    row[lab] = _sigmoid(row[lab])


# -- training ---------------------------------------------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def _update_row(table, state, row, grad, scale, lr, opt_kind):
    """One row's update; ``state`` is (element_state (n, dim), row_state (n,)), unused by SGD."""
    if opt_kind == OPT_SGD:
        sgd_row(table, row, grad, scale, lr)
    elif opt_kind == OPT_ADAGRAD:
        adagrad_row(table, state[0], row, grad, scale, lr, ADAGRAD_EPS)
    else:
        rowwise_adagrad_row(table, state[1], row, grad, scale, lr, ADAGRAD_EPS)


@njit(cache=True, nogil=True, inline="always")
def _binary_logistic(out, out_state, row, hidden, grad, positive, lr, opt_kind):
    """One sigmoid unit: adds its gradient w.r.t. hidden to ``grad``, updates ``out[row]``."""
    p = _sigmoid(_dot(out, row, hidden))
    coef = p - np.float32(1.0) if positive else p  # d loss / d score
    for j in range(hidden.size):
        grad[j] += coef * out[row, j]
    _update_row(out, out_state, row, hidden, coef, lr, opt_kind)
    if positive:
        return -np.log(p + np.float32(1e-5))
    return -np.log(np.float32(1.0) - p + np.float32(1e-5))


@njit(cache=True, nogil=True)
def _example_step(inp, out, inp_state, out_state, indices, weights, b0, b1,
                  labels, l0, l1, lr, loss_kind, opt_kind,
                  hs_paths, hs_codes, hs_offsets, hidden, grad, scores, rand):
    """One SGD step on one example; returns its loss."""
    _pool(inp, indices, weights, b0, b1, hidden)
    grad[:] = 0.0
    loss = np.float32(0.0)
    n_out = out.shape[0]
    if loss_kind == LOSS_OVA:
        for lab in range(n_out):
            positive = False
            for q in range(l0, l1):
                if labels[q] == lab:
                    positive = True
            loss += _binary_logistic(out, out_state, lab, hidden, grad, positive, lr, opt_kind)
    else:
        # one target per update; on a multi-label line it is drawn uniformly, as fastText does
        target = labels[l0 + (rand % np.uint64(l1 - l0))]
        if loss_kind == LOSS_SOFTMAX:
            for lab in range(n_out):
                scores[lab] = _dot(out, lab, hidden)
            _softmax_inplace(scores)
            for lab in range(n_out):
                coef = scores[lab] - (np.float32(1.0) if lab == target else np.float32(0.0))
                for j in range(hidden.size):
                    grad[j] += coef * out[lab, j]
                _update_row(out, out_state, lab, hidden, coef, lr, opt_kind)
            loss = -np.log(scores[target] + np.float32(1e-5))
        else:
            for q in range(hs_offsets[target], hs_offsets[target + 1]):
                loss += _binary_logistic(out, out_state, hs_paths[q], hidden, grad,
                                         hs_codes[q] != 0, lr, opt_kind)
    n = b1 - b0
    mean_w = np.float32(1.0) / np.float32(n)
    unseen = inp.shape[0] - 1  # the zero row of unseen and pruned n-grams never learns
    for i in range(b0, b1):
        if indices[i] != unseen:
            w = weights[i] if weights.size > 0 else mean_w
            _update_row(inp, inp_state, indices[i], grad, w, lr, opt_kind)
    return loss


@njit(cache=True, nogil=True, parallel=True)
def train_pass(inp, out_local, inp_state, out_state_local, indices, offsets, weights, labels, label_offsets,
               ntokens, order, start, stop, n_threads, lr0, tokens_before, tokens_total,
               loss_kind, opt_kind, hs_paths, hs_codes, hs_offsets, rng_states,
               losses, n_examples, tokens_done):
    """Hogwild SGD over examples ``order[start:stop]``, split into ``n_threads`` contiguous shards.

    The input table ``inp`` is shared by all threads (hogwild). The output layer is small and
    written by every example, so sharing it would make the threads fight over its cache lines
    (2 threads ran slower than 1 on IMDB); instead thread ``t`` updates its own copy
    ``out_local[t]`` (n_threads, n_out, dim), with its optimizer state
    ``out_state_local = (element (n_threads, n_out, dim), row (n_threads, n_out))``, and the
    caller merges the copies after the pass.

    The learning rate decays linearly with the tokens seen, ``lr0 * (1 - tokens / tokens_total)``,
    fastText's schedule; each thread estimates the global count as its own count times the
    number of threads. Per thread ``t``, ``losses[t]``, ``n_examples[t]`` and
    ``tokens_done[t]`` receive the summed loss, the examples and the tokens of the pass,
    and ``rng_states[t]`` advances. With ``n_threads == 1`` the result is deterministic.
    """
    dim = inp.shape[1]
    n_out = out_local.shape[1]
    total = stop - start
    for t in prange(n_threads):
        out = out_local[t]
        out_state = (out_state_local[0][t], out_state_local[1][t])
        lo = start + (total * t) // n_threads
        hi = start + (total * (t + 1)) // n_threads
        hidden = np.empty(dim, dtype=np.float32)
        grad = np.empty(dim, dtype=np.float32)
        scores = np.empty(n_out, dtype=np.float32)
        state = rng_states[t]
        local_tokens = 0
        loss_sum = 0.0
        seen = 0
        for p in range(lo, hi):
            ex = order[p]
            progress = (tokens_before + local_tokens * n_threads) / tokens_total
            lr = lr0 * (1.0 - progress) if progress < 1.0 else 0.0
            local_tokens += ntokens[ex]
            b0 = offsets[ex]
            b1 = offsets[ex + 1]
            l0 = label_offsets[ex]
            l1 = label_offsets[ex + 1]
            if b1 == b0 or l1 == l0:
                continue
            state, rand = _splitmix64(state)
            loss_sum += _example_step(inp, out, inp_state, out_state, indices, weights, b0, b1,
                                      labels, l0, l1, np.float32(lr), loss_kind, opt_kind,
                                      hs_paths, hs_codes, hs_offsets, hidden, grad, scores, rand)
            seen += 1
        rng_states[t] = state
        losses[t] = loss_sum
        n_examples[t] = seen
        tokens_done[t] = local_tokens
