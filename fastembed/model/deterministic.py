"""``deterministic=True``: training whose arithmetic does not depend on the thread count.

Hogwild training (:mod:`fastembed.model.train_step`) lets threads race on the tables, so its
result depends on their timing. Here each epoch's shuffled order is cut into mini-batches of
:func:`batch_examples` examples, the same for any thread count, and each batch runs in three
steps, the parallel ones (``prange``) ending where the next begins:

1. **Pooling**, in parallel over the batch's examples (any split): each example's vector from
   the input rows as they were at the start of the batch. Each thread also files its
   examples' row updates to come (row, example, pooling weight) by the thread that owns the
   row, in example order, in its own part of the update lists; nothing else shared is written
   (its counters of updates by owner lie on cache lines of their own: :func:`_owner_counters`).
   The rows are prefetched by a cursor that runs ahead over the slice's bags one after the other
   (:func:`_prefetch_next`), not bag by bag as hogwild's pooling does.
2. **The output layer**, serially, one example after the other in the epoch's order: the
   hogwild kernel's own loss and backprop (:func:`fastembed.model.loss.loss_forward`), which
   update the output rows and give each example's gradient with respect to its vector. The
   layer is small next to the bags (its rows are read by every example, so summing a batch's
   stale output gradients instead diverged at the default lr 0.3 on TREC-6).
3. **Input rows**, in parallel over rows: the rows are dealt to the threads by a hash of the
   row (:func:`_owner`), and a thread applies, to each row it owns, every update of the batch that
   touches that row, in example order, with the hogwild kernel's row update rule
   (:func:`fastembed.model.loss.update_row`). Each row therefore sees the same sequence of
   floating-point operations whoever owns it. A thread reads only the updates filed for it
   in step 1 (those of slice 0's examples, then slice 1's, ...: example order). When each
   thread scanned all the batch's bags for its rows instead, this step barely gained from a
   second thread: thread CPU time in this step, SST-2, 1 thread 0.38 s, 2 threads 0.25 s
   each; filed, 0.23 s and 0.17 s each (20 Newsgroups: 1.57 s and 1.37 s each; filed, 1.30 s
   and 0.93 s each; one loaded machine, in one process).

The tables after each batch are thus the same for 1, 2 or 4 threads, bit for bit. Within a
batch an example does not see the input-row updates of the examples before it, as hogwild
threads do not see each other's recent updates. The random draw of a multi-label line's target
comes from a counter-based stream of (seed, epoch, position in the epoch), so it does not
depend on threads either.

The epoch's order comes in pieces (:func:`run_epoch`; an out-of-core corpus makes it a piece at
a time, so that it is never in memory whole); the batches and positions are those of the whole
order, so neither do the pieces change the model.
"""

import numba
import numpy as np

from fastembed.errors import TrainingDiverged
from fastembed.jit import INLINE, PARALLEL, njit, prange, prefetch_distance, prefetch_row, thread_count
from fastembed.model.loss import LOSS_CODES, OPTIMIZER_CODES, loss_forward, update_row
from fastembed.model.rng import splitmix64
from fastembed.model.workers import LOSS_SUM, SEEN, TOKENS
from fastembed.text.encoded import PER_LINE_CHUNK

__all__ = ["batch_examples", "batch_kernel", "run_epoch"]

# A batch holds about _BATCH_WORK multiply-adds (~1 ms at dim 100), and 128 to 1024 examples,
# a power of two: each batch ends two parallel loops, each a wake-up of the thread team (about
# 10 us on an idle core; 0.3 ms to 30 ms measured on this 2-core machine at load 20-25), so short
# examples need larger batches. The size depends on the corpus, dim and labels only, never on
# the thread count. P@1 with threads=1 (hogwild 0.827 / 0.816): SST-2 0.826, 0.823, 0.827 and
# 20 Newsgroups 0.816, 0.815, 0.811 for batches of 128, 512 and 2048.
MIN_BATCH = 128
MAX_BATCH = 1024
_BATCH_WORK = 2_000_000
_MIN_BATCHES = 64
# Examples per kernel call: the calling thread polls (progress, Ctrl-C) between calls.
_CALL_WORK = 20_000_000
_STREAM = np.uint64(0x9E3779B97F4A7C15)
_LINE_INTS = 8  # int64s in a cache line


def batch_kernel(loss, optimizer):
    """The kernel :func:`run_batches` for one loss and one optimizer, compiled on first use."""
    key = (LOSS_CODES[loss], OPTIMIZER_CODES[optimizer])
    if key not in _KERNELS:
        _KERNELS[key] = _compile(*key)
    return _KERNELS[key]


_KERNELS = {}


def _compile(loss_kind, opt_kind):
    @njit(**PARALLEL)
    def run_batches(inp, inp_state, out, out_state, indices, offsets, weights, labels,
                    label_offsets, ntokens, example_weights, order, first, start, stop, batch, lr0,
                    tokens_total, tokens, loss_sum, stream, hs_paths, hs_codes, hs_offsets, hidden, grad, probs,
                    node_probs, lrs, active, bag_starts, update_rows, update_examples, update_weights,
                    firsts, ends):
        """Mini-batches of ``order[start:stop]``; returns ``(tokens, seen, loss_sum, finite)``.

        ``order[0]`` is the epoch's example number ``first`` (a piece of the epoch's order):
        the position that numbers its multi-label draw.
        ``tokens`` are the tokens of all epochs before ``start`` (the schedule's position),
        ``loss_sum`` the summed loss so far; ``stream`` seeds this epoch's random draws.
        ``example_weights`` (one per example, or empty: all 1) multiplies an example's learning
        rate, as in the hogwild kernel (a weight of 0 leaves the example out).
        Scratch: ``hidden``, ``grad`` (batch, dim), ``lrs``, ``active`` (batch,); ``probs``
        and ``node_probs`` as in the hogwild kernel; ``bag_starts`` (batch + 1,); the batch's
        row updates ``update_rows``, ``update_examples``, ``update_weights`` (room for the
        rows of any batch); ``firsts``, ``ends`` (n_slices, n_slices and more): the updates that
        slice ``s`` found for the rows of slice ``o`` are ``firsts[s, o]:ends[s, o]``. The
        number of slices is ``firsts.shape[0]``.
        """
        n_slices = firsts.shape[0]
        unseen = inp.shape[0] - 1
        ahead = prefetch_distance(inp)
        seen = 0
        for b0 in range(start, stop, batch):
            m = min(b0 + batch, stop) - b0
            total = 0  # where each example's updates may go: one slot per row of its bag
            for k in range(m):
                bag_starts[k] = total
                total += offsets[order[b0 + k] + 1] - offsets[order[b0 + k]]
            bag_starts[m] = total
            for s in prange(n_slices):  # phase 1: pooling, and the updates to come by owner
                k0, k1 = s * m // n_slices, (s + 1) * m // n_slices
                for o in range(n_slices):
                    ends[s, o] = 0
                # the prefetch cursor: the bag row `ahead` rows on in the slice's bags
                ck, ci, cend = k0 - 1, 0, 0
                for _ in range(ahead):
                    ck, ci, cend = _prefetch_next(inp, indices, offsets, order, b0, k1, ck, ci, cend)
                for k in range(k0, k1):
                    ex = order[b0 + k]
                    i0, i1 = offsets[ex], offsets[ex + 1]
                    active[k] = i1 > i0 and label_offsets[ex + 1] > label_offsets[ex]
                    if not active[k]:
                        for i in range(i0, i1):
                            ck, ci, cend = _prefetch_next(inp, indices, offsets, order, b0, k1, ck, ci, cend)
                        continue
                    for j in range(hidden.shape[1]):  # pool_bag's arithmetic, with the cursor
                        hidden[k, j] = 0.0
                    mean_w = np.float32(1.0) / np.float32(i1 - i0)
                    for i in range(i0, i1):
                        ck, ci, cend = _prefetch_next(inp, indices, offsets, order, b0, k1, ck, ci, cend)
                        w = weights[i] if weights.size > 0 else mean_w
                        r = indices[i]
                        for j in range(hidden.shape[1]):
                            hidden[k, j] += w * inp[r, j]
                    for i in range(i0, i1):
                        if indices[i] != unseen:
                            ends[s, _owner(indices[i], n_slices)] += 1
                slot = bag_starts[k0]
                for o in range(n_slices):
                    count = ends[s, o]
                    firsts[s, o] = slot
                    ends[s, o] = slot
                    slot += count
                for k in range(k0, k1):
                    if not active[k]:
                        continue
                    ex = order[b0 + k]
                    i0, i1 = offsets[ex], offsets[ex + 1]
                    mean_w = np.float32(1.0) / np.float32(i1 - i0)
                    for i in range(i0, i1):
                        r = indices[i]
                        if r != unseen:
                            o = _owner(r, n_slices)
                            e = ends[s, o]
                            update_rows[e] = r
                            update_examples[e] = k
                            update_weights[e] = weights[i] if weights.size > 0 else mean_w
                            ends[s, o] = e + 1
            for k in range(m):  # the output layer: plain SGD, one example after the other
                ex = order[b0 + k]
                progress = tokens / tokens_total
                lrs[k] = lr0 * (1.0 - progress) if progress < 1.0 else 0.0
                tokens += ntokens[ex]
                if example_weights.size > 0 and active[k]:
                    if example_weights[ex] == 0.0:
                        active[k] = False  # phase 2 skips it too
                    else:
                        lrs[k] = lrs[k] * example_weights[ex]
                if not active[k]:
                    continue
                l0, l1 = label_offsets[ex], label_offsets[ex + 1]
                _, rand = splitmix64(stream ^ (np.uint64(first + b0 + k) * _STREAM))
                target = labels[l0 + np.int64(rand % np.uint64(l1 - l0))]
                for j in range(grad.shape[1]):  # a loop: `grad[k] = 0.0` would be a parallel region
                    grad[k, j] = 0.0
                loss = loss_forward(loss_kind, out, out_state, hidden[k], labels, l0, l1, target,
                                    hs_paths, hs_codes, hs_offsets, probs, node_probs, grad[k],
                                    np.float32(lrs[k]), opt_kind, True)
                loss_sum += loss
                seen += 1
                if not np.isfinite(loss):
                    return tokens, seen, loss_sum, False
            for o in prange(n_slices):  # phase 2: the updates of the rows slice o owns
                for s in range(n_slices):  # slices in order, each in example order
                    e1 = ends[s, o]
                    for e in range(firsts[s, o], e1):
                        # a hint only (results unchanged): the rows pooled in phase 1 left the
                        # cache since (20 Newsgroups: ~75,000 bag rows a batch); scanning the
                        # bags, the prefetch cut that run's CPU time from 4.3-5.5 s to 3.7-3.8 s
                        if e + ahead < e1:
                            prefetch_row(inp, update_rows[e + ahead])
                        k = update_examples[e]
                        if active[k]:
                            update_row(inp, inp_state, update_rows[e], grad[k], update_weights[e],
                                       np.float32(lrs[k]), opt_kind)
        return tokens, seen, loss_sum, True

    return run_batches


@njit(**INLINE)
def _prefetch_next(inp, indices, offsets, order, b0, k1, ck, ci, cend):
    """Prefetch the row of bag row ``ci`` of example ``ck`` (of the batch at ``b0``), the cursor,
    and return the cursor moved one bag row on (to the next non-empty bag before ``k1``).

    Pooling's prefetch within a bag (:func:`fastembed.model.forward.pool_bag`) starts
    ``prefetch_distance`` rows into the bag (40 at dim 100): an SST-2 bag (~20 rows) had none.
    The cursor runs over the slice's bags one after the other."""
    while ci >= cend:
        ck += 1
        if ck >= k1:
            return ck, ci, cend
        ex = order[b0 + ck]
        ci, cend = offsets[ex], offsets[ex + 1]
    prefetch_row(inp, indices[ci])
    return ck, ci + 1, cend


@njit(**INLINE)
def _owner(row, n_slices):
    """The slice whose thread updates ``row``: a multiplicative hash of the row scaled to
    ``[0, n_slices)``. Any owner gives the same results; this one spreads the rows evenly and
    needs no division. With ``row % n_slices`` (a 64-bit division twice per bag row) step 1
    took 1.82 s of thread time on 20 Newsgroups (1 thread) against 1.32 s for the pooling
    alone; hashed, 1.61 s against 1.49 s (a loaded machine, so the two pairs differ)."""
    h = (np.uint64(row) * np.uint64(0x9E3779B1)) & np.uint64(0xFFFFFFFF)
    return np.int64((h * np.uint64(n_slices)) >> np.uint64(32))


def run_epoch(trainer, pieces, epoch):
    """One epoch of ``trainer`` (a ``training._Trainer``) in deterministic mini-batches, its
    order given in consecutive ``pieces`` (int64 arrays of example numbers); False when the
    callback stopped training (between kernel calls), else True."""
    with thread_count(trainer.args.n_threads):
        return _run_pieces(trainer, pieces, epoch)


def _run_pieces(trainer, pieces, epoch):
    """The batches of the epoch's order, the order taken a piece at a time (an out-of-core
    corpus makes it so: :meth:`~fastembed.text.out_of_core.MappedCorpus.shuffled_segments`).

    The batches are those of the whole order, whatever its pieces: a batch that spans two
    pieces runs on its own, from a copy of its examples (fewer than ``batch`` wait for the
    next piece), and every example's multi-label draw is numbered by its position in the epoch.
    So the model does not depend on where the pieces end, and the order is never in memory
    whole (it was before: 8 bytes a line)."""
    batch = batch_examples(trainer)
    run = _batch_runner(trainer, epoch, batch)
    position = 0  # in the epoch, of the current piece's first example
    rest, rest_position = np.zeros(0, np.int64), 0  # examples not yet in a batch: fewer than `batch`
    for piece in pieces:
        head = min(-rest.size % batch, piece.size)  # what completes the batch begun in `rest`
        if rest.size:
            rest = np.concatenate([rest, piece[:head]])
            if rest.size == batch:
                if not run(rest, rest_position, 0, batch):
                    return False
                rest = rest[:0]
        whole = head + (piece.size - head) // batch * batch
        if whole > head and not run(piece, position, head, whole):
            return False
        if whole < piece.size:
            rest, rest_position = piece[whole:].copy(), position + whole
        position += piece.size
        del piece  # not held while the next piece is made
    return run(rest, rest_position, 0, rest.size) if rest.size else True


def _batch_runner(trainer, epoch, batch):
    """``run(order, first, start, stop)``: the batches of ``order[start:stop]`` (``order[0]``
    the epoch's example number ``first``) in kernel calls of about _CALL_WORK, polling after
    each; False when the callback stopped training."""
    args, c, workers = trainer.args, trainer.corpus, trainer.workers
    n_slices = numba.get_num_threads()
    kernel = batch_kernel(args.loss, args.optimizer)
    scratch = _scratch(trainer)
    owners = _owner_counters(n_slices), _owner_counters(n_slices)
    paths, codes, hs_offsets = trainer.hs
    stream = np.random.default_rng([args.seed, epoch]).integers(0, 2**63, dtype=np.uint64)
    per_call = max(batch, _CALL_WORK // _example_work(trainer) // batch * batch)
    release_lines = getattr(c, "release_lines", None)  # an out-of-core corpus: pages released
    if release_lines is not None:  # by volume, after each call (see MappedCorpus.lines_read)
        per_call = max(batch, min(per_call, release_lines() // batch * batch))

    def run(order, first, start, stop):
        for call_start in range(start, stop, per_call):
            if trainer.progress.stopped:
                return False
            call_stop = min(call_start + per_call, stop)
            tokens, seen, loss_sum, finite = kernel(
                trainer.inp, trainer.inp_state, trainer.out, trainer.out_state, c.indices, c.offsets,
                trainer.weights, c.label_indices, c.label_offsets, c.ntokens, trainer.example_weights,
                order, first, call_start, call_stop, batch, float(args.lr), trainer.tokens_total,
                workers.tokens(), float(workers.losses[:, LOSS_SUM].sum()), stream, paths, codes,
                hs_offsets, *scratch, *owners)
            seen += int(workers.counters[:, SEEN].sum())
            workers.counters[:, [TOKENS, SEEN]] = 0  # the totals in thread 0's row, the others zero
            workers.losses[:, LOSS_SUM] = 0.0
            workers.counters[0, TOKENS], workers.counters[0, SEEN] = tokens, seen
            workers.losses[0, LOSS_SUM] = loss_sum
            trainer.lines_read(call_stop - call_start)
            trainer._poll()  # raises TrainingDiverged when the loss is not finite
            if not finite:  # the poll raised already: the kernel stopped at that example's loss
                raise TrainingDiverged(f"training diverged (loss is {loss_sum})")
        return True
    return run


def _owner_counters(n_slices):
    """(n_slices, n_slices + 8) int64 zeros, of which the kernel uses the first n_slices columns:
    the rows used lie on cache lines apart. (Not a view of those columns: with 1 thread it
    would be C-contiguous, with 2 not, and the kernel compiled twice.)

    In step 1 thread ``s`` counts and files its updates in row ``s`` once per bag row; with the
    rows adjacent (2 threads: all four counters on one cache line) every such write took the
    line away from the other thread."""
    return np.zeros((n_slices, n_slices + _LINE_INTS), np.int64)


def batch_examples(trainer):
    """Examples per mini-batch (see _BATCH_WORK), and at least _MIN_BATCHES batches an epoch:
    2 batches of 1024 an epoch on a 2,000-line TREC-6 slice (ova, Adagrad) lost 4 points of
    P@1 to hogwild's 0.876."""
    batch = MIN_BATCH
    most = max(MIN_BATCH, trainer.corpus.n_lines // _MIN_BATCHES)
    while 2 * batch <= min(MAX_BATCH, most) and 2 * batch * _example_work(trainer) <= _BATCH_WORK:
        batch *= 2
    return batch


def _example_work(trainer):
    """Multiply-adds of an average example: pooling and updating its rows, the output layer."""
    c = trainer.corpus
    rows = c.indices.size / max(c.n_lines, 1)
    return max(1, int(trainer.args.dim * (2 * rows + 3 * trainer.out.shape[0])))


def _scratch(trainer):
    """Per-example buffers of a batch, and room for the row updates of any batch (its bags hold
    at most as many rows as the largest ``batch`` bags), made once per run."""
    if getattr(trainer, "_batch_scratch", None) is None:
        dim, batch = trainer.args.dim, batch_examples(trainer)
        room = _largest_bags_rows(trainer.corpus.offsets, batch, release=trainer.release_pages)
        trainer._batch_scratch = (
            np.zeros((batch, dim), np.float32), np.zeros((batch, dim), np.float32),
            trainer.probs[0], trainer.node_probs, np.zeros(batch, np.float64),
            np.zeros(batch, np.bool_), np.zeros(batch + 1, np.int64), np.zeros(room, np.int32),
            np.zeros(room, np.int32), np.zeros(room, np.float32))
    return trainer._batch_scratch


def _largest_bags_rows(offsets, batch, chunk_lines=PER_LINE_CHUNK, release=lambda: None):
    """Rows in the ``batch`` largest bags of ``offsets`` (all of them if fewer), read a chunk of
    lines at a time: an out-of-core corpus maps ``offsets``, and a whole ``np.diff`` of it would
    be 8 bytes a line in memory (~60 MB for a 10 GB corpus); ``release()`` after each chunk
    unmaps the pages read (else the whole file stays mapped until the training's first poll)."""
    top = np.zeros(0, np.int64)
    n = offsets.size - 1
    for a in range(0, n, chunk_lines):
        sizes = np.diff(offsets[a:min(a + chunk_lines, n) + 1]).astype(np.int64, copy=False)
        if sizes.size > batch:  # in place: one chunk's sizes in memory (8 MB), not two or three
            sizes.partition(sizes.size - batch)
            sizes = sizes[-batch:].copy()  # not a view: the chunk goes before the next is read
        top = np.concatenate([top, sizes])
        if top.size > batch:
            top.partition(top.size - batch)
            top = top[-batch:]
        release()
    return int(top.sum())
