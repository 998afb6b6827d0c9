"""One hogwild training pass of the classifier (Numba): per-example forward, loss and updates.

The per-row update rules come from :mod:`fastembed.kernels.optim`, so SGD and both
Adagrads exist in one place and the trainer fuses them per example.
"""

import numpy as np

from fastembed.jit import INLINE, PARALLEL, SERIAL, njit, prange
from fastembed.kernels.optim import ADAGRAD_EPS, adagrad_row, rowwise_adagrad_row, sgd_row
from fastembed.model.forward import LOSS_OVA, LOSS_SOFTMAX, dot_row, pool_bag, sigmoid, softmax_inplace
from fastembed.model.rng import splitmix64

OPT_SGD = 0
OPT_ADAGRAD = 1
OPT_ROWWISE_ADAGRAD = 2
OPTIMIZER_CODES = {"sgd": OPT_SGD, "adagrad": OPT_ADAGRAD, "rowwise-adagrad": OPT_ROWWISE_ADAGRAD}


@njit(**INLINE)
def _update_row(table, state, row, grad, scale, lr, opt_kind):
    """One row's update; ``state`` is (element_state (n, dim), row_state (n,)), unused by SGD."""
    if opt_kind == OPT_SGD:
        sgd_row(table, row, grad, scale, lr)
    elif opt_kind == OPT_ADAGRAD:
        adagrad_row(table, state[0], row, grad, scale, lr, ADAGRAD_EPS)
    else:
        rowwise_adagrad_row(table, state[1], row, grad, scale, lr, ADAGRAD_EPS)


@njit(**INLINE)
def _binary_logistic(out, out_state, row, hidden, grad, positive, lr, opt_kind):
    """One sigmoid unit: adds its gradient w.r.t. hidden to ``grad``, updates ``out[row]``."""
    p = sigmoid(dot_row(out, row, hidden))
    coef = p - np.float32(1.0) if positive else p  # d loss / d score
    for j in range(hidden.size):
        grad[j] += coef * out[row, j]
    _update_row(out, out_state, row, hidden, coef, lr, opt_kind)
    if positive:
        return -np.log(p + np.float32(1e-5))
    return -np.log(np.float32(1.0) - p + np.float32(1e-5))


@njit(**SERIAL)
def _example_step(inp, out, inp_state, out_state, indices, weights, b0, b1,
                  labels, l0, l1, lr, loss_kind, opt_kind,
                  hs_paths, hs_codes, hs_offsets, hidden, grad, scores, rand):
    """One SGD step on one example; returns its loss."""
    pool_bag(inp, indices, weights, b0, b1, hidden)
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
        target = labels[l0 + np.int64(rand % np.uint64(l1 - l0))]
        if loss_kind == LOSS_SOFTMAX:
            for lab in range(n_out):
                scores[lab] = dot_row(out, lab, hidden)
            softmax_inplace(scores)
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


@njit(**PARALLEL)
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
            state, rand = splitmix64(state)
            loss_sum += _example_step(inp, out, inp_state, out_state, indices, weights, b0, b1,
                                      labels, l0, l1, np.float32(lr), loss_kind, opt_kind,
                                      hs_paths, hs_codes, hs_offsets, hidden, grad, scores, rand)
            seen += 1
        rng_states[t] = state
        losses[t] = loss_sum
        n_examples[t] = seen
        tokens_done[t] = local_tokens
