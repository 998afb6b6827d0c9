"""The ``latency`` configuration of scripts/benchmark.py: prediction latency, throughput, whole processes.

Per dataset, fastembed (its default preset: dim 100, word bigrams) and fastText
(``dim=100, word_ngrams=2``, its other defaults) are each trained once per
repetition, every step a fresh process, the systems alternated within each step:

``after-train`` (a worker)
    Train (``train s``), then at once, in the same process, predict one line at
    a time: :data:`SINGLE_CALLS` calls on the test lines (labels removed, cycled),
    each call timed alone; then save the model (not timed).
``reloaded`` (a worker)
    Load that model (``load s``), the same :data:`SINGLE_CALLS` single-line
    calls (the first one also reported alone: it pays for whatever loading is
    lazy), then the whole test file in one call, :data:`BATCH_CALLS` times
    (``batch lines/s`` from the median call); P@1 of those predictions as a
    check.
``cli-predict`` (a command)
    ``fastembed predict MODEL FILE`` on the first :data:`PROCESS_LINES` test
    lines, against ``python -c`` loading the fastText ``.bin`` and printing the
    same lines' labels (:data:`FASTTEXT_PREDICT`): wall time of the whole
    process, interpreter start included, and its peak RSS.
``cli-train`` (a command)
    ``fastembed train CORPUS -o MODEL -q`` (fastembed's defaults, all cores)
    against ``python -c`` training fastText with its defaults and
    ``thread=THREADS`` and saving it (:data:`FASTTEXT_TRAIN`).

Once per benchmark run, ``cli-bundled``: ``fastembed train`` with no argument
(the bundled TREC-6 corpus, its summary and held-out P@1 printed) against
fastText trained with its defaults on the same file, saved and tested on the
same held-out file (:data:`FASTTEXT_BUNDLED`).

Single-line calls: fastembed ``model.predict(line, k=1)``; fastText
``model.f.predict(line + "\\n", 1, 0.0, "strict")`` (what its ``predict``
calls; ``predict`` itself breaks under NumPy 2). Batch calls: fastembed
``model.predict(lines, k=1)`` (its Numba kernels use ``NUMBA_NUM_THREADS`` =
``--threads``), fastText ``model.f.multilinePredict`` (one thread).
"""

from __future__ import annotations

import math
import re
import statistics
import sys
import sysconfig
import time
from pathlib import Path

from bench_common import REPO_ROOT, fmt_num, fmt_ratio, ranking_metrics, read_corpus

SINGLE_CALLS = 2000
BATCH_CALLS = 5
PROCESS_LINES = 20
LATENCY_PARAMS = {"fastembed": {}, "fasttext": {"dim": 100, "word_ngrams": 2}}
"""The systems of the section and their training parameters (fastembed: its default preset)."""
MODEL_SUFFIX = {"fastembed": ".fe", "fasttext": ".bin"}

FASTTEXT_PREDICT = """\
import sys
import fasttext
model = fasttext.load_model(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f:
    lines = [line.rstrip("\\n") + "\\n" for line in f]
labels, _ = model.f.multilinePredict(lines, 1, 0.0, "strict")
print("\\n".join(" ".join(lab) for lab in labels))
"""
FASTTEXT_TRAIN = """\
import sys
import fasttext
model = fasttext.train_supervised(input=sys.argv[1], thread=int(sys.argv[3]), verbose=0)
model.save_model(sys.argv[2])
"""
FASTTEXT_BUNDLED = """\
import sys
import fasttext
model = fasttext.train_supervised(input=sys.argv[1], thread=int(sys.argv[4]), verbose=0)
model.save_model(sys.argv[3])
n, p, r = model.test(sys.argv[2])
print(f"N\\t{n}\\nP@1\\t{p:.4f}\\nR@1\\t{r:.4f}")
"""
BUNDLED_DIR = REPO_ROOT / "data"  # where `fastembed train` finds its bundled corpus (FASTEMBED_DATA unset)
BUNDLED = "bundled trec6"  # the dataset name of the cli-bundled records


# ================================================================ worker side

def single_call_stats(predict, lines: list[str], calls: int = SINGLE_CALLS) -> dict:
    """Time ``predict(line)`` once per call, cycling through the lines.

    Returns
    -------
    dict
        Microseconds per call: ``first``, ``median``, ``p90``, ``p99``, ``mean``;
        and ``calls``.
    """
    clock = time.perf_counter_ns
    us = []
    for i in range(calls):
        line = lines[i % len(lines)]
        t0 = clock()
        predict(line)
        us.append((clock() - t0) / 1e3)
    first = us[0]
    us.sort()
    return {"first": first, "median": statistics.median(us), "p90": us[int(0.9 * (calls - 1))],
            "p99": us[int(0.99 * (calls - 1))], "mean": math.fsum(us) / calls, "calls": calls}


def measure(system, spec: dict) -> dict:
    """One latency worker (``after-train`` if ``spec`` has ``model_out``, else ``reloaded``).

    Parameters
    ----------
    system : bench_systems.System
        Loaded (imported) already.
    spec : dict
        ``test``; ``train``, ``params``, ``threads``, ``seed`` and ``model_out``
        (after-train) or ``model_in`` (reloaded).

    Returns
    -------
    dict
        The figures of the run (see the module docstring).
    """
    gold, docs = read_corpus(spec["test"])
    lines = [" ".join(words) for words in docs]
    out: dict = {}
    if "model_out" in spec:
        t0 = time.perf_counter()
        model, _ = system.train(spec)
        out["train_s"] = time.perf_counter() - t0
        out["single_us"] = single_call_stats(system.predictor(model), lines)
        out["model_bytes"] = system.save(model, spec["model_out"])
        return out
    t0 = time.perf_counter()
    model = system.load_model(spec["model_in"])
    out["load_s"] = time.perf_counter() - t0
    out["single_us"] = single_call_stats(system.predictor(model), lines)
    seconds = []
    for _ in range(BATCH_CALLS):
        s, top = system.predict_batch(model, lines)
        seconds.append(s)
    out.update(batch_s=seconds, batch_lines=len(lines),
               metrics=ranking_metrics([set(g) for g in gold], top))
    return out


# ================================================================ parent side

def fastembed_command() -> list[str]:
    """The installed ``fastembed`` entry point, or ``python -m fastembed.cli`` if there is none.

    The entry point is looked up next to this interpreter (not on PATH, where a
    version manager's shim would add its own start-up); it imports fastembed as
    the workers do (same interpreter, same ``PYTHONPATH``).
    """
    script = Path(sysconfig.get_path("scripts")) / "fastembed"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "fastembed.cli"]


def _count_lines(text: str) -> int:
    return sum(1 for ln in text.splitlines() if ln.strip())


def _p_at_1(text: str) -> float | None:
    """The P@1 a training summary printed (fastembed: ``test P@1  0.9``; our fastText script: ``P@1\\t0.9``)."""
    m = re.search(r"P@1\s+([0-9.]+)", text)
    return float(m.group(1)) if m else None


def run_latency_block(runner, ds, systems: list[str], args, runs: list[dict], save, log) -> None:
    """All runs of one dataset's latency table (see the module docstring).

    Parameters
    ----------
    runner : benchmark.Runner
    ds : bench_common.Dataset
    systems : list of str
        The available keys of :data:`LATENCY_PARAMS`.
    args : argparse.Namespace
    runs : list of dict
        Appended to, one record per run.
    save, log : callable
        Keep the output files current; print progress.
    """
    work = Path(runner.scratch) / f"latency-{ds.name}"
    work.mkdir()
    _, docs = read_corpus(ds.test)
    texts = [" ".join(words) + "\n" for words in docs]
    head = work / "predict.txt"
    head.write_text("".join(texts[:PROCESS_LINES]), encoding="utf-8")
    fastembed = fastembed_command()
    common = {"dataset": ds.name, "config": "latency"}

    def record(key, kind, rep, child, payload=None, expect=None, warmup=False, problem=None, **extra):
        rec = runner.record(child, payload or {}, expect, problem, **common, label=runner.title(key), system=key,
                            kind=kind, rep=rep, warmup=warmup, params=LATENCY_PARAMS[key], **extra)
        runs.append(rec)
        detail = rec["error"] if rec["status"] != "ok" else f"process {rec['process_s']:.2f}s"
        step = "warm-up" if warmup else f"rep {rep + 1}/{args.repeats}"
        log(f"{ds.name} latency {step} {key} {kind}: {rec['status']} {detail}")
        save()
        return rec

    def train_worker(key, rep, warmup=False):
        model = work / f"{key}-{rep}{MODEL_SUFFIX[key]}"
        spec = {"kind": "latency", "system": key, "train": ds.train, "test": ds.test,
                "params": LATENCY_PARAMS[key], "threads": args.threads, "seed": args.seed + max(rep, 0),
                "model_out": str(model)}
        payload, child = runner.spawn(spec, args.timeout)
        record(key, "after-train", rep, child, payload, "single_us", warmup)
        return model

    if args.warmup and "fastembed" in systems:  # Numba's cache, as in the other tables
        train_worker("fastembed", -1, warmup=True)
    for rep in range(args.repeats):
        models = {key: train_worker(key, rep) for key in systems}
        for key in systems:
            payload, child = runner.spawn({"kind": "latency", "system": key, "test": ds.test,
                                           "model_in": str(models[key])}, args.timeout)
            record(key, "reloaded", rep, child, payload, "single_us")
        for key in systems:
            argv = ([*fastembed, "predict", str(models[key]), str(head)] if key == "fastembed" else
                    [sys.executable, "-c", FASTTEXT_PREDICT, str(models[key]), str(head)])
            child = runner.command(argv)
            printed = _count_lines(child.stdout)
            record(key, "cli-predict", rep, child, lines=printed,
                   problem=None if printed == PROCESS_LINES else f"printed {printed} lines, not {PROCESS_LINES}")
        for key in systems:
            out = work / f"{key}-cli-{rep}{MODEL_SUFFIX[key]}"
            argv = ([*fastembed, "train", ds.train, "-o", str(out), "-q"] if key == "fastembed" else
                    [sys.executable, "-c", FASTTEXT_TRAIN, ds.train, str(out), str(args.threads)])
            record(key, "cli-train", rep, runner.command(argv))
            out.unlink(missing_ok=True)
        for model in models.values():
            model.unlink(missing_ok=True)


def run_bundled_block(runner, systems: list[str], args, runs: list[dict], save, log) -> None:
    """``fastembed train`` with no argument against fastText on the same bundled TREC-6 files."""
    work = Path(runner.scratch) / "latency-bundled"
    work.mkdir()
    train, test = BUNDLED_DIR / "trec6.train.txt", BUNDLED_DIR / "trec6.test.txt"
    for rep in range(args.repeats):
        for key in systems:
            if key == "fastembed":
                child = runner.command([*fastembed_command(), "train"], cwd=work)  # writes model.fe here
            else:
                child = runner.command([sys.executable, "-c", FASTTEXT_BUNDLED, str(train), str(test),
                                        str(work / "model.bin"), str(args.threads)])
            rec = runner.record(child, {}, None, dataset=BUNDLED, config="latency", label=runner.title(key),
                                system=key, kind="cli-bundled", rep=rep, warmup=False,
                                params=LATENCY_PARAMS[key], p_at_1=_p_at_1(child.stdout))
            runs.append(rec)
            log(f"{BUNDLED} rep {rep + 1}/{args.repeats} {key}: {rec['status']} "
                f"{rec['error'] if rec['status'] != 'ok' else f'process {child.wall_s:.2f}s'}")
            save()
            for f in work.iterdir():
                f.unlink()


# ================================================================== reporting

FIGURES = {  # name: (kind of run, value of one record, column title, digits)
    "p_at_1": ("reloaded", lambda r: r["metrics"]["p_at_1"], "P@1", 4),
    "train_s": ("after-train", lambda r: r["train_s"], "train s", None),
    "after_us": ("after-train", lambda r: r["single_us"]["median"], "1 line µs, after training", None),
    "reload_us": ("reloaded", lambda r: r["single_us"]["median"], "1 line µs, reloaded", None),
    "reload_p90_us": ("reloaded", lambda r: r["single_us"]["p90"], "p90 µs, reloaded", None),
    "first_us": ("reloaded", lambda r: r["single_us"]["first"], "first call µs, reloaded", None),
    "load_s": ("reloaded", lambda r: r["load_s"], "load s", None),
    "batch_lines_s": ("reloaded", lambda r: r["batch_lines"] / statistics.median(r["batch_s"]),
                      "batch lines/s", None),
    "predict_process_s": ("cli-predict", lambda r: r["process_s"], f"predict process s ({PROCESS_LINES} lines)",
                          None),
    "predict_rss_mb": ("cli-predict", lambda r: r["peak_rss_mb"], "predict peak RSS MB", None),
    "train_process_s": ("cli-train", lambda r: r["process_s"], "train process s", None),
    "train_rss_mb": ("cli-train", lambda r: r["peak_rss_mb"], "train peak RSS MB", None),
    "bundled_process_s": ("cli-bundled", lambda r: r["process_s"], "process s", None),
    "bundled_rss_mb": ("cli-bundled", lambda r: r["peak_rss_mb"], "peak RSS MB", None),
    "bundled_p_at_1": ("cli-bundled", lambda r: r.get("p_at_1"), "printed P@1", 4),
}
TABLE_FIGURES = [k for k, (kind, _, _, _) in FIGURES.items() if kind != "cli-bundled"]
BUNDLED_FIGURES = [k for k, (kind, _, _, _) in FIGURES.items() if kind == "cli-bundled"]


def latency_medians(runs: list[dict]) -> dict:
    """Medians over the repetitions of each figure of :data:`FIGURES`.

    Returns
    -------
    dict
        ``(dataset, busy_core, label) -> {figure: median or None}``, plus
        ``"failed"``: the first error of that row's failed runs, if any, and
        ``"other_load"``: the most CPU (cores) other processes used during one of its runs.
    """
    groups: dict = {}
    for r in runs:
        if r.get("config") == "latency" and not r.get("warmup"):
            groups.setdefault((r["dataset"], bool(r.get("busy_core")), r["label"]), []).append(r)
    out = {}
    for key, recs in groups.items():
        row = {}
        for name, (kind, value, _, _) in FIGURES.items():
            vals = [value(r) for r in recs if r["kind"] == kind and r["status"] == "ok"]
            vals = [v for v in vals if v is not None]
            row[name] = statistics.median(vals) if vals else None
        row["failed"] = next((f"{r['kind']}: {r['error']}" for r in recs if r["status"] != "ok"), None)
        row["other_load"] = max((r["other_load"] for r in recs if r.get("other_load") is not None), default=None)
        out[key] = row
    return out


def _table(rows: dict, figures: list[str], base: str = "fastText") -> list[str]:
    """Markdown rows: label -> medians, each with its ratio to the base row's."""
    lines = ["| system | " + " | ".join(FIGURES[f][2] for f in figures) + " | other load |",
             "|---|" + "---:|" * (len(figures) + 1)]
    for label, row in rows.items():
        cells = [fmt_num(row[f], FIGURES[f][3])
                 + ("" if label == base else fmt_ratio(row[f], rows.get(base, {}).get(f), FIGURES[f][3] is not None))
                 for f in figures]
        cells.append(fmt_num(row["other_load"], 2))
        name = label + (f" (failed {row['failed']})" if row["failed"] else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def render_latency_table(ds, runs: list[dict], busy_core: bool) -> str:
    """The markdown table of one dataset's latency runs."""
    rows = {label: row for (name, busy, label), row in latency_medians(runs).items()
            if name == ds.name and busy == busy_core}
    busy = " (one core busy)" if busy_core else ""
    about = (f"{ds.test_docs:,} test lines. Models: fastembed's default preset, fastText dim 100 word_ngrams 2. "
             f"Medians of the repetitions; ×: ratio to fastText. 1 line µs: median of {SINGLE_CALLS:,} "
             f"single-line calls, right after training in the training process, or in a fresh process "
             f"after loading the saved model; batch: the whole test file in one call (median of "
             f"{BATCH_CALLS}); predict/train process: the whole command (see bench_latency.py); other load: "
             f"the most CPU (cores) other processes used during one of the row's runs.")
    return "\n".join([f"### {ds.name} — latency{busy}", "", about, "", *_table(rows, TABLE_FIGURES), ""])


def render_bundled_table(runs: list[dict], busy_core: bool) -> str:
    """The markdown table of ``fastembed train`` (no argument) against fastText on the same files."""
    rows = {label: row for (name, busy, label), row in latency_medians(runs).items()
            if name == BUNDLED and busy == busy_core}
    busy = " (one core busy)" if busy_core else ""
    about = ("`fastembed train` with no argument (bundled TREC-6 corpus, its defaults, summary and held-out "
             "P@1 printed) against a `python -c` process training fastText with its defaults on the same "
             "file, saving it and testing it on the same held-out file. Whole processes.")
    return "\n".join([f"### {BUNDLED} — `fastembed train`{busy}", "", about, "",
                      *_table(rows, BUNDLED_FIGURES), ""])
