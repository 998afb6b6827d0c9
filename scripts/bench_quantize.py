"""Compressed models: fastembed's ``quantize`` against fastText's, on the real datasets.

For every dataset, in subprocesses of their own (fastText trains once per process):

* fastembed: ``train_supervised`` at its defaults (2 threads), saved as ``.fe``; then
  ``model.quantize()`` at its defaults, saved, loaded back from the file and tested. Reported:
  both file sizes and their ratio, P@1 of both (precision at 1, fastText's ``test``) and the
  loss in points, the quantize time.
* fastText: ``train_supervised`` at fastText's defaults (``thread=2``; ``loss="ova"`` on a
  multi-label dataset, as the main benchmark does), saved as ``.bin``; then
  ``quantize(qnorm=True, cutoff=100000, retrain=False)`` (the documented way to make a small
  ``.ftz``), saved and loaded back. The same figures.

Usage::

    python scripts/bench_quantize.py                       # every dataset -> scripts/results/quantize.md
    python scripts/bench_quantize.py --datasets trec6,sst2 --out /tmp/q.md
    python scripts/bench_quantize.py --systems fastembed --baseline ../main   # the same models, quantized
                                                                              # by another checkout too

The targets (issue 15): fastembed's quantized file at least 10x smaller, at most 0.5 points of
P@1 lost, on every dataset, at the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DATASETS, DEFAULT_DATA_DIR, REPO_ROOT, prepare_dataset

_FASTEMBED = """
import json, os, sys, time
import fastembed
train, test, out = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
m = fastembed.train_supervised(train, threads=2, verbose=0)
train_s = time.perf_counter() - t
m.save(out + ".fe")
t = time.perf_counter()
q = m.quantize()
quantize_s = time.perf_counter() - t
q.save(out + ".q.fe")
small = fastembed.load_model(out + ".q.fe")
print(json.dumps(dict(train_s=train_s, quantize_s=quantize_s, p1=m.test(test)[1], q_p1=small.test(test)[1],
                      size=os.path.getsize(out + ".fe"), q_size=os.path.getsize(out + ".q.fe"))))
"""

_BASELINE = """
import json, os, sys, time
import fastembed
model, test, out = sys.argv[1], sys.argv[2], sys.argv[3]
m = fastembed.load_model(model)
t = time.perf_counter()
q = m.quantize()
quantize_s = time.perf_counter() - t
q.save(out)
small = fastembed.load_model(out)
print(json.dumps(dict(quantize_s=quantize_s, p1=m.test(test)[1], q_p1=small.test(test)[1],
                      size=os.path.getsize(model), q_size=os.path.getsize(out))))
"""

_FASTTEXT = """
import json, os, sys, time
import fasttext
train, test, out, loss = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
t = time.perf_counter()
m = fasttext.train_supervised(input=train, thread=2, verbose=0, loss=loss)
train_s = time.perf_counter() - t
m.save_model(out + ".bin")
p1 = m.test(test)[1]
t = time.perf_counter()
m.quantize(input=train, qnorm=True, cutoff=100000, retrain=False, thread=2)
quantize_s = time.perf_counter() - t
m.save_model(out + ".ftz")
small = fasttext.load_model(out + ".ftz")
print(json.dumps(dict(train_s=train_s, quantize_s=quantize_s, p1=p1, q_p1=small.test(test)[1],
                      size=os.path.getsize(out + ".bin"), q_size=os.path.getsize(out + ".ftz"))))
"""


def _run(code, argv, env):
    # cwd: `python -c` puts the working directory first on sys.path, ahead of PYTHONPATH, so a run
    # from a checkout would import that checkout's fastembed whatever PYTHONPATH says
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env,
                          timeout=3600, cwd=tempfile.gettempdir())
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _row(dataset, system, r):
    if "error" in r:
        return f"| {dataset} | {system} | error: {r['error']} | | | | |"
    return (f"| {dataset} | {system} | {r['size'] / 1e6:.2f} MB -> {r['q_size'] / 1e6:.3f} MB | "
            f"**{r['size'] / r['q_size']:.1f}x** | {r['p1']:.4f} -> {r['q_p1']:.4f} | "
            f"**{100 * (r['p1'] - r['q_p1']):+.2f}** | {r['quantize_s']:.1f} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    p.add_argument("--systems", default="fastembed,fasttext")
    p.add_argument("--out", default=str(REPO_ROOT / "scripts" / "results" / "quantize.md"))
    p.add_argument("--baseline", metavar="REPO",
                   help="also quantize each fastembed model just trained with the code of REPO (another "
                        "checkout) at its defaults: before/after on the same trained model")
    args = p.parse_args(argv)
    systems = args.systems.split(",")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    lines = ["| dataset | system | file size | smaller | P@1 before -> after | loss (points) | quantize s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.datasets.split(","):
            ds = prepare_dataset(args.data_dir, name, scratch)
            out = str(Path(scratch) / name)
            if "fastembed" in systems:
                lines.append(_row(name, "fastembed", _run(_FASTEMBED, [ds.train, ds.test, out], env)))
                print(lines[-1], flush=True)
                if args.baseline:
                    base_env = dict(os.environ, PYTHONPATH=args.baseline)
                    lines.append(_row(name, "fastembed, baseline", _run(_BASELINE, [out + ".fe", ds.test, out + ".b.fe"],
                                                                         base_env)))
                    print(lines[-1], flush=True)
            if "fasttext" in systems:
                loss = "ova" if ds.multilabel else "softmax"
                lines.append(_row(name, f"fastText ({loss})", _run(_FASTTEXT, [ds.train, ds.test, out, loss], env)))
                print(lines[-1], flush=True)
    header = (f"# Quantized models ({time.strftime('%Y-%m-%d')})\n\n"
              "`python scripts/bench_quantize.py`: fastembed at its defaults, then `model.quantize()` at its "
              "defaults (cutoff auto: the rows that fit in 1/10.5 of the file, dsub 4, no qnorm); fastText at its "
              "defaults, then "
              "`quantize(qnorm=True, cutoff=100000, retrain=False)`. P@1 on each test set; sizes of the "
              "saved files; 2 threads, a shared machine.\n\n")
    Path(args.out).write_text(header + "\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
