#!/usr/bin/env python
"""fastembed.dask against single-process training, on a 2-worker LocalCluster (README, "Scaling out").

Each corpus is read into a pandas DataFrame (text, labels) and split into 8 partitions. The
single-process run uses ``--threads`` threads; the cluster has ``--workers`` worker processes of
one thread each, so both use the same cores. Times are whole calls (dictionary, encoding,
training); P@1 is on the corpus's test split. The two systems alternate, ``--repeats`` times:
the first call of each is reported apart (it loads the cached Numba kernels, in the workers
for dask: over a second each), then the median of the others ("warm", what a session that
trains more than once sees).

    python scripts/bench_dask.py --datasets trec6,sst2 --epoch 5
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DEFAULT_DATA_DIR, LABEL_PREFIX  # noqa: E402


def frame(path):
    import gzip

    import pandas as pd
    rows = []
    with gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            tokens = line.split()
            rows.append((" ".join(t for t in tokens if not t.startswith(LABEL_PREFIX)),
                         " ".join(t for t in tokens if t.startswith(LABEL_PREFIX))))
    return pd.DataFrame(rows, columns=["text", "label"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="trec6,sst2")
    p.add_argument("--epoch", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="calls of each system (the first reported apart)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    args = p.parse_args(argv)
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import fastembed.dask as fd
    from fastembed.model import train_supervised

    print("| dataset | train lines | run | first call s | warm s (median) | test P@1 |\n"
          "|---|---:|---|---:|---:|---:|")
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster):
        for name in args.datasets.split(","):
            train, test = (Path(args.data_dir) / name / f"{s}.txt.gz" for s in ("train", "test"))
            df = frame(train)
            ddf = dd.from_pandas(df, npartitions=8).persist()
            runs = {"single": [], "dask": []}
            models = {}
            for _ in range(args.repeats):  # alternating: a load change hits both
                t0 = time.perf_counter()
                models["single"] = train_supervised(str(train), epoch=args.epoch, threads=args.threads, verbose=0)
                runs["single"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                models["dask"] = fd.train_supervised(ddf, epoch=args.epoch, verbose=0)
                runs["dask"].append(time.perf_counter() - t0)
            for key, run in (("single", f"single process, {args.threads} threads"),
                             ("dask", f"dask, {args.workers} workers x 1 thread")):
                first, warm = runs[key][0], runs[key][1:]
                warm_s = f"{statistics.median(warm):.2f}" if warm else "-"
                print(f"| {name} | {len(df):,} | {run} | {first:.2f} | {warm_s} | "
                      f"{models[key].test(str(test))[1]:.4f} |", flush=True)
            texts = dd.from_pandas(frame(test)["text"], npartitions=8).persist()
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                fd.predict(models["single"], texts).compute()
                times.append(time.perf_counter() - t0)
            warm_s = f"{statistics.median(times[1:]):.2f}" if len(times) > 1 else "-"
            print(f"| {name} | | dask predict, {len(texts):,} lines | {times[0]:.2f} | {warm_s} | |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
