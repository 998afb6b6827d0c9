#!/usr/bin/env python
"""Condense a ``benchmark.py --json`` file into one table per configuration, datasets as rows.

Each cell: median accuracy (P@1) and median train seconds (file to trained model). The last
columns are fastembed's ratios to fastText, of medians measured in the same run: train seconds,
whole-process seconds (interpreter, imports, train, test, save) and peak RSS.

    python scripts/summarize_benchmark.py results.json > summary.md
"""

import argparse
import json
import statistics
from collections import defaultdict

LABELS = {
    "fastembed": "fastembed",
    "fastembed preset=fasttext": "fastembed (fasttext preset)",
    "fastembed preset=fasttext (fastText defaults)": "fastembed (fasttext preset)",
    "fastText": "fastText",
    "PyTorch (batch 32)": "PyTorch",
    "sklearn LinearSVC": "LinearSVC",
    "sklearn SGD": "SGD",
}


def medians(runs):
    """(dataset, config, label) -> {"acc", "train_s", "process_s", "rss"} medians of ok runs."""
    groups = defaultdict(list)
    for r in runs:
        if r.get("status") == "ok" and r.get("rep", 0) >= 0 and not r.get("warmup_only"):
            groups[(r["dataset"], r["config"], LABELS.get(r["label"], r["label"]))].append(r)
    out = {}
    for key, rs in groups.items():
        out[key] = {
            "acc": statistics.median(r["metrics"]["p_at_1"] for r in rs),
            "train_s": statistics.median(r["train_s"] for r in rs),
            "process_s": statistics.median(r["process_s"] for r in rs),
            "rss": statistics.median(r["peak_rss_mb"] for r in rs),
        }
    return out


def render(runs):
    med = medians(runs)
    datasets = list(dict.fromkeys(k[0] for k in med))
    lines = []
    for config in ("paper", "ft-defaults", "defaults"):
        systems = list(dict.fromkeys(k[2] for k in med if k[1] == config))
        if not systems:
            continue
        lines += [f"#### {config}", "",
                  "| dataset | " + " | ".join(f"{s} P@1 / train s" for s in systems)
                  + " | fastembed / fastText: train s | process s | peak RSS |",
                  "|---|" + "---:|" * (len(systems) + 3)]
        for ds in datasets:
            cells = []
            for s in systems:
                m = med.get((ds, config, s))
                cells.append("–" if m is None else f"{m['acc']:.3f} / {m['train_s']:.2f}")
            fe_name = "fastembed" if config == "defaults" else "fastembed (fasttext preset)"
            fe, ft = med.get((ds, config, fe_name)), med.get((ds, config, "fastText"))
            ratios = [f"{fe[k] / ft[k]:.2f}x" if fe and ft else "–"
                      for k in ("train_s", "process_s", "rss")]
            lines.append(f"| {ds} | " + " | ".join(cells + ratios) + " |")
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="the --json file of scripts/benchmark.py")
    args = parser.parse_args()
    with open(args.results) as f:
        print(render(json.load(f)["runs"]))


if __name__ == "__main__":
    main()
