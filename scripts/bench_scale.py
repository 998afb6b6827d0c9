#!/usr/bin/env python
"""The scale section of the benchmark: peak RSS and time against corpus size, in memory vs out of core.

The corpus is ``scripts/make_scale_corpus.py``'s (IMDB repeated and perturbed); each size is a
prefix of it cut at a line end. Every run is a fresh process (``--worker``) training one epoch
with the default settings on ``--threads`` threads; it reports its own peak RSS
(``ru_maxrss``), the time of each phase (encode: both passes; init: the tables, idf and
pooling weights), the training tokens/s, and the tokens the training threads went through
against the corpus's (1.000 for one epoch: a pass that ended early would show) with the final
loss. ``in-memory`` forces
:func:`~fastembed.text.build_corpus` whatever the size (the out-of-core threshold raised for
that process), ``out-of-core`` forces the streaming path (threshold 0); ``cached`` trains a
second time on a ``--cache-dir`` filled by a first run.

    python scripts/make_scale_corpus.py --gb 3 -o /tmp/scale/corpus_3g.txt
    python scripts/bench_scale.py /tmp/scale/corpus_3g.txt --sizes 0.375,0.75,1.5,3 \\
        --in-memory-sizes 0.375,1.5 --out scale.md --json scale.json

Targets (issue 16): out-of-core peak RSS <= 0.4x the file at 1.5 GB and flat as it grows;
training tokens/s >= 0.8x in memory.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

MODES = ("in-memory", "out-of-core", "cached")


def worker(spec):
    import fastembed.text.out_of_core as ooc
    from fastembed.model import train_supervised, training

    ooc.OUT_OF_CORE_MIN_BYTES = 1 << 62 if spec["mode"] == "in-memory" else 0
    trained = {}
    run_epochs = training._Trainer.run

    def counted(self, *a, **k):  # the tokens the threads went through: a pass ended early shows
        stats = run_epochs(self, *a, **k)
        trained["tokens"] = int(self.workers.tokens())
        return stats
    training._Trainer.run = counted
    rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    model = train_supervised(spec["corpus"], epoch=1, threads=spec["threads"], dim=spec["dim"],
                             verbose=0, cache_dir=spec.get("cache_dir"))
    wall = time.perf_counter() - t0
    s = model.train_stats
    return {"wall_s": wall, "read_s": s["read_s"], "init_s": s["init_s"], "train_s": s["train_s"],
            "tokens": s["tokens"], "trained_tokens": trained["tokens"], "final_loss": s["final_loss"],
            "train_tokens_per_s": s["tokens"] / s["train_s"],
            "rows": int(model.dictionary.n_rows), "rss_import": rss_import,
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def prefix_file(src, gb, scratch):
    """A prefix of ``src`` of about ``gb`` GB, cut at a line end."""
    path = os.path.join(scratch, f"prefix_{gb}g.txt")
    size = int(gb * 1e9)
    with open(src, "rb") as f, open(path, "wb") as out:
        remaining = size
        while remaining > 0:
            block = f.read(min(remaining, 64 << 20))
            if not block:
                break
            out.write(block)
            remaining -= len(block)
    with open(path, "r+b") as f:  # back to the last newline
        f.seek(0, os.SEEK_END)
        end = f.tell()
        f.seek(max(end - (1 << 20), 0))
        tail = f.read()
        f.truncate(end - len(tail) + tail.rfind(b"\n") + 1)
    return path


def run(spec):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"worker failed: {spec}\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", nargs="?")
    p.add_argument("--worker")
    p.add_argument("--sizes", default="0.375,0.75,1.5", help="GB, out of core")
    p.add_argument("--in-memory-sizes", default="0.375,1.5")
    p.add_argument("--cached-sizes", default="1.5")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--scratch", default=None, help="where prefixes and the cache go (default: beside the corpus)")
    p.add_argument("--out")
    p.add_argument("--json")
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    floats = lambda s: [float(x) for x in s.split(",") if x]  # noqa: E731
    scratch = tempfile.mkdtemp(dir=args.scratch or os.path.dirname(os.path.abspath(args.corpus)))
    rows = []
    try:
        for gb in sorted(set(floats(args.sizes)) | set(floats(args.in_memory_sizes)) | set(floats(args.cached_sizes))):
            path = prefix_file(args.corpus, gb, scratch)
            size = os.path.getsize(path)
            modes = [m for m, sel in (("in-memory", args.in_memory_sizes), ("out-of-core", args.sizes))
                     if gb in floats(sel)]
            for mode in modes:
                r = run({"corpus": path, "mode": mode, "threads": args.threads, "dim": args.dim})
                rows.append(dict(r, mode=mode, file_bytes=size))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            if gb in floats(args.cached_sizes):
                cache = os.path.join(scratch, "cache")
                for mode in ("out-of-core", "cached"):  # the first run fills the cache
                    r = run({"corpus": path, "mode": "out-of-core", "threads": args.threads, "dim": args.dim,
                             "cache_dir": cache})
                    rows.append(dict(r, mode=mode + " (cache_dir)", file_bytes=size))
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                shutil.rmtree(cache)
            os.remove(path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    table = [("| mode | file GB | peak RSS GB | RSS / file | encode s | init s | train s | total s | "
              "train Mtok/s | tokens trained / corpus | final loss |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        table.append(f"| {r['mode']} | {r['file_bytes'] / 1e9:.2f} | {r['peak_rss'] / 1e9:.2f} | "
                     f"{r['peak_rss'] / r['file_bytes']:.2f} | {r['read_s']:.1f} | {r['init_s']:.1f} | "
                     f"{r['train_s']:.1f} | {r['wall_s']:.1f} | {r['train_tokens_per_s'] / 1e6:.2f} | "
                     f"{r['trained_tokens'] / r['tokens']:.3f} | {r['final_loss']:.4f} |")
    print("\n".join(table))
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(table) + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
