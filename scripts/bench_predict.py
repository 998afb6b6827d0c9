"""Prediction processes against fastText: where a ``fastembed predict`` process spends its time,
and whole predict processes on small and large files.

    python scripts/bench_predict.py [--sections startup,cli] [--runs N] [--work DIR]

The in-process figures (single-line latency right after training and reloaded, batch
throughput) and the 20-line and ``train`` processes are in ``scripts/benchmark.py --configs
latency``; this script adds:

* ``startup`` -- a ``fastembed predict`` process on 20 lines, step by step (CPU and wall time),
  beside whole ``python -c pass`` / ``import numpy`` / ``import fasttext`` processes.
* ``cli``     -- whole processes: ``fastembed predict MODEL FILE`` against Python + fastText load
  + predict (``m.f.predict``/``multilinePredict``), on 20 lines (against fastText's default
  unigram model, a small file, and its bigram model) and on large files (lines/s).

Models: fastembed's default preset and fastText with ``dim=100, wordNgrams=2`` (its other
defaults), trained on TREC-50 and 20 Newsgroups. Processes run without
``PYTHONDONTWRITEBYTECODE`` (an installed package has its ``.pyc`` files).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the shared data folder next to the checkout (a worktree sits one level deeper)
DATA = next((d for d in (ROOT.parent / "shared" / "data", ROOT.parent.parent / "shared" / "data") if d.is_dir()),
            ROOT.parent / "shared" / "data")
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def corpus(work: Path, name: str, split: str) -> Path:
    path = work / f"{name}.{split}.txt"
    if not path.exists():
        with gzip.open(DATA / name / f"{split}.txt.gz", "rb") as f:
            path.write_bytes(f.read())
    return path


def texts(path: Path) -> list[str]:
    """The lines of a labelled corpus without their labels."""
    return [" ".join(t for t in line.split(" ") if not t.startswith("__label__"))
            for line in path.read_text(encoding="utf-8", errors="surrogateescape").splitlines()]


def run_process(cmd, stdout=subprocess.DEVNULL):
    """Wall and CPU (user + system) seconds of one process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if status != 0:
        raise RuntimeError(f"{cmd} failed: {err}")
    return wall, usage.ru_utime + usage.ru_stime


def alternate(commands: dict, runs: int):
    """Run each command ``runs`` times, alternating; median wall and CPU seconds of each."""
    times = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name].append(run_process(cmd))
    return {name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
            for name, t in times.items()}


def load_avg():
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# -- processes -------------------------------------------------------------------------------------

TRAIN = r'''
import sys
import fastembed, fasttext
train, out = sys.argv[1], sys.argv[2]
fasttext.train_supervised(train, dim=100, wordNgrams=2, thread=2, verbose=0).save_model(out + ".bin")
fastembed.train_supervised(train, threads=2, verbose=0).save(out + ".fe")
'''

FT_PREDICT = r'''
import sys
import fasttext
m = fasttext.load_model(sys.argv[1])
lines = open(sys.argv[2], encoding="utf-8").read().splitlines()
if len(lines) <= 100:
    out = [m.f.predict(l + "\n", 1, 0.0, "strict")[0][1] for l in lines]
else:
    out = [labels[0] for labels in m.f.multilinePredict([l + "\n" for l in lines], 1, 0.0, "strict")[0]]
sys.stdout.write("\n".join(out) + "\n")
'''

STARTUP = r'''
import sys, time
c, w = time.process_time, time.perf_counter
marks = [("", c(), w())]
def mark(name): marks.append((name, c(), w()))
import numpy as np; mark("numpy")
import click; mark("click")
import fastembed.jit; mark("numba import + registry set-up (fastembed.jit)")
import fastembed.cli; from fastembed.model.classifier import Model; mark("fastembed modules")
m = Model.load(sys.argv[1]); mark("Model.load (file, dictionary, row-map kernel)")
m._ready(); mark("token table kernel, Predictor")
data = open(sys.argv[2], "rb").read()
r = m.predict_block(np.frombuffer(data, np.uint8)); mark("predict_block kernel load + 20 lines")
r = m.predict_block(np.frombuffer(data, np.uint8)); mark("20 lines again")
import json; print(json.dumps([(n1, 1e3 * (c1 - c0), 1e3 * (w1 - w0)) for (_, c0, w0), (n1, c1, w1) in zip(marks, marks[1:])]))
'''


def models(work: Path, name: str) -> None:
    """fastembed (default preset) and fastText (dim 100, bigrams) models of a corpus, trained once."""
    if not (work / f"{name}.fe").exists():
        subprocess.run([sys.executable, "-c", TRAIN, str(corpus(work, name, "train")), str(work / name)],
                       env=ENV, check=True)


# -- sections --------------------------------------------------------------------------------------

def section_cli(work, args):
    ft_script = work / "ft_predict.py"
    ft_script.write_text(FT_PREDICT)
    for name in ("trec50", "20newsgroups"):
        models(work, name)
    small_ft = work / "trec50.unigram.bin"  # fastText's default (unigrams): a small file
    if not small_ft.exists():
        subprocess.run([sys.executable, "-c", "import fasttext, sys; fasttext.train_supervised(sys.argv[1], "
                        "dim=100, thread=2, verbose=0).save_model(sys.argv[2])",
                        str(corpus(work, "trec50", "train")), str(small_ft)], env=ENV, check=True)
    q20 = work / "q20.txt"
    q20.write_text("\n".join(texts(corpus(work, "trec50", "test"))[:20]) + "\n")
    big = work / "trec50x100.txt"
    big.write_text("\n".join(texts(corpus(work, "trec50", "test")) * 100) + "\n")
    ng = work / "20ng.txt"
    ng.write_text("\n".join(texts(corpus(work, "20newsgroups", "test"))) + "\n", errors="surrogateescape")
    print(f"\n## whole processes: predict (median of {args.runs} alternating runs; load {load_avg()})")
    print("| input | models | fastembed wall s (cpu s) | Python + fastText wall s (cpu s) | ratio (wall) |")
    print("|---|---|---:|---:|---:|")
    cases = (("20 lines", "trec50", "trec50.unigram", q20, 20), ("20 lines", "trec50", "trec50", q20, 20),
             ("50,000 TREC lines", "trec50", "trec50", big, 50_000),
             ("7,532 20NG docs", "20newsgroups", "20newsgroups", ng, 7532))
    for label, model, ft_model, path, n in cases:
        fe_file, ft_file = work / f"{model}.fe", work / f"{ft_model}.bin"
        t = alternate({"fe": [sys.executable, "-m", "fastembed.cli", "predict", str(fe_file), str(path)],
                       "ft": [sys.executable, str(ft_script), str(ft_file), str(path)]},
                      args.runs if n == 20 else max(3, args.runs // 3))
        (fw, fc), (tw, tc) = t["fe"], t["ft"]
        extra = "" if n == 20 else f"; {n / fw:,.0f} vs {n / tw:,.0f} lines/s"
        print(f"| {label} | {fe_file.name} {os.path.getsize(fe_file) / 1e6:,.0f} MB vs {ft_file.name} "
              f"{os.path.getsize(ft_file) / 1e6:,.0f} MB | {fw:.2f} ({fc:.2f}) | {tw:.2f} ({tc:.2f}) | "
              f"{fw / tw:.2f}{extra} |")


def section_startup(work, args):
    models(work, "trec50")
    model = work / "trec50.fe"
    q20 = work / "q20.txt"
    q20.write_text("\n".join(texts(corpus(work, "trec50", "test"))[:20]) + "\n")
    runs = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", STARTUP, str(model), str(q20)], env=ENV, check=True,
                             capture_output=True, text=True).stdout
        runs.append(json.loads(out))
    bare = alternate({"python -c pass": [sys.executable, "-c", "pass"],
                      "python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
                      "python -c 'import fasttext'": [sys.executable, "-c", "import fasttext"]}, args.runs)
    print(f"\n## start-up of a `fastembed predict` process, 20 lines (median of {args.runs}; load {load_avg()})")
    print("| step | cpu ms | wall ms |\n|---|---:|---:|")
    for name, (w, c) in bare.items():
        print(f"| whole process `{name}` | {1e3 * c:.0f} | {1e3 * w:.0f} |")
    for i, (name, _, _) in enumerate(runs[0]):
        cpu = statistics.median(r[i][1] for r in runs)
        wall = statistics.median(r[i][2] for r in runs)
        print(f"| {name} | {cpu:.1f} | {wall:.1f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sections", default="startup,cli")
    p.add_argument("--runs", type=int, default=9, help="alternating runs per process figure")
    p.add_argument("--work", type=Path, help="keep data and models here (default: a temporary folder)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f"# bench_predict: {os.cpu_count()} cores, load {load_avg()}")
        for name in args.sections.split(","):
            globals()[f"section_{name}"](work, args)


if __name__ == "__main__":
    main()
