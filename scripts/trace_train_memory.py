"""The NumPy/Python memory a training holds above its start, traced (``tracemalloc``): what grows
with the corpus in the trainer itself, without the noise of sampled RSS.

One epoch out of core (dim 10, 2 threads); the tables exist before training starts, so the
figure is the trainer's own working set (the epoch's order, scratch, transients). Warm the
Numba cache first (a compile inside the training is traced too).

    python scripts/trace_train_memory.py CORPUS [--cache-dir DIR] [--segment-lines N] [--deterministic]
"""

import argparse
import tracemalloc

import fastembed.text.out_of_core as ooc
from fastembed.model import train_supervised, training


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus")
    p.add_argument("--cache-dir")
    p.add_argument("--segment-lines", type=int)
    p.add_argument("--deterministic", action="store_true")
    a = p.parse_args()
    ooc.OUT_OF_CORE_MIN_BYTES = 0
    if a.segment_lines is not None:
        ooc.SEGMENT_LINES = a.segment_lines
    run, out = training._Trainer.run, {}

    def traced_run(self, *args, **kwargs):
        out["start"] = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        stats = run(self, *args, **kwargs)
        out["peak"] = tracemalloc.get_traced_memory()[1]
        return stats

    training._Trainer.run = traced_run
    tracemalloc.start()
    model = train_supervised(a.corpus, epoch=1, threads=2, dim=10, verbose=0, cache_dir=a.cache_dir,
                             deterministic=a.deterministic)
    print(f"lines {model.train_stats['examples']}: traced at the training's start {out['start'] / 1e6:.2f} MB, "
          f"training's peak above it {(out['peak'] - out['start']) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
