"""Many models in one process: does a grid of trainings keep its peak memory at that of the
largest single training? (issue 13, item 8; fastText's binding dies on the second.)

Each of the 12 settings below is first trained alone, in a fresh process; then all 12 in turn
in one process, which keeps only each model's test score (as a grid search does). Memory is
the resident set from /proc (no psutil): its peak (VmHWM) after the kernels are loaded --
every process first trains a tiny model of each loss, so that Numba's compilation and its
caches are not counted -- and, in the grid, the resident set after each training (it must not
climb). Writing 5 to /proc/self/clear_refs resets the peak before the measured part.

    python scripts/bench_many_models.py [--data DIR] [--corpus 20newsgroups] [--threads 1]

Prints one line per setting (alone: peak; grid: peak and resident set so far) and the verdict:
grid peak / largest single peak. Linux only.
"""

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DEFAULT_DATA_DIR

GRID = [dict(dim=dim, word_ngrams=ngrams, loss=loss)
        for dim in (50, 100) for ngrams in (1, 2) for loss in ("softmax", "ova", "hs")]


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _warm_up(fastembed):
    """Load every kernel a grid point uses (all three losses, both n-gram settings)."""
    lines = ["__label__a one two three", "__label__b four five six", "__label__c seven eight"] * 10
    for loss in ("softmax", "ova", "hs"):
        fastembed.train_supervised(lines, loss=loss, dim=5, epoch=1, threads=1, verbose=0,
                                   word_ngrams=2, bucket=100).test(lines)


def _train(fastembed, settings, train, test, threads):
    model = fastembed.train_supervised(train, epoch=2, threads=threads, verbose=0, **settings)
    return model.test(test)[1]


def run_points(indices, train, test, threads):
    """Train the grid points ``indices`` in this process; one JSON line per point."""
    import fastembed

    _warm_up(fastembed)
    gc.collect()
    base = _status_kb("VmRSS")
    _reset_peak()
    for i in indices:
        t0 = time.perf_counter()
        p_at_1 = _train(fastembed, GRID[i], train, test, threads)
        gc.collect()
        print(json.dumps({"point": i, "p_at_1": round(p_at_1, 4), "base_kb": base,
                          "peak_kb": _status_kb("VmHWM"), "rss_kb": _status_kb("VmRSS"),
                          "seconds": round(time.perf_counter() - t0, 2)}), flush=True)


def _child(indices, args):
    command = [sys.executable, __file__, "--points", ",".join(map(str, indices)), "--data",
               str(args.data), "--corpus", args.corpus, "--threads", str(args.threads)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--corpus", default="20newsgroups")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--points", help=argparse.SUPPRESS)  # the child's work
    args = parser.parse_args()
    train = str(args.data / args.corpus / "train.txt.gz")
    test = str(args.data / args.corpus / "test.txt.gz")
    if args.points is not None:
        run_points([int(i) for i in args.points.split(",")], train, test, args.threads)
        return
    print(f"corpus {args.corpus}, epoch 2, threads {args.threads}; memory in MB")
    singles = []
    for i, settings in enumerate(GRID):
        [row] = _child([i], args)
        singles.append(row)
        print(f"alone {i:2d} {settings}: peak {row['peak_kb'] / 1024:7.1f} "
              f"(base {row['base_kb'] / 1024:.1f}), P@1 {row['p_at_1']:.4f}, {row['seconds']} s", flush=True)
    grid = _child(list(range(len(GRID))), args)
    for row in grid:
        print(f"grid  {row['point']:2d}: peak so far {row['peak_kb'] / 1024:7.1f}, resident "
              f"{row['rss_kb'] / 1024:7.1f}, P@1 {row['p_at_1']:.4f}", flush=True)
    largest = max(singles, key=lambda r: r["peak_kb"] - r["base_kb"])
    single_growth = largest["peak_kb"] - largest["base_kb"]
    grid_growth = grid[-1]["peak_kb"] - grid[0]["base_kb"]
    print(f"largest single training: +{single_growth / 1024:.1f} MB over its process's base "
          f"(point {largest['point']}); grid of {len(GRID)}: +{grid_growth / 1024:.1f} MB over its "
          f"base; ratio {grid_growth / single_growth:.3f}; resident after the first training "
          f"{grid[0]['rss_kb'] / 1024:.1f} MB, after the last {grid[-1]['rss_kb'] / 1024:.1f} MB")
    same = all(abs(a["p_at_1"] - b["p_at_1"]) < 0.02 for a, b in zip(singles, grid))
    print(f"P@1 alone and in the grid agree within 0.02: {same}")


if __name__ == "__main__":
    main()
