"""Training progress: one report dict, handed to the progress bar and to the user's callback.

The trainer's poll (:meth:`fastembed.model.workers.Workers.run_epoch` calls it every 0.1 s
from the calling thread) gives :meth:`Progress.update` the tokens done, the learning rate and
the average loss; :class:`Progress` turns them into a report::

    {"epoch": 2, "epochs": 5, "progress": 0.31, "loss": 0.52, "lr": 0.207,
     "tokens_per_s": 1.9e6, "elapsed": 1.4, "tokens": 2_650_000}

and passes it to every hook: the progress bar on stderr (:class:`ProgressBar`, what
``verbose=1`` and the command line show) and the ``callback`` of ``train_supervised``. Hooks
get a report at least every :data:`CALLBACK_INTERVAL` seconds while training runs, and one
at the end of each epoch (``"epoch_end": True``) carrying the epoch's ``train_loss`` and, with
``valid=``, ``valid_loss``, ``valid_precision_at_1``, ``valid_recall_at_1``. A callback that
returns ``False`` (not merely a falsy None) asks training to stop: :attr:`Progress.stopped`.
"""

import sys
import time

__all__ = ["CALLBACK_INTERVAL", "Progress", "ProgressBar"]

# Seconds between two reports to the callback while training runs. The brief is "at least once
# a second"; the poll runs every 0.1 s, and a report costs a dict and a Python call.
CALLBACK_INTERVAL = 0.25


class Progress:
    """The reports of one training run, handed to ``hooks``.

    Parameters
    ----------
    total_tokens : int
        Tokens of all epochs together.
    n_threads : int
    enabled : bool
        Whether the progress bar is shown (on ``stream``, default ``sys.stderr``).
    stream : file, optional
    interval : float
        Seconds between the bar's plain lines when the stream is not a terminal.
    callback : callable, optional
        Called with each report; returning ``False`` sets :attr:`stopped`.
    epochs : int
        Epochs planned, for the reports' ``epoch``/``epochs``.
    """

    def __init__(self, total_tokens, n_threads, enabled=True, stream=None, interval=5.0,
                 callback=None, epochs=1):
        self.total = max(int(total_tokens), 1)
        self.n_threads = n_threads
        self.epochs = epochs
        self.epoch = 1  # the trainer sets it as each epoch starts
        self.bar = ProgressBar(n_threads, stream, interval) if enabled else None
        self.callback = callback
        self.stopped = False
        self.start = time.perf_counter()
        self._last_callback = self.start

    def report(self, tokens, lr, loss, extra=None):
        """The report after ``tokens`` tokens (the dict ``extra`` added to it)."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        info = {"epoch": self.epoch, "epochs": self.epochs, "progress": min(tokens / self.total, 1.0),
                "loss": float(loss), "lr": float(lr), "tokens_per_s": tokens / elapsed,
                "elapsed": elapsed, "tokens": int(tokens)}
        info.update(extra or {})
        return info

    def update(self, tokens, lr, loss, final=False):
        """Report the state after ``tokens`` tokens: to the bar (which throttles itself) and, at most
        every :data:`CALLBACK_INTERVAL` seconds, to the callback until it returns False (the workers
        stop later). ``final``: the run is over, the bar ends its line (the callback had the epoch's end)."""
        if self.bar is None and self.callback is None:
            return
        info = self.report(tokens, lr, loss)
        if self.bar is not None:
            self.bar(info, final=final)
        if self.callback is not None and not final and not self.stopped:
            now = time.perf_counter()
            if now - self._last_callback >= CALLBACK_INTERVAL:
                self._last_callback = now
                self._call(info)

    def epoch_end(self, tokens, lr, loss, metrics):
        """The report of an epoch's end, with the epoch's ``metrics``; always reaches the callback."""
        if self.callback is not None:
            self._last_callback = time.perf_counter()
            self._call(self.report(tokens, lr, loss, dict(metrics, epoch_end=True)))

    def _call(self, info):
        if self.callback(info) is False:
            self.stopped = True


class ProgressBar:
    """Shows reports on stderr: percent done, words/sec/thread, lr, average loss and ETA.

    A terminal gets a live line rewritten in place (at most every 0.2 s); any other stream a
    plain line every ``interval`` seconds. Call it with each report (``final=True`` at the end).
    """

    def __init__(self, n_threads=1, stream=None, interval=5.0):
        self.n_threads = n_threads
        self.stream = stream if stream is not None else sys.stderr
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = 0.2 if self.live else interval
        self._last = float("-inf")

    def __call__(self, info, final=False):
        now = time.perf_counter()
        if not final and now - self._last < self.interval:
            return
        self._last = now
        frac = info["progress"]
        elapsed = info["elapsed"]
        speed = info["tokens_per_s"] / self.n_threads
        eta = elapsed * (1.0 - frac) / frac if frac > 0 else float("nan")
        text = (f"Progress: {100 * frac:5.1f}%  words/sec/thread: {speed:9.0f}  "
                f"lr: {info['lr']:9.6f}  avg.loss: {info['loss']:9.6f}  ETA: {_hms(eta)}")
        if self.live:
            width = 20
            filled = int(round(frac * width))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {text}")
            if final:
                self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _hms(seconds):
    if seconds != seconds:  # nan
        return "--h--m--s"
    seconds = int(round(seconds))
    return f"{seconds // 3600:d}h{seconds // 60 % 60:02d}m{seconds % 60:02d}s"
