#!/usr/bin/env python
"""Candidate defaults against the current ones: test P@1 of fastembed variants on every dataset.

A change of defaults must not lose more than 0.3 points on any dataset (issue 14), so every
variant runs on every benchmark dataset (the splits of ``benchmark.py``). One process, the
variants one after the other per dataset; each line of output is one JSON record.

Example (the figures of the autotune report)::

    python scripts/bench_defaults.py --variants '{"ova": {"loss": "ova"}, "epoch10": {"epoch": 10}}'

2 threads are not deterministic (hogwild): the same setting twice differed by 0.13 points on
Reuters; repeat with other ``--seed`` values before trusting a difference of that size.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DATASETS, DEFAULT_DATA_DIR, prepare_dataset  # noqa: E402


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--variants", default="{}",
                   help="JSON object: name -> train_supervised settings; the defaults always run first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    args = p.parse_args(argv)
    variants = {"defaults": {}, **json.loads(args.variants)}
    import fastembed

    with tempfile.TemporaryDirectory(prefix="fastembed-defaults-") as scratch:
        for name in args.datasets.split(","):
            ds = prepare_dataset(args.data_dir, name, scratch)
            for label, settings in variants.items():
                t0 = time.perf_counter()
                model = fastembed.train_supervised(ds.train, threads=args.threads, seed=args.seed, verbose=0,
                                                   **settings)
                seconds = time.perf_counter() - t0
                print(json.dumps({"dataset": name, "variant": label, "settings": settings,
                                  "p_at_1": model.test(ds.test)[1], "train_s": round(seconds, 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
