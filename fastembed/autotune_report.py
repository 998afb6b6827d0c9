"""Autotune's progress: one line per trial on stderr, and the callback's dict after each trial."""

import sys
import time

__all__ = ["Report", "callback_info"]


def callback_info(record, standings, t_start):
    """What the callback gets after a trial."""
    return {"trial": record["trial"], "elapsed_s": time.perf_counter() - t_start, "score": record["score"],
            "best_score": standings.best_score(), "settings": dict(record["settings"]),
            "status": record["status"]}


class Report:
    """One line per trial on stderr (verbose >= 1)."""

    def __init__(self, verbose, duration, metric, t_start):
        self.enabled = verbose >= 1
        self.duration, self.metric, self.t_start = duration, metric, t_start

    def trial(self, record, standings):
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.t_start
        score = "-" if record["score"] is None else f"{record['score']:.4f}"
        best = standings.best_score()
        best_score = "-" if best is None else f"{best:.4f}"
        if record["repeat_of"] is not None:
            split = ", swapped split" if record.get("split") == "swapped" else ""
            score += f" (seed {record['seed']}{split}, again trial {record['repeat_of']})"
        settings = " ".join(f"{k}={_fmt(v)}" for k, v in record["settings"].items())
        print(f"autotune {elapsed:6.1f}/{self.duration:g} s  trial {record['trial']:3d} "
              f"{record['status']:<8} {self.metric} {score} (best {best_score})  {settings}",
              file=sys.stderr, flush=True)

    def refit(self, record):
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.t_start
        why = f": {record['reason']}" if record["reason"] else f" in {record['seconds']:.1f} s"
        print(f"autotune {elapsed:6.1f}/{self.duration:g} s  refit on training + validation data "
              f"{record['status']}{why}", file=sys.stderr, flush=True)

    def done(self, standings, n_trials, elapsed, stopped):
        if not self.enabled:
            return
        best = standings.best_run()
        settings = " ".join(f"{k}={_fmt(v)}" for k, v in best["settings"].items())
        runs = len(standings.best_group())
        print(f"autotune: best {self.metric} {standings.best_score():.4f} (mean of {runs} run{'s' * (runs > 1)}; "
              f"model of trial {best['trial']} of {n_trials}, "
              f"{elapsed:.1f} s, stopped by {stopped})  {settings}", file=sys.stderr, flush=True)


def _fmt(value):
    return f"{value:.3g}" if isinstance(value, float) else str(value)

