#!/usr/bin/env python
"""Condense ``benchmark.py --json`` files into one table per configuration, datasets as rows.

Each cell: median accuracy (P@1) and median train seconds (file to trained model); Vowpal
Wabbit's cell adds its format conversion, ``(+convert s)``. The last columns are fastembed's
ratios to fastText, of medians measured in the same run: train seconds, whole-process seconds
(interpreter, imports, train, test, save) and peak RSS.

Runs made with ``--busy-core`` get tables of their own ("one core busy"); when idle runs of the
same configuration are given too, a table of slowdowns follows (busy / idle train seconds per
system, medians of each). Runs of ``--configs latency`` give one table of fastembed and fastText
figures per dataset (see ``bench_latency.py``) with their ratios, and one for ``fastembed train``
on the bundled corpus.

    python scripts/summarize_benchmark.py results.json [busy.json latency.json ...] > summary.md
"""

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_latency import BUNDLED, FIGURES, latency_medians  # noqa: E402 - after the sys.path line

CONFIGS = ("paper", "ft-defaults", "defaults")
LABELS = {
    "fastembed": "fastembed",
    "fastembed preset=fasttext": "fastembed (fasttext preset)",
    "fastembed preset=fasttext (fastText defaults)": "fastembed (fasttext preset)",
    "fastText": "fastText",
    "PyTorch (batch 32)": "PyTorch",
    "sklearn LinearSVC": "LinearSVC",
    "sklearn SGD": "SGD",
    "Vowpal Wabbit": "VW",
}
BUSY = " — one core busy"


def medians(runs):
    """(dataset, config, busy, label) -> {"acc", "train_s", "process_s", "rss", "convert_s"} medians of ok runs."""
    groups = defaultdict(list)
    for r in runs:
        if (r.get("status") == "ok" and r.get("config") in CONFIGS and r.get("rep", 0) >= 0
                and not r.get("warmup")):
            key = (r["dataset"], r["config"], bool(r.get("busy_core")), LABELS.get(r["label"], r["label"]))
            groups[key].append(r)
    out = {}
    for key, rs in groups.items():
        convert = [r["convert_s"] for r in rs if r.get("convert_s") is not None]
        out[key] = {
            "acc": statistics.median(r["metrics"]["p_at_1"] for r in rs),
            "train_s": statistics.median(r["train_s"] for r in rs),
            "process_s": statistics.median(r["process_s"] for r in rs),
            "rss": statistics.median(r["peak_rss_mb"] for r in rs),
            "convert_s": statistics.median(convert) if convert else None,
        }
    return out


def _ratio(a, b):
    if a is None or not b:
        return "–"
    return f"{a / b:,.0f}x" if a / b >= 100 else f"{a / b:.2f}x"


def render_config(med, datasets, config, busy):
    """One configuration's table (the format of the idle tables, whatever ``busy``)."""
    systems = list(dict.fromkeys(k[3] for k in med if k[1] == config and k[2] == busy))
    if not systems:
        return []
    convert = {s for s in systems if any(m["convert_s"] is not None for k, m in med.items()
                                         if k[1] == config and k[2] == busy and k[3] == s)}
    lines = [f"#### {config}{BUSY if busy else ''}", "",
             "| dataset | " + " | ".join(f"{s} P@1 / train s" + (" (+convert s)" if s in convert else "")
                                       for s in systems)
             + " | fastembed / fastText: train s | process s | peak RSS |",
             "|---|" + "---:|" * (len(systems) + 3)]
    for ds in datasets:
        cells = []
        for s in systems:
            m = med.get((ds, config, busy, s))
            cell = "–" if m is None else f"{m['acc']:.3f} / {m['train_s']:.2f}"
            if m is not None and m["convert_s"] is not None:
                cell += f" (+{m['convert_s']:.2f})"
            cells.append(cell)
        fe_name = "fastembed" if config == "defaults" else "fastembed (fasttext preset)"
        fe, ft = med.get((ds, config, busy, fe_name)), med.get((ds, config, busy, "fastText"))
        ratios = [_ratio(fe[k], ft[k]) if fe and ft else "–" for k in ("train_s", "process_s", "rss")]
        lines.append(f"| {ds} | " + " | ".join(cells + ratios) + " |")
    return lines + [""]


def render_slowdown(med, datasets, config):
    """Busy / idle train seconds per system, where a configuration was run both ways."""
    systems = list(dict.fromkeys(k[3] for k in med if k[1] == config and k[2]
                                 and (k[0], config, False, k[3]) in med))
    if not systems:
        return []
    lines = [f"#### {config}: one core busy / idle, train s", "",
             "| dataset | " + " | ".join(systems) + " |", "|---|" + "---:|" * len(systems)]
    for ds in datasets:
        cells = []
        for s in systems:
            busy, idle = med.get((ds, config, True, s)), med.get((ds, config, False, s))
            cells.append(_ratio(busy["train_s"], idle["train_s"]) if busy and idle else "–")
        lines.append(f"| {ds} | " + " | ".join(cells) + " |")
    return lines + [""]


LATENCY_COLUMNS = ("after_us", "reload_us", "first_us", "load_s", "batch_lines_s", "predict_process_s",
                   "predict_rss_mb", "train_process_s")


def _fmt(v):
    if v is None:
        return "–"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def render_latency(runs, busy):
    """fastembed / fastText per latency figure, datasets as rows, then the ratios."""
    med = latency_medians(runs)
    datasets = list(dict.fromkeys(k[0] for k in med if k[1] == busy and k[0] != BUNDLED))
    lines = []
    if datasets:
        titles = [FIGURES[c][2] for c in LATENCY_COLUMNS]
        lines += [f"#### latency{BUSY if busy else ''}", "",
                  "fastembed (default preset) / fastText (dim 100, word_ngrams 2); medians.", "",
                  "| dataset | " + " | ".join(titles) + " | fastembed / fastText: "
                  + " | ".join(titles) + " |",
                  "|---|" + "---:|" * (2 * len(titles))]
        for ds in datasets:
            fe, ft = med.get((ds, busy, "fastembed"), {}), med.get((ds, busy, "fastText"), {})
            cells = [f"{_fmt(fe.get(c))} / {_fmt(ft.get(c))}" for c in LATENCY_COLUMNS]
            ratios = [_ratio(fe.get(c), ft.get(c)) for c in LATENCY_COLUMNS]
            lines.append(f"| {ds} | " + " | ".join(cells + ratios) + " |")
        lines.append("")
    fe, ft = med.get((BUNDLED, busy, "fastembed")), med.get((BUNDLED, busy, "fastText"))
    if fe or ft:
        fe, ft = fe or {}, ft or {}
        lines += [f"#### `fastembed train` (no argument) vs fastText on the bundled TREC-6{BUSY if busy else ''}", "",
                  "| | fastembed | fastText | fastembed / fastText |", "|---|---:|---:|---:|"]
        for c in ("bundled_process_s", "bundled_rss_mb", "bundled_p_at_1"):
            lines.append(f"| {FIGURES[c][2]} | {_fmt(fe.get(c))} | {_fmt(ft.get(c))} | {_ratio(fe.get(c), ft.get(c))} |")
        lines.append("")
    return lines


def render(runs):
    med = medians(runs)
    datasets = list(dict.fromkeys(k[0] for k in med))
    lines = []
    for config in CONFIGS:
        lines += render_config(med, datasets, config, busy=False)
    for config in CONFIGS:
        lines += render_config(med, datasets, config, busy=True)
        lines += render_slowdown(med, datasets, config)
    for busy in (False, True):
        lines += render_latency(runs, busy)
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="--json files of scripts/benchmark.py")
    args = parser.parse_args()
    runs = []
    for path in args.results:
        with open(path) as f:
            runs += json.load(f)["runs"]
    print(render(runs))


if __name__ == "__main__":
    main()
