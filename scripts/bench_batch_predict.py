#!/usr/bin/env python
"""Batch prediction throughput: fastembed (one or more source trees) against fastText, quiet and one core busy.

The ``batch lines/s`` figure of the latency table (bench_latency.py), alone and cheaper: models
are trained once, then every measurement is a fresh process that loads a model, predicts the
whole test file in one call once (the first call, which loads Numba's cached kernels, not
counted) and then ``--calls`` times, and reports the median call. fastembed:
``model.predict(lines, k=1)``; fastText: ``model.f.multilinePredict`` (one thread), as in
bench_latency.py. The systems alternate within each repetition; with ``--busy-core`` every
repetition runs twice, the second time beside a plain Python busy loop in another process.

``--tree NAME=PATH`` (repeatable) names fastembed source trees: each is measured with
``PYTHONPATH=PATH``, so a branch and main run in the same alternation::

    python scripts/bench_batch_predict.py --tree main=/work/main --tree branch=$PWD --busy-core

AG News has only a test split: its model is trained on that file (throughput, not accuracy).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

DATA = Path("/work/shared/data")
DATASETS = ["trec6", "trec50", "sms_spam", "sst2", "ag_news", "reuters21578_modapte", "20newsgroups", "imdb"]

WORKER = """\
import json, statistics, sys, time
kind, model_path, test_path, calls = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lines = []
with open(test_path, encoding="utf-8") as f:
    for line in f:
        lines.append(" ".join(t for t in line.split() if not t.startswith("__label__")))
if kind == "fasttext":
    import fasttext
    m = fasttext.load_model(model_path)
    ft_lines = [line + "\\n" for line in lines]
    def call():
        return m.f.multilinePredict(ft_lines, 1, 0.0, "strict")
else:
    import fastembed
    m = fastembed.load_model(model_path)
    def call():
        return m.predict(lines, k=1)
call()
seconds = []
for _ in range(calls):
    t0 = time.perf_counter()
    call()
    seconds.append(time.perf_counter() - t0)
print(json.dumps({"lines": len(lines), "seconds": seconds}))
"""

TRAIN_FE = """\
import sys, fastembed
fastembed.train_supervised(input=sys.argv[1], threads=2, verbose=0).save(sys.argv[2])
"""
TRAIN_FT = """\
import sys, fasttext
fasttext.train_supervised(input=sys.argv[1], dim=100, word_ngrams=2, thread=2, verbose=0).save_model(sys.argv[2])
"""


def prepare(work: Path, datasets, env):
    """Plain train/test files and one model per system and dataset (kept: reused by later runs)."""
    work.mkdir(parents=True, exist_ok=True)
    for ds in datasets:
        for split in ("train", "test"):
            dst = work / f"{ds}.{split}.txt"
            src = DATA / ds / f"{split}.txt.gz"
            if not src.exists():
                src = DATA / ds / "test.txt.gz"
            if not dst.exists():
                with gzip.open(src, "rb") as f, open(dst, "wb") as g:
                    shutil.copyfileobj(f, g)
        for script, suffix in ((TRAIN_FE, ".fe"), (TRAIN_FT, ".bin")):
            model = work / f"{ds}{suffix}"
            if not model.exists():
                subprocess.run([sys.executable, "-c", script, str(work / f"{ds}.train.txt"), str(model)],
                               check=True, env=env)
                print(f"trained {model}", file=sys.stderr)


def measure(kind, tree, work, ds, calls, env):
    run_env = dict(env)
    if tree:
        run_env["PYTHONPATH"] = tree
    suffix = ".bin" if kind == "fasttext" else ".fe"
    out = subprocess.run([sys.executable, "-c", WORKER, kind, str(work / f"{ds}{suffix}"),
                          str(work / f"{ds}.test.txt"), str(calls)],
                         check=True, env=run_env, capture_output=True, text=True)
    r = json.loads(out.stdout)
    return r["lines"] / statistics.median(r["seconds"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", action="append", default=[], help="NAME=PATH of a fastembed source tree")
    p.add_argument("--work", default="/tmp/bench_batch_predict")
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--calls", type=int, default=5)
    p.add_argument("--busy-core", action="store_true", help="also measure beside a busy loop in another process")
    p.add_argument("--json")
    args = p.parse_args()
    datasets = args.datasets.split(",")
    trees = [t.split("=", 1) for t in args.tree] or [["fastembed", ""]]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    work = Path(args.work)
    prepare(work, datasets, {**env, "PYTHONPATH": trees[0][1]} if trees[0][1] else env)
    systems = [("fastText", "fasttext", "")] + [(name, "fastembed", path) for name, path in trees]
    results = {}  # (busy, ds, system) -> [lines/s]
    for rep in range(args.repeats):
        for busy in ([False, True] if args.busy_core else [False]):
            loop = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                time.sleep(0.2 if busy else 0)
                for ds in datasets:
                    order = systems[rep % len(systems):] + systems[:rep % len(systems)]
                    for name, kind, tree in order:
                        v = measure(kind, tree, work, ds, args.calls, env)
                        results.setdefault((busy, ds, name), []).append(v)
                        print(f"rep {rep + 1} busy={busy} {ds} {name}: {v:,.0f} lines/s", file=sys.stderr)
            finally:
                if loop is not None:
                    loop.kill()
                    loop.wait()
    names = [s[0] for s in systems]
    for busy in ([False, True] if args.busy_core else [False]):
        print(f"\n### batch lines/s{' (one core busy)' if busy else ''}; medians of {args.repeats} processes, "
              f"each the median of {args.calls} calls; ×: ratio to fastText\n")
        print("| dataset | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        for ds in datasets:
            base = statistics.median(results[(busy, ds, "fastText")])
            cells = []
            for name in names:
                v = statistics.median(results[(busy, ds, name)])
                cells.append(f"{v:,.0f}" + ("" if name == "fastText" else f" ({v / base:.2f}×)"))
            print(f"| {ds} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps([[*k, v] for k, v in results.items()]))


if __name__ == "__main__":
    main()
