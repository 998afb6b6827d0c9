"""The classifier's training kernel (Numba): hogwild SGD over one chunk of examples.

:func:`chunk_kernel` gives the kernel that each worker thread of
:mod:`fastembed.model.workers` calls on the next chunk of the epoch's shuffled order; it never
waits for another thread. Per example:
pool the bag, run the loss with backprop (:mod:`fastembed.model.loss`), then update the bag's
input rows. The row update rules come from :mod:`fastembed.kernels.optim`.
"""

import numpy as np

from fastembed.jit import INLINE, SERIAL, njit
from fastembed.model.forward import pool_bag
from fastembed.model.loss import LOSS_CODES, OPTIMIZER_CODES, loss_forward, update_row
from fastembed.model.rng import splitmix64
from fastembed.model.workers import LOSS_SUM, SEEN, TOKENS

__all__ = ["SYNC_EXAMPLES", "chunk_kernel"]

# A thread merges its copy of the output layer into the shared one (and reads the others'
# progress) every SYNC_EXAMPLES examples. Between merges it sees only its own output updates:
# merging once per epoch cost 2 threads 7 points of P@1 on an AG News slice (0.57 against
# 0.64 for 1 thread and fastText); every 512 examples 1.7 points, every 128 0.5, every 32 none
# (measured with the earlier synchronous merge; see tests/test_model.py for the 2-thread check).
# A merge reads and writes the layer three times: for 41 labels and dim 100, 12k floats,
# next to about 1M flops for 128 examples.
SYNC_EXAMPLES = 128


@njit(**INLINE)
def _example_step(inp, out, inp_state, out_state, indices, weights, b0, b1, labels, l0, l1, lr,
                  loss_kind, opt_kind, hs_paths, hs_codes, hs_offsets, hidden, grad, probs,
                  node_probs, rand):
    """One SGD step on one example; returns its loss."""
    pool_bag(inp, indices, weights, b0, b1, hidden)
    grad[:] = 0.0
    # one target per update; on a multi-label line it is drawn uniformly, as fastText does
    # (ova uses all of them)
    target = labels[l0 + np.int64(rand % np.uint64(l1 - l0))]  # int64: uint64 + int64 is a float in pure Python
    loss = loss_forward(loss_kind, out, out_state, hidden, labels, l0, l1, target, hs_paths,
                        hs_codes, hs_offsets, probs, node_probs, grad, lr, opt_kind, True)
    mean_w = np.float32(1.0) / np.float32(b1 - b0)
    unseen = inp.shape[0] - 1  # the zero row of unseen and pruned n-grams never learns
    for i in range(b0, b1):
        if indices[i] != unseen:
            w = weights[i] if weights.size > 0 else mean_w
            update_row(inp, inp_state, indices[i], grad, w, lr, opt_kind)
    return loss


@njit(**SERIAL)
def _merge_into(shared, local, snapshot):
    """shared += local - snapshot; then local = snapshot = shared (1-D, the same size).

    Unlocked: another thread may merge at the same time, and an element both write then
    loses one of the two changes (hogwild's trade, as for the input rows).
    """
    for i in range(shared.size):
        v = shared[i] + (local[i] - snapshot[i])
        shared[i] = v
        local[i] = v
        snapshot[i] = v


@njit(**SERIAL)
def _merge_rows(shared, local, snapshot):
    """:func:`_merge_into` for 2-D tables, row by row. Not ``reshape(-1)``: its error path makes
    the loaded kernel import ``numba.np.arrayobj`` (21 ms of a 0.5-s TREC-6 training process)."""
    for r in range(shared.shape[0]):
        _merge_into(shared[r], local[r], snapshot[r])


@njit(**SERIAL)
def _merge_output(out, out_state, out_local, out_state_local, out_snapshot, out_state_snapshot):
    _merge_rows(out, out_local, out_snapshot)
    _merge_rows(out_state[0], out_state_local[0], out_state_snapshot[0])
    _merge_into(out_state[1], out_state_local[1], out_state_snapshot[1])


@njit(**SERIAL)
def _others_tokens(counters, thread):
    total = 0
    for t in range(counters.shape[0]):
        if t != thread:
            total += counters[t, TOKENS]
    return total


def chunk_kernel(loss, optimizer):
    """The training kernel :func:`train_chunk` for one loss and one optimizer (names, as in
    :class:`fastembed.settings.TrainArgs`), compiled (or loaded from the cache) on first use.

    Each pair gets its own machine code, with the loss and the update rule known to the
    compiler: on SST-2 at dim 10 that made an example 25% faster than one kernel branching at
    run time, and the kernel a quarter of the size, which a process loads from the cache
    faster.
    """
    key = (LOSS_CODES[loss], OPTIMIZER_CODES[optimizer])
    if key not in _KERNELS:
        _KERNELS[key] = _compile_chunk_kernel(*key)
    return _KERNELS[key]


_KERNELS = {}


def _compile_chunk_kernel(loss_kind, opt_kind):
    @njit(**SERIAL)
    def train_chunk(inp, inp_state, out, out_state, out_local, out_state_local, out_snapshot,
                    out_state_snapshot, private, indices, offsets, weights, labels, label_offsets,
                    ntokens, example_weights, order, start, stop, lr0, tokens_total, hs_paths,
                    hs_codes, hs_offsets, thread, counters, losses, rng_states, hidden, grad, probs,
                    node_probs):
        """Hogwild SGD over the examples ``order[start:stop]``, as thread ``thread``; returns False
        if the loss stopped being finite (the chunk is then left unfinished), else True.

        Tables: ``inp`` (n_rows, dim) and its optimizer state ``inp_state`` are shared by all
        threads. The output layer is small and written by every example, so sharing it would
        make the threads fight over its cache lines (2 threads ran slower than 1 on IMDB): when
        ``private``, this thread updates its own copy ``out_local`` (with ``out_state_local``) and
        merges it into the shared ``out``/``out_state`` every :data:`SYNC_EXAMPLES` examples and
        at the end of the chunk (see :func:`_merge_into`; ``out_snapshot`` holds the shared layer
        as of its last merge). With one thread ``out_local`` *is* ``out`` and ``private`` is False.
        The state tuples are (element-wise, row-wise) as in ``training.optimizer_state``.

        Bags: CSR ``indices``/``offsets`` with pooling ``weights`` (empty: the mean), labels CSR
        ``labels``/``label_offsets``, ``ntokens`` the tokens of each line (for the schedule).
        ``example_weights`` (float32, one per example, or empty: all 1) multiplies the example's
        learning rate (:mod:`fastembed.model.weights`); an example of weight 0 is skipped, its
        tokens still counted by the schedule.

        Learning rate: ``lr0 * (1 - tokens / tokens_total)``, fastText's linear decay over the
        tokens of all threads: this thread's own count plus the others' ``counters[:, TOKENS]``,
        read at each sync. This thread publishes its counters (``counters[thread]``: tokens,
        examples; ``losses[thread, LOSS_SUM]``: summed loss) at each sync and at the end, and
        advances its random stream ``rng_states[thread]``. Scratch (this thread's own): ``hidden``
        and ``grad`` (dim,), ``probs`` (n_out,) (empty for hs) and ``node_probs`` (empty).
        """
        tokens = counters[thread, TOKENS]
        seen = counters[thread, SEEN]
        loss_sum = losses[thread, LOSS_SUM]
        others = _others_tokens(counters, thread)
        state = rng_states[thread]
        finite = True
        since_sync = 0
        for p in range(start, stop):
            ex = order[p]
            progress = (others + tokens) / tokens_total
            lr = lr0 * (1.0 - progress) if progress < 1.0 else 0.0
            tokens += ntokens[ex]
            b0 = offsets[ex]
            b1 = offsets[ex + 1]
            l0 = label_offsets[ex]
            l1 = label_offsets[ex + 1]
            if b1 == b0 or l1 == l0:
                continue
            lr_ex = np.float32(lr)
            if example_weights.size > 0:
                if example_weights[ex] == 0.0:
                    continue
                lr_ex = np.float32(lr * example_weights[ex])
            state, rand = splitmix64(state)
            loss = _example_step(inp, out_local, inp_state, out_state_local, indices, weights, b0, b1,
                                 labels, l0, l1, lr_ex, loss_kind, opt_kind, hs_paths,
                                 hs_codes, hs_offsets, hidden, grad, probs, node_probs, rand)
            loss_sum += loss
            seen += 1
            if not np.isfinite(loss):
                finite = False
                break
            since_sync += 1
            if since_sync == SYNC_EXAMPLES:
                since_sync = 0
                counters[thread, TOKENS] = tokens
                counters[thread, SEEN] = seen
                losses[thread, LOSS_SUM] = loss_sum
                if private:
                    _merge_output(out, out_state, out_local, out_state_local, out_snapshot,
                                  out_state_snapshot)
                others = _others_tokens(counters, thread)
        if private:
            _merge_output(out, out_state, out_local, out_state_local, out_snapshot, out_state_snapshot)
        counters[thread, TOKENS] = tokens
        counters[thread, SEEN] = seen
        losses[thread, LOSS_SUM] = loss_sum
        rng_states[thread] = state
        return finite

    return train_chunk
