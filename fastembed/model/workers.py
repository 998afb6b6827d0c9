"""Worker threads for hogwild training: chunks claimed without barriers, the caller polls.

Any model's training loop uses :class:`Workers` the same way (``with Workers(n) as
workers:``): for each epoch it hands :meth:`Workers.run_epoch` the number of items (examples,
in the epoch's shuffled order), a chunk size and a ``step(thread, start, stop)`` that runs a
``nogil`` Numba kernel on items ``[start, stop)``. Each thread claims the next unclaimed chunk
as soon as it finishes its last one, so inside an epoch no thread ever waits for another
(dynamic claiming also evens out threads slowed by another process on their core); the end of
the epoch is the only barrier, where per-epoch work (validation, checkpoints) can later run on
a consistent model.

The calling (main) thread is one of the workers: between its chunks, and while it waits for
the others at the end of the epoch, it runs ``poll`` every ``poll_interval`` seconds:
progress, divergence checks. Ctrl-C reaches it there (a chunk takes milliseconds); it then
stops the other workers (each finishes its current chunk) and re-raises, as does any
exception of ``poll`` or of a worker.

The kernels publish their progress in :attr:`Workers.counters` (int64) and
:attr:`Workers.losses` (float64), one row per thread, each row on cache lines of its own:
columns ``TOKENS`` (tokens consumed, all epochs), ``SEEN`` (examples trained on) and
``LOSS_SUM`` (their summed loss). Threads read each other's rows without locks.
"""

import itertools
import threading
import time

import numpy as np

__all__ = ["LOSS_SUM", "SEEN", "TOKENS", "Workers", "thread_local_arrays"]

TOKENS = 0
SEEN = 1
LOSS_SUM = 0
_ROW = 16  # 8-byte counters per thread row: 128 bytes, so no two threads share a cache line
_LINE = 64


def thread_local_arrays(n_threads, shape, dtype, like=None):
    """One C-contiguous array of ``shape`` per thread, each on cache lines of its own.

    Filled with ``like`` (an array of ``shape``) or zeros. Adjacent per-thread buffers that
    share a cache line make every write of one thread evict the line from the other's cache.
    """
    dtype = np.dtype(dtype)
    size = int(np.prod(shape))
    per_line = max(_LINE // dtype.itemsize, 1)
    stride = -(-size // per_line) * per_line + per_line  # whole lines, and one more as a gap
    raw = np.zeros(n_threads * stride + per_line, dtype=dtype)
    skip = (-raw.ctypes.data % _LINE) // dtype.itemsize
    arrays = []
    for t in range(n_threads):
        a = raw[skip + t * stride: skip + t * stride + size].reshape(shape)
        if like is not None:
            a[...] = like
        arrays.append(a)
    return arrays


class _Epoch:
    """One call of :meth:`Workers.run_epoch`: its chunks and how its threads are doing."""

    def __init__(self, n_helpers, n_items, chunk, step):
        self.n_items = n_items
        self.chunk = chunk
        self.step = step
        self.claims = itertools.count()  # next() is atomic under the GIL: a chunk goes to one thread
        self.stop = threading.Event()
        self.done = threading.Event()  # set when no helper thread works on the epoch any more
        self.running = n_helpers
        if n_helpers == 0:
            self.done.set()
        self.errors = []

    def run_next(self, thread):
        """Claim the next chunk and run it; False once none is left or the epoch is stopped."""
        if self.stop.is_set():
            return False
        start = next(self.claims) * self.chunk
        if start >= self.n_items:
            return False
        if not self.step(thread, start, min(start + self.chunk, self.n_items)):
            self.stop.set()
        return True

    def help(self, thread):
        """A helper thread's share: chunks until none is left; its errors go to the caller."""
        try:
            while self.run_next(thread):
                pass
        except BaseException as exc:  # noqa: BLE001 -- re-raised by the calling thread
            self.errors.append(exc)
            self.stop.set()


class Workers:
    """``n_threads`` training threads, the calling one included, and their progress counters.

    The calling thread is thread 0: it trains too, and polls between its chunks, so with one
    thread nothing else runs. Threads 1.. start at the first :meth:`run_epoch` and live until
    :meth:`close` (or the end of a ``with`` block): starting or waking a thread costs
    milliseconds when the machine is busy.
    """

    def __init__(self, n_threads, poll_interval=0.1):
        self.n_threads = n_threads
        self.poll_interval = poll_interval
        self.counters = np.zeros((n_threads, _ROW), dtype=np.int64)
        self.losses = np.zeros((n_threads, _ROW), dtype=np.float64)
        self._cond = threading.Condition()
        self._epoch = None
        self._generation = 0  # how many epochs were handed out
        self._closed = False
        self._threads = []

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def tokens(self):
        """Tokens consumed by all threads so far."""
        return int(self.counters[:, TOKENS].sum())

    def mean_loss(self):
        """The average loss of every example trained on so far (0 before the first)."""
        seen = int(self.counters[:, SEEN].sum())
        return float(self.losses[:, LOSS_SUM].sum()) / seen if seen else 0.0

    def run_epoch(self, n_items, chunk, step, poll):
        """Run ``step`` over items ``[0, n_items)`` in chunks of ``chunk``, on all threads.

        ``step(thread, start, stop)`` returns False to stop the epoch early (the other threads
        finish their chunk and claim no more). ``poll()`` runs in the calling thread at least
        every ``poll_interval`` seconds (between its chunks, and while it waits for the others
        at the end) and once at the end. Returns True if every chunk ran.
        """
        if self._closed:
            raise RuntimeError("the workers are closed")
        epoch = _Epoch(self.n_threads - 1, n_items, chunk, step)
        if self.n_threads > 1:
            with self._cond:
                self._epoch = epoch
                self._generation += 1
                self._cond.notify_all()
        try:
            while len(self._threads) < self.n_threads - 1:
                number = len(self._threads) + 1
                thread = threading.Thread(target=self._serve, args=(number,),
                                          name=f"fastembed-train-{number}", daemon=True)
                thread.start()
                self._threads.append(thread)
            next_poll = time.monotonic() + self.poll_interval
            while epoch.run_next(0):
                if time.monotonic() >= next_poll:
                    poll()
                    next_poll = time.monotonic() + self.poll_interval
            while not epoch.done.wait(self.poll_interval):
                poll()
        except BaseException:
            epoch.stop.set()
            self.close()  # each thread finishes its chunk
            raise
        finally:
            with self._cond:  # its step holds the caller's order: not kept past the epoch
                if self._epoch is epoch:
                    self._epoch = None
        if epoch.errors:
            self.close()
            raise epoch.errors[0]
        poll()
        return not epoch.stop.is_set()

    def close(self):
        """Stop the threads once their chunk is done, and wait for them."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    def _serve(self, thread):
        """A helper thread: run its share of each epoch handed out, until closed."""
        served = 0
        while True:
            with self._cond:
                while self._generation == served and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                served = self._generation
                epoch = self._epoch
            try:
                epoch.help(thread)
            finally:
                with self._cond:
                    epoch.running -= 1
                    done = epoch.done if epoch.running == 0 else None
                    epoch = None  # its step holds the caller's data: dropped before the caller goes on
                    if done is not None:
                        done.set()
