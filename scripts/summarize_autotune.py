#!/usr/bin/env python
"""The autotune configuration's summary table from ``benchmark.py --configs autotune`` JSON files.

    python scripts/summarize_autotune.py scripts/results/autotune_run1.json

One row per dataset: fastembed's and fastText's autotune (P@1 / train s), fastembed's defaults and
tf-idf + LinearSVC on the whole training set, the differences in points, and fastembed's trial
count with the best setting. Rows missing from a file (a system not run) show "–".
"""

import json
import sys

LABELS = ("fastembed autotune 60 s", "fastText autotune 60 s", "fastembed", "sklearn LinearSVC")


def rows_of(paths):
    rows = {}
    for path in paths:
        for r in json.load(open(path))["runs"]:
            if r.get("warmup"):
                continue
            stats = (r.get("train_stats") or {}).get("autotune")
            ok = r["status"] == "ok"
            rows.setdefault(r["dataset"], {})[r["label"]] = (
                r["metrics"]["p_at_1"] if ok else None, r.get("train_s") if ok else None, stats)
    return rows


def cell(result, with_time=False):
    score, seconds, _ = result
    if score is None:
        return "–"
    return f"{score:.4f} / {seconds:.1f}" if with_time else f"{score:.4f}"


def points(a, b):
    return "–" if a is None or b is None else f"{100 * (a - b):+.1f}"


def main(paths):
    print("| dataset | fastembed autotune P@1 / s | fastText autotune P@1 / s | fastembed defaults P@1 | "
          "LinearSVC P@1 | autotune − LinearSVC | autotune − fastText autotune | trials (best: settings) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for dataset, row in rows_of(paths).items():
        fe, ft, defaults, svc = (row.get(label, (None, None, None)) for label in LABELS)
        stats = fe[2]
        trials = "–" if not stats else f"{len(stats['trials'])} ({stats['best_trial']}: " + ", ".join(
            f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in stats["best_settings"].items()) + ")"
        print(f"| {dataset} | {cell(fe, True)} | {cell(ft, True)} | {cell(defaults)} | {cell(svc)} | {points(fe[0], svc[0])} | "
              f"{points(fe[0], ft[0])} | {trials} |")


if __name__ == "__main__":
    main(sys.argv[1:])
