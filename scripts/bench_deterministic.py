"""deterministic=True against hogwild: training time and P@1 on real corpora, and the check that
deterministic models are the same for 1 and 2 threads.

Each run is a fresh process (no warm caches of another run's tables); modes alternate within
each repetition; the figures are medians. ``train s`` is the training loop alone
(``train_stats["train_s"]``: the epochs, not reading the corpus).

    python scripts/bench_deterministic.py --datasets sst2 20newsgroups imdb --repeats 3
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path


_RUN = r"""
import hashlib, json, sys, time
import fastembed
train, test, threads, deterministic = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
model = fastembed.train_supervised(train, verbose=0, threads=threads, deterministic=deterministic)
n, p, r = model.test(test)
digest = hashlib.sha256(model.input_matrix.tobytes() + model.output_matrix.tobytes()).hexdigest()
print(json.dumps({"train_s": model.train_stats["train_s"], "p_at_1": p, "tables": digest[:16]}))
"""


def run(train, test, threads, deterministic):
    out = subprocess.run([sys.executable, "-c", _RUN, str(train), str(test), str(threads),
                          "1" if deterministic else "0"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["sst2", "20newsgroups", "imdb"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"),
                        help="folder of <name>/{train,test}.txt.gz")
    args = parser.parse_args()
    print("| dataset | hogwild P@1 / train s | deterministic P@1 / train s | time ratio | "
          "deterministic tables, 1 thread = %d threads |" % args.threads)
    print("|---|---:|---:|---:|---|")
    for name in args.datasets:
        train, test = args.data / name / "train.txt.gz", args.data / name / "test.txt.gz"
        runs = {False: [], True: []}
        for _ in range(args.repeats):
            for deterministic in (False, True):
                runs[deterministic].append(run(train, test, args.threads, deterministic))
        single = run(train, test, 1, True)
        same = all(r["tables"] == single["tables"] for r in runs[True])
        hog = statistics.median(r["train_s"] for r in runs[False])
        det = statistics.median(r["train_s"] for r in runs[True])
        print(f"| {name} | {statistics.median(r['p_at_1'] for r in runs[False]):.4f} / {hog:.2f} | "
              f"{statistics.median(r['p_at_1'] for r in runs[True]):.4f} / {det:.2f} | "
              f"{det / hog:.2f}x | {'yes' if same else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
