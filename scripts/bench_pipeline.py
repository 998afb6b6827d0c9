#!/usr/bin/env python
"""Benchmark: corpus -> dictionary -> encoded bags, fastembed.text vs fastText.

    python scripts/bench_pipeline.py [--data PATH(.gz)] [--runs 5] [--word-ngrams 2]

The corpus is gunzipped to a temporary file first (fastText cannot read gzip).

* fastText: ``fasttext.train_supervised(input=path, epoch=0, thread=1,
  wordNgrams=2, verbose=0)`` timed inside a fresh subprocess per run (fastText's
  binding is trained only once per process).  ``epoch=0`` makes it build the
  dictionary and initialise the matrices, nothing else.  The same with
  ``dim=1`` is shown too: it is closer to fastText's pure dictionary pass (the
  default ``dim=100`` also fills a (nwords + 2M) x 100 random matrix).
* fastembed: ``build_corpus(path, word_ngrams=2)`` -- read + dictionary +
  encode, serial Numba kernels on one core -- timed ``--runs`` times in one
  fresh worker process, after warm-up calls (a tiny input, whose time is the
  reported first-call JIT cost, then the first 4 MiB of the corpus, which
  loads the kernels only big inputs reach).  The worker also reports the
  import time, and the peak RSS of its
  first timed run (``VmHWM`` reset through ``/proc/self/clear_refs``) over the
  baseline RSS taken just before.

Prints markdown tables; tokens are counted as fastText does (every word and
label, ``</s>`` once per line).
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
import tempfile
import time

# the project's shared data sits beside the checkout: ../shared/data
DEFAULT_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "shared", "data", "imdb", "train.txt.gz")

FT_SNIPPET = """
import sys, time
import fasttext
path, wn, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t = time.perf_counter()
m = fasttext.train_supervised(input=path, epoch=0, thread=1, wordNgrams=wn, verbose=0, dim=dim)
dt = time.perf_counter() - t
print(dt, len(m.words), len(m.labels))
"""


def _status(field: str) -> int:
    """A ``/proc/self/status`` field in bytes (e.g. VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def worker(path: str, runs: int, word_ngrams: int) -> None:
    """Runs in a fresh process; prints one JSON line."""
    t0 = time.perf_counter()
    import numba
    import numpy as np

    import fastembed.text as ft
    from fastembed.text import scan

    numba.set_num_threads(1)
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    ft.build_corpus(["__label__a warm up", "__label__b call"], word_ngrams=word_ngrams)
    t_first = time.perf_counter() - t0
    # the kernels only a big input reaches (table rehash, buffer growth): load them too
    with open(path, "rb") as f:
        head = f.read(4 << 20)
    ft.build_corpus(head[: head.rfind(b"\n") + 1], word_ngrams=word_ngrams)
    del head

    baseline = _status("VmRSS")
    can_reset = True
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
    except OSError:
        can_reset = False
    times = []
    for r in range(runs):
        t0 = time.perf_counter()
        d, enc = ft.build_corpus(path, word_ngrams=word_ngrams)
        times.append(time.perf_counter() - t0)
        if r == 0:
            peak = _status("VmHWM")
        del enc, d
    d, enc = ft.build_corpus(path, word_ngrams=word_ngrams)
    # stage split (one extra run): read, pass 1 (scan/hash/count), the rest
    t0 = time.perf_counter()
    data = scan.as_readonly_u8(ft.read_bytes(path))
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    scan.scan_corpus(data, scan.as_readonly_u8(np.frombuffer(b"__label__", np.uint8)),
                     scan.as_readonly_u8(np.frombuffer(b"</s>", np.uint8)))  # fmt: skip
    t_scan = time.perf_counter() - t0
    print(
        json.dumps(
            dict(
                times=times, import_s=t_import, first_call_s=t_first, baseline=baseline, peak=peak,
                peak_reset=can_reset, ntokens=d.ntokens, nwords=d.nwords, nlabels=d.nlabels,
                n_lines=enc.n_lines, nnz=len(enc.indices), enc_nbytes=enc.nbytes,
                indices_nbytes=enc.indices.nbytes, read_s=t_read, scan_s=t_scan,
            )
        )
    )  # fmt: skip


def run_fasttext(path: str, word_ngrams: int, dim: int) -> tuple[float, int]:
    out = subprocess.run(
        [sys.executable, "-c", FT_SNIPPET, path, str(word_ngrams), str(dim)],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    return float(out[0]), int(out[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--word-ngrams", type=int, default=2)
    ap.add_argument("--no-fasttext", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.runs, args.word_ngrams)
        return

    tmp = tempfile.mkdtemp(prefix="bench_pipeline_")
    try:
        path = os.path.join(tmp, "corpus.txt")
        if args.data.endswith(".gz"):
            with gzip.open(args.data, "rb") as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        else:
            shutil.copyfile(args.data, path)
        size = os.path.getsize(path)

        # warm the Numba cache (compiles on the very first run of a checkout)
        subprocess.run([sys.executable, "-c", "import fastembed.text as t; t.build_corpus(['__label__a b'], word_ngrams=2)"],
                       check=True)  # fmt: skip
        res = json.loads(
            subprocess.run(
                [sys.executable, __file__, "--worker", path, "--runs", str(args.runs),
                 "--word-ngrams", str(args.word_ngrams)],
                check=True, capture_output=True, text=True,
            ).stdout.strip().splitlines()[-1]
        )  # fmt: skip
        fe = statistics.median(res["times"])
        ntok = res["ntokens"]

        ft_rows = []
        if not args.no_fasttext:
            try:
                import fasttext  # noqa: F401

                for dim in (100, 1):
                    ts = [run_fasttext(path, args.word_ngrams, dim) for _ in range(args.runs)]
                    assert all(n == res["nwords"] for _, n in ts), "fastText and fastembed vocabularies differ"
                    ft_rows.append((dim, statistics.median(t for t, _ in ts)))
            except ImportError:
                print("fasttext not importable: fastText rows skipped\n")

        mb = 1 / 2**20
        print(f"corpus: {args.data} (gunzipped: {size * mb:.1f} MiB, {res['n_lines']:,} lines, "
              f"{ntok:,} tokens, {res['nwords']:,} words, {res['nlabels']} labels), word_ngrams={args.word_ngrams}, "
              f"median of {args.runs} runs, one core\n")  # fmt: skip
        print("| pipeline | median s | tokens/s | fastText time / this time |")
        print("|---|---:|---:|---:|")
        ref = ft_rows[0][1] if ft_rows else None
        for dim, t in ft_rows:
            note = "default dim=100" if dim == 100 else "dim=1, ~ dictionary pass only"
            print(f"| fastText train_supervised(epoch=0, thread=1, {note}) | {t:.3f} | {ntok / t / 1e6:.2f} M | "
                  f"{ref / t:.2f} |")  # fmt: skip
        ratio = f"{ref / fe:.2f}" if ref else "n/a"
        print(f"| fastembed build_corpus (read + dictionary + encode) | {fe:.3f} | {ntok / fe / 1e6:.2f} M | {ratio} |")
        if len(ft_rows) > 1:
            print(f"\nfastembed vs fastText dim=1: {ft_rows[1][1] / fe:.2f}x faster")
        print(f"\nfastembed runs (s): {', '.join(f'{t:.3f}' for t in res['times'])}; "
              f"stages of one run: read {res['read_s']:.3f} s, pass 1 (scan+hash+count) {res['scan_s']:.3f} s")  # fmt: skip
        print("\n| memory | value |")
        print("|---|---:|")
        print(f"| encoded ids (nnz) | {res['nnz']:,} |")
        print(f"| bytes per id (all EncodedCorpus arrays) | {res['enc_nbytes'] / res['nnz']:.3f} |")
        print(f"| bytes per token (all EncodedCorpus arrays) | {res['enc_nbytes'] / ntok:.3f} |")
        print(f"| baseline RSS (after import + warm-up) | {res['baseline'] * mb:.1f} MiB |")
        print(f"| peak RSS during build_corpus | {res['peak'] * mb:.1f} MiB |")
        delta = res["peak"] - res["baseline"]
        print(f"| peak - baseline | {delta * mb:.1f} MiB = {delta / size:.2f} x file size |")
        if not res["peak_reset"]:
            print("| (VmHWM could not be reset: the peak includes start-up) | |")
        print(f"\nJIT (warm cache, fresh process): import fastembed.text {res['import_s']:.3f} s, "
              f"first build_corpus call {res['first_call_s']:.3f} s")  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
