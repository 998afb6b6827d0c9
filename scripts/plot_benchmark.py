#!/usr/bin/env python
"""Plot accuracy against training time from a ``benchmark.py --json`` file.

One panel per dataset; x: train time in seconds (log scale, median of the
repetitions with a min–max bar), y: P@1 (accuracy on single-label data).
Marker: the system; colour: the configuration; a hollow fastembed marker is
fastembed with ``preset="fasttext"``.

Example
-------
::

    python scripts/plot_benchmark.py results.json -o accuracy_vs_time.png
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

MARKERS = {"fastembed": "o", "fasttext": "s", "torch": "^", "sklearn-svc": "D", "sklearn-sgd": "v", "vw": "P"}
NAMES = {"fastembed": "fastembed", "fasttext": "fastText", "torch": "PyTorch",
         "sklearn-svc": "sklearn LinearSVC", "sklearn-sgd": "sklearn SGD", "vw": "Vowpal Wabbit"}
COLORS = {"paper": "tab:blue", "ft-defaults": "tab:orange", "defaults": "tab:green"}


def points(runs: list[dict]) -> dict[str, list[dict]]:
    """Median accuracy and train time of each (dataset, configuration, entry).

    Parameters
    ----------
    runs : list of dict
        The ``runs`` of a results file.

    Returns
    -------
    dict
        Dataset name -> list of points (``system``, ``config``, ``label``,
        ``preset``, ``acc``, ``t``, ``t_min``, ``t_max``).
    """
    groups = defaultdict(list)
    for r in runs:
        if r["status"] == "ok" and not r.get("warmup") and r["config"] in COLORS:  # not the latency runs
            groups[(r["dataset"], r["config"], r["label"])].append(r)
    out = defaultdict(list)
    for (dataset, config, label), rs in groups.items():
        times = [r["train_s"] for r in rs]
        out[dataset].append({
            "system": rs[0]["system"], "config": config, "label": label,
            "preset": "preset" in (rs[0].get("params") or {}),
            "acc": statistics.median(r["metrics"]["p_at_1"] for r in rs),
            "t": statistics.median(times), "t_min": min(times), "t_max": max(times)})
    return out


def plot(results: dict, path: str) -> None:
    """Draw the panels and write the PNG.

    Parameters
    ----------
    results : dict
        A results file (``meta`` and ``runs``).
    path : str
        The PNG to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, NullFormatter

    data = points(results["runs"])
    if not data:
        raise SystemExit("no successful run in the results file")
    names = list(dict.fromkeys(r["dataset"] for r in results["runs"] if r["dataset"] in data))
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4.2 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for p in data[name]:
            color = COLORS.get(p["config"], "gray")
            hollow = p["system"] == "fastembed" and p["preset"]
            ax.errorbar(p["t"], p["acc"], xerr=[[p["t"] - p["t_min"]], [p["t_max"] - p["t"]]],
                        fmt=MARKERS.get(p["system"], "x"), color=color, ms=8, capsize=2, elinewidth=0.8,
                        mfc="none" if hollow else color, mew=1.5)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(name)
        ax.set_xlabel("train time, s (log)")
        ax.set_ylabel("P@1 (accuracy)")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    handles = [Line2D([], [], ls="", marker=m, color="gray", ms=8, label=NAMES[s]) for s, m in MARKERS.items()]
    handles.append(Line2D([], [], ls="", marker="o", color="gray", mfc="none", ms=8,
                          label='fastembed preset="fasttext"'))
    handles += [Line2D([], [], ls="", marker="o", color=c, ms=8, label=f"config {k}") for k, c in COLORS.items()]
    meta = results.get("meta", {})
    fig.suptitle(f"Accuracy vs train time (median of {meta.get('repeats', '?')} runs, bars: min–max, "
                 f"{meta.get('threads', '?')} threads)")
    fig.legend(handles=handles, loc="lower center", ncol=5, frameon=False)
    fig.tight_layout(rect=(0, 0.08 if nrows > 1 else 0.14, 1, 0.95))
    fig.savefig(path, dpi=120)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", help="a benchmark.py --json file")
    p.add_argument("-o", "--output", default="accuracy_vs_time.png")
    args = p.parse_args(argv)
    plot(json.loads(Path(args.results).read_text()), args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
