"""Batch prediction on Python worker threads that claim chunks of lines inside one ``nogil`` kernel.

Numba's thread team (a ``prange`` over chunks of lines, used before this module) ends with a
join that waits for its slowest thread; on a busy machine that thread waits for a scheduler
slice, so blocks of a few milliseconds stay serial. Here each thread, the caller's included,
calls :func:`predict_claimed` once: it takes chunk numbers from an atomic counter
(:func:`claim`, an LLVM ``atomicrmw add``: no GIL, no lock per chunk) until none is left. The
caller then never waits: a chunk a worker finished is copied from that worker's own output
arrays, a chunk it claimed and has not finished is computed again by the caller (the same
kernel on the same lines: the same values). A late worker writes only into its own arrays,
which nobody returns.

``state`` (int64): ``state[0]`` the next chunk to claim, ``state[1 + c]`` who finished chunk
``c``: 0 nobody yet, ``1 + slot`` (slot 0: the caller).
"""

from __future__ import annotations

import os
import queue
import threading

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from fastembed.jit import BYTES, njit
from fastembed.model.line_predict import _predict_lines


@intrinsic
def _atomic_add(typingctx, arr, i, v):
    """``arr[i] += v`` atomically (sequentially consistent); returns the value before."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.dtype == types.int64
            and isinstance(i, types.Integer) and isinstance(v, types.Integer)):
        return None
    sig = types.int64(arr, i, v)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = cgutils.get_item_pointer2(context, builder, ary.data, cgutils.unpack_tuple(builder, ary.shape),
                                        cgutils.unpack_tuple(builder, ary.strides), aryty.layout, [idx],
                                        wraparound=False, boundscheck=False)
        val = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", ptr, val, "seq_cst")

    return sig, codegen


@njit(**BYTES)
def claim(state, i, v):  # pragma: no cover -- compiled only: the JIT-off run uses the fallback below
    """``state[i] += v`` atomically; returns the value before (``v == 0``: an ordered read)."""
    return _atomic_add(state, i, v)


if numba.config.DISABLE_JIT:  # pragma: no cover -- exercised by the NUMBA_DISABLE_JIT=1 run
    _claim_lock = threading.Lock()

    def claim(state, i, v):  # noqa: F811 -- the intrinsic cannot run as Python
        """Pure-Python fallback: a lock makes the read-add-write atomic."""
        with _claim_lock:
            before = int(state[i])
            state[i] = before + v
            return before


@njit(**BYTES)
def chunk_lines(n_lines, n_chunks, c):
    """Lines ``[l0, l1)`` of chunk ``c`` of ``n_chunks`` near-equal chunks."""
    return c * n_lines // n_chunks, (c + 1) * n_lines // n_chunks


@njit(**BYTES)
def predict_claimed(data, ends, vocab, clf, k, threshold, top_ids, top_probs, counts, state, n_chunks, slot):
    """Claim chunks from ``state[0]`` and predict them into the given arrays until none is left."""
    n = ends.size
    while True:
        c = claim(state, 0, 1)
        if c >= n_chunks:
            return
        l0, l1 = chunk_lines(n, n_chunks, c)
        _predict_lines(data, ends, l0, l1, vocab, clf, k, threshold, top_ids, top_probs, counts)
        claim(state, 1 + c, 1 + slot)


@njit(**BYTES)
def finish_claimed(data, ends, vocab, clf, k, threshold, top_ids, top_probs, counts, state, n_chunks,
                   w_ids, w_probs, w_counts):
    """The caller's end: chunks of workers copied in (finished) or predicted again (not yet)."""
    n = ends.size
    for c in range(n_chunks):
        who = claim(state, 1 + c, 0)
        if who == 1:
            continue
        l0, l1 = chunk_lines(n, n_chunks, c)
        if who == 0:
            _predict_lines(data, ends, l0, l1, vocab, clf, k, threshold, top_ids, top_probs, counts)
        else:
            top_ids[l0:l1] = w_ids[who - 2, l0:l1]
            top_probs[l0:l1] = w_probs[who - 2, l0:l1]
            counts[l0:l1] = w_counts[who - 2, l0:l1]


class ClaimTeam:
    """Daemon worker threads (started on first use) that join a caller's block through the counter."""

    def __init__(self):
        self._jobs = []  # one queue per worker
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _ensure(self, n_workers):
        with self._lock:
            if self._pid != os.getpid():  # a forked child has the queues, not the threads
                self._jobs, self._pid = [], os.getpid()
            while len(self._jobs) < n_workers:
                q = queue.SimpleQueue()
                threading.Thread(target=self._work, args=(q,), daemon=True,
                                 name=f"fastembed-predict-{len(self._jobs)}").start()
                self._jobs.append(q)

    def _work(self, q):
        while True:
            args = q.get()
            predict_claimed(*args)

    def run(self, data, ends, vocab, clf, k, threshold, n_threads, chunks_per_thread=8):
        """:func:`predict_block`'s output, the caller and ``n_threads - 1`` workers claiming chunks."""
        n = ends.size
        n_workers = max(n_threads - 1, 0)
        n_chunks = min(n, chunks_per_thread * n_threads)
        top_ids = np.empty((n, k), np.int32)
        top_probs = np.empty((n, k), np.float64)
        counts = np.empty(n, np.int32)
        state = np.zeros(1 + n_chunks, np.int64)
        w_ids = np.empty((n_workers, n, k), np.int32)
        w_probs = np.empty((n_workers, n, k), np.float64)
        w_counts = np.empty((n_workers, n), np.int32)
        self._ensure(n_workers)
        for w in range(n_workers):
            self._jobs[w].put((data, ends, vocab, clf, k, threshold, w_ids[w], w_probs[w], w_counts[w], state,
                               n_chunks, 1 + w))
        predict_claimed(data, ends, vocab, clf, k, threshold, top_ids, top_probs, counts, state, n_chunks, 0)
        finish_claimed(data, ends, vocab, clf, k, threshold, top_ids, top_probs, counts, state, n_chunks,
                       w_ids, w_probs, w_counts)
        return top_ids, top_probs, counts


TEAM = ClaimTeam()
