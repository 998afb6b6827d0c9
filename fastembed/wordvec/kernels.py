"""Numba kernels of word-vector training: skipgram and cbow with negative sampling.

fastText's model (``fasttext.cc`` ``skipgram``/``cbow``, ``model.cc``, ``loss.cc``): for each
position of a line (after subsampling) a window size ``b`` is drawn uniformly in ``1..ws``;

* skipgram: the hidden vector is the mean of the center word's subword rows; each context
  word within ``b`` positions is a positive target;
* cbow: the hidden vector is the mean of the subword rows of every context word within ``b``
  positions (a word's rows counted once per occurrence); the center word is the target.

Each target is one binary logistic unit against its output row, plus ``neg`` negatives drawn
from the unigram distribution raised to a power (``training.NEGATIVE_POWER``: fastText's 0.5
for skipgram, 0.75 for cbow; redrawn when equal to the target).
Output rows are updated at once; the gradient with respect to the hidden vector is added,
unscaled as fastText does for word vectors, to every input row of the hidden mean.

Skipgram follows fastText's order of updates, one target at a time: each context word's
gradient moves the center word's hidden vector before the next target is scored. The kernel
does this without touching the center's rows in between: the hidden vector is the mean of the
rows, so after a step ``-lr * g`` on every listed row it moves by ``-lr * g * gain`` exactly,
where ``gain = sum over the word's listed rows of how often that row is listed / number listed``
(1 unless two of its n-grams share a bucket); the steps are summed and the rows updated once
per window. fastText reads and writes every center row once per target; this reads them once
and writes them once per window, the same arithmetic up to float rounding (and up to what
other threads write meanwhile, which hogwild leaves unordered anyway). An earlier kernel used
one stale hidden vector for the whole window (fastText's skipgram without its feedback).

The budget and the learning rate are fastText's (``fasttext.cc`` ``trainThread``,
``keepTraining``): training reads known tokens until they reach ``tokens_total`` = ``epoch``
times *all* tokens of the corpus (unknown words and ``</s>`` included), the rate decaying
linearly from ``lr`` to 0 over them, with the tokens of all threads. So ``epoch=5`` makes
5 / (share of known tokens) passes, the last one partial: 5.24 on the 14.8M-word benchmark
corpus, 5.54 on its 20 Newsgroups part. An earlier kernel made exactly ``epoch`` passes.
Measured on the 20 Newsgroups part (scripts/results/wordvec.md), this alone does not close
the WordSim353 gap to fastText: .383 with the budget against .381-.388 at 5 passes (fastText
.424, .429), though 6 passes give .440 and .451.

A logistic unit is the classifier's (:func:`fastembed.model.loss.binary_logistic`), with an
exact sigmoid and log where fastText uses 512-entry tables (and a zero gradient beyond a score
of +-8).

Random numbers: one splitmix64 stream per thread (:mod:`fastembed.model.rng`); the draws, in
order, are: per token of a piece one for subsampling; then per kept position one for the
window and, if the window holds a context word, one per negative of each target in window
order (and one more per rejected draw). ``tests/test_wordvec.py`` replays them in NumPy.
"""

import numpy as np

from fastembed.jit import INLINE, REDUCE, SERIAL, njit, prefetch_row
from fastembed.kernels.optim import sgd_row
from fastembed.model.loss import OPT_SGD, binary_logistic
from fastembed.model.rng import splitmix64
from fastembed.model.workers import LOSS_SUM, SEEN, TOKENS

__all__ = ["CBOW", "MAX_PIECE", "MODEL_CODES", "SKIPGRAM", "alias_table", "draw_negative",
           "train_lines", "uniform_float"]

SKIPGRAM = 0
CBOW = 1
MODEL_CODES = {"skipgram": SKIPGRAM, "cbow": CBOW}
MAX_PIECE = 1024  # fastText's MAX_LINE_SIZE: a longer line trains as pieces of this many tokens
_MAX_REDRAWS = 64  # a negative equal to the target is redrawn at most this often, then skipped
_U64_MASK32 = np.uint64(0xFFFFFFFF)
_TWO_M24 = 1.0 / 16777216.0


@njit(**INLINE)
def uniform_float(z):
    """A float32 in [0, 1) from the top 24 bits of the 64-bit ``z``."""
    return np.float32(np.float64(z >> np.uint64(40)) * _TWO_M24)


@njit(**INLINE)
def draw_negative(alias_prob, alias_index, z):
    """A word drawn from the alias table with the 64 random bits ``z``.

    The high 32 bits pick a slot (multiply-shift), the low 24 bits the side of it.
    """
    n = np.uint64(alias_prob.size)
    slot = np.int64(((z >> np.uint64(32)) * n) >> np.uint64(32))
    u = np.float32(np.float64(z & np.uint64(0xFFFFFF)) * _TWO_M24)
    if u < alias_prob[slot]:
        return slot
    return np.int64(alias_index[slot])


def alias_table(weights):
    """Walker's alias table of the distribution ``weights / weights.sum()`` (Vose's method).

    Returns ``(prob float32[n], index int32[n])``: slot ``i`` is word ``i`` with probability
    ``prob[i]``, else word ``index[i]``; every slot equally likely. Drawing costs two reads
    from arrays of the vocabulary's size (640 KB for 80k words), where fastText's table of
    10M words is a cache miss per draw.
    """
    n = weights.size
    # the arrays are made here, not in the kernel: np.arange's and np.empty's error paths make
    # a kernel loaded from the cache import Numba's NumPy support (numba.np.arraymath), whose
    # BLAS probe imports scipy.linalg (tests/test_jit.py)
    prob = np.ones(n, dtype=np.float32)
    index = np.arange(n, dtype=np.int32)
    _fill_alias_table(weights * (n / weights.sum()), prob, index, np.empty(n, np.int64), np.empty(n, np.int64))
    return prob, index


@njit(**SERIAL)
def _fill_alias_table(scaled, prob, index, small, large):
    """Vose's pairing of ``scaled`` (the weights scaled to mean 1, consumed): fills ``prob`` (ones)
    and ``index`` (the identity) of :func:`alias_table`; ``small``/``large`` are scratch."""
    n = scaled.size
    ns = 0
    nl = 0
    for i in range(n):
        if scaled[i] < 1.0:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        s = small[ns]
        g = large[nl - 1]
        prob[s] = scaled[s]
        index[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        if scaled[g] < 1.0:
            nl -= 1
            small[ns] = g
            ns += 1
    # slots left in either stack keep probability 1 (rounding leftovers)


@njit(**INLINE)
def _logistic(out, no_state, row, hidden, grad, positive, lr):
    """One binary logistic unit (the classifier's, plain SGD, which keeps no optimizer state):
    ``grad += dloss/dhidden``, ``out[row]`` updated; returns its loss."""
    _, loss = binary_logistic(out, no_state, row, hidden, positive, grad, lr, OPT_SGD, True)
    return loss


@njit(**INLINE)
def _draw_negatives(target, neg, alias_prob, alias_index, state, negs, pos):
    """``negs[pos:pos + neg]`` = ``neg`` draws other than ``target`` (a draw equal to it is
    redrawn, up to _MAX_REDRAWS times, then -1: skipped); returns the state."""
    for n in range(neg):
        k = -1
        for _try in range(_MAX_REDRAWS):
            state, z = splitmix64(state)
            d = draw_negative(alias_prob, alias_index, z)
            if d != target:
                k = d
                break
        negs[pos + n] = k
    return state


@njit(**INLINE)
def _prefetch_targets(out, target, negs, pos, neg):
    prefetch_row(out, target)
    for n in range(pos, pos + neg):
        if negs[n] >= 0:
            prefetch_row(out, negs[n])


@njit(**INLINE)
def _negative_sampling(out, no_state, target, negs, pos, neg, hidden, grad, lr):
    """The target as a positive and ``negs[pos:pos + neg]`` as negatives; returns the loss."""
    loss = _logistic(out, no_state, target, hidden, grad, True, lr)
    for n in range(pos, pos + neg):
        if negs[n] >= 0:
            loss += _logistic(out, no_state, negs[n], hidden, grad, False, lr)
    return loss


@njit(**INLINE)
def _window(state, ws, i, m):
    state, z = splitmix64(state)
    b = 1 + np.int64(z % np.uint64(ws))
    return state, max(0, i - b), min(m, i + b + 1)


@njit(**INLINE)
def _skipgram_draws(inp, out, sub_offsets, sub_rows, piece, m, i, ws, neg, alias_prob,
                    alias_index, state, negs):
    """Position ``i``'s window and negatives (into ``negs``), its rows prefetched."""
    state, lo, hi = _window(state, ws, i, m)
    if hi - lo < 2:
        return state, lo, lo
    pos = 0
    for c in range(lo, hi):
        if c != i:
            state = _draw_negatives(piece[c], neg, alias_prob, alias_index, state, negs, pos)
            _prefetch_targets(out, piece[c], negs, pos, neg)
            pos += neg
    w = piece[i]
    for k in range(sub_offsets[w], sub_offsets[w + 1]):
        prefetch_row(inp, sub_rows[k])
    return state, lo, hi


@njit(**INLINE)
def _mean_shift(sub_rows, r0, r1):
    """How far the mean of ``sub_rows[r0:r1]`` moves, relative to one step, when every listed
    row takes that step: a row listed ``m`` times moves ``m`` steps and counts ``m`` times."""
    listed = 0
    for a in range(r0, r1):
        for b in range(r0, r1):
            if sub_rows[a] == sub_rows[b]:
                listed += 1
    return np.float32(listed) / np.float32(r1 - r0)


@njit(**INLINE)
def _skipgram(inp, out, sub_offsets, sub_rows, piece, m, ws, neg, lr, alias_prob, alias_index,
              hidden, grad, window_grad, negs, no_state, state):
    """Skipgram over ``piece[:m]``, one target at a time (see the module docstring). Position
    i + 1's random draws are made, and its rows prefetched, before position i trains: the
    output rows of the negatives are cache misses."""
    loss = 0.0
    pairs = 0
    dim = hidden.size
    if m == 0:
        return loss, pairs, state
    state, lo_next, hi_next = _skipgram_draws(inp, out, sub_offsets, sub_rows, piece, m, 0, ws,
                                              neg, alias_prob, alias_index, state, negs[0])
    for i in range(m):
        lo, hi = lo_next, hi_next
        cur = negs[i % 2]
        if i + 1 < m:
            state, lo_next, hi_next = _skipgram_draws(
                inp, out, sub_offsets, sub_rows, piece, m, i + 1, ws, neg, alias_prob,
                alias_index, state, negs[(i + 1) % 2])
        if hi - lo < 2:
            continue
        w = piece[i]
        r0 = sub_offsets[w]
        r1 = sub_offsets[w + 1]
        hidden[:] = 0.0
        for k in range(r0, r1):
            row = sub_rows[k]
            for j in range(dim):
                hidden[j] += inp[row, j]
        scale = np.float32(1.0) / np.float32(r1 - r0)
        for j in range(dim):
            hidden[j] *= scale
        shift = lr * _mean_shift(sub_rows, r0, r1)
        window_grad[:] = 0.0
        pos = 0
        for c in range(lo, hi):
            if c != i:
                grad[:] = 0.0
                loss += _negative_sampling(out, no_state, piece[c], cur, pos, neg, hidden, grad,
                                           lr)
                for j in range(dim):
                    window_grad[j] += grad[j]
                    hidden[j] -= shift * grad[j]
                pos += neg
                pairs += 1
        for k in range(r0, r1):
            sgd_row(inp, sub_rows[k], window_grad, 1.0, lr)
    return loss, pairs, state


@njit(**INLINE)
def _cbow_draws(out, piece, m, i, ws, neg, alias_prob, alias_index, state, negs):
    """Position ``i``'s window and negatives (into ``negs``), its output rows prefetched."""
    state, lo, hi = _window(state, ws, i, m)
    if hi - lo < 2:
        return state, lo, lo
    state = _draw_negatives(piece[i], neg, alias_prob, alias_index, state, negs, 0)
    _prefetch_targets(out, piece[i], negs, 0, neg)
    return state, lo, hi


@njit(**INLINE)
def _cbow(inp, out, sub_offsets, sub_rows, piece, m, ws, neg, lr, alias_prob, alias_index,
          hidden, grad, negs, no_state, state):
    """Cbow over ``piece[:m]``, drawing one position ahead as :func:`_skipgram`."""
    loss = 0.0
    pairs = 0
    dim = hidden.size
    if m == 0:
        return loss, pairs, state
    state, lo_next, hi_next = _cbow_draws(out, piece, m, 0, ws, neg, alias_prob, alias_index,
                                          state, negs[0])
    for i in range(m):
        lo, hi = lo_next, hi_next
        cur = negs[i % 2]
        if i + 1 < m:
            state, lo_next, hi_next = _cbow_draws(out, piece, m, i + 1, ws, neg, alias_prob,
                                                  alias_index, state, negs[(i + 1) % 2])
        if hi - lo < 2:
            continue
        hidden[:] = 0.0
        count = 0
        for c in range(lo, hi):
            if c != i:
                w = piece[c]
                for k in range(sub_offsets[w], sub_offsets[w + 1]):
                    row = sub_rows[k]
                    for j in range(dim):
                        hidden[j] += inp[row, j]
                count += sub_offsets[w + 1] - sub_offsets[w]
        scale = np.float32(1.0) / np.float32(count)
        for j in range(dim):
            hidden[j] *= scale
        grad[:] = 0.0
        loss += _negative_sampling(out, no_state, piece[i], cur, 0, neg, hidden, grad, lr)
        pairs += 1
        for c in range(lo, hi):
            if c != i:
                w = piece[c]
                for k in range(sub_offsets[w], sub_offsets[w + 1]):
                    sgd_row(inp, sub_rows[k], grad, 1.0, lr)
    return loss, pairs, state


@njit(**REDUCE)
def train_lines(model_kind, inp, out, sub_offsets, sub_rows, tokens, line_offsets, start, stop,
                keep_prob, alias_prob, alias_index, ws, neg, lr0, tokens_total, thread, counters,
                losses, rng_states, piece, negs, hidden, grad, window_grad):
    """Hogwild SGD of ``model_kind`` (:data:`SKIPGRAM`, :data:`CBOW`) over lines [start, stop).

    ``inp`` (rows, dim) and ``out`` (nwords, dim) float32 are shared by all threads. Word
    ``w``'s input rows are ``sub_rows[sub_offsets[w]:sub_offsets[w + 1]]``; line ``l`` is
    ``tokens[line_offsets[l]:line_offsets[l + 1]]`` (word ids); every id is in range by
    construction (:mod:`fastembed.wordvec.corpus`). ``keep_prob[w]`` is the subsampling
    keep probability, ``alias_prob``/``alias_index`` the negatives' alias table.

    The learning rate is ``lr0 * (1 - tokens / tokens_total)`` with the tokens of all threads
    (``counters[:, TOKENS]``, read at every piece of a line); once they reach ``tokens_total``
    the thread trains no further piece and returns False (fastText's ``keepTraining``). This thread adds its tokens,
    targets trained and summed loss to ``counters[thread]``/``losses[thread]`` and advances
    ``rng_states[thread]``. ``piece`` (int32[MAX_PIECE]), ``negs`` (int32[2, 2 * ws * neg]),
    ``hidden``, ``grad`` and ``window_grad`` (float32[dim]) are the thread's scratch.
    Returns True if the budget is not spent.
    """
    state = rng_states[thread]
    no_state = (np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.float32))
    mine = counters[thread, TOKENS]
    loss_sum = 0.0
    seen = 0
    spent = False
    for line in range(start, stop):
        p = line_offsets[line]
        end = line_offsets[line + 1]
        while p < end:
            q = min(end, p + MAX_PIECE)
            done = mine
            for t in range(counters.shape[0]):
                if t != thread:
                    done += counters[t, TOKENS]
            progress = done / tokens_total
            if progress >= 1.0:
                spent = True
                break
            lr = np.float32(lr0 * (1.0 - progress))
            m = 0
            for k in range(p, q):
                w = tokens[k]
                state, z = splitmix64(state)
                if uniform_float(z) < keep_prob[w]:
                    piece[m] = w
                    m += 1
            if model_kind == SKIPGRAM:
                loss, pairs, state = _skipgram(inp, out, sub_offsets, sub_rows, piece, m, ws, neg,
                                               lr, alias_prob, alias_index, hidden, grad,
                                               window_grad, negs, no_state, state)
            else:
                loss, pairs, state = _cbow(inp, out, sub_offsets, sub_rows, piece, m, ws, neg, lr,
                                           alias_prob, alias_index, hidden, grad, negs, no_state,
                                           state)
            loss_sum += loss
            seen += pairs
            mine += q - p
            counters[thread, TOKENS] = mine
            p = q
        if spent:
            break
    rng_states[thread] = state
    counters[thread, SEEN] += seen
    losses[thread, LOSS_SUM] += loss_sum
    return not spent
