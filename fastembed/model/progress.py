"""Training progress on stderr: a live line on a terminal, plain periodic lines otherwise."""

import sys
import time


class Progress:
    """Reports percent done, tokens/s/thread, learning rate, average loss and ETA.

    Parameters
    ----------
    total_tokens : int
        Tokens of all epochs together.
    n_threads : int
    enabled : bool
        False silences it.
    stream : file, optional
        Defaults to ``sys.stderr``; a terminal gets a live line rewritten in place.
    interval : float
        Seconds between plain lines when the stream is not a terminal.
    """

    def __init__(self, total_tokens, n_threads, enabled=True, stream=None, interval=5.0):
        self.total = max(int(total_tokens), 1)
        self.n_threads = n_threads
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.live = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = 0.2 if self.live else interval
        self.start = time.perf_counter()
        self._last = float("-inf")

    def update(self, tokens, lr, loss, final=False):
        """Show the state after ``tokens`` tokens; throttled unless ``final``."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if not final and now - self._last < self.interval:
            return
        self._last = now
        elapsed = max(now - self.start, 1e-9)
        frac = min(tokens / self.total, 1.0)
        speed = tokens / elapsed / self.n_threads
        eta = elapsed * (1.0 - frac) / frac if frac > 0 else float("nan")
        text = (f"Progress: {100 * frac:5.1f}%  words/sec/thread: {speed:9.0f}  "
                f"lr: {lr:9.6f}  avg.loss: {loss:9.6f}  ETA: {_hms(eta)}")
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
