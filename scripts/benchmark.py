#!/usr/bin/env python
"""fastembed vs fastText vs PyTorch vs scikit-learn vs Vowpal Wabbit: one command, same files, same settings.

Every run is a fresh subprocess (``benchmark.py --worker SPEC``) so that each
run's import cost, peak RSS and failures are its own. The systems are
alternated (A rep 1, B rep 1, ..., A rep 2, ...) so that drift of a noisy
machine spreads over all of them.

Examples
--------
Everything (all datasets, the three accuracy configurations, 3 repetitions)::

    python scripts/benchmark.py --datasets all --out results.md --json results.json
    python scripts/plot_benchmark.py results.json -o accuracy_vs_time.png

A quick look (about 1.5 minutes)::

    python scripts/benchmark.py --datasets trec6,sms_spam --repeats 1

Latency, throughput and whole processes; the same with one core busy::

    python scripts/benchmark.py --configs latency --out latency.md --json latency.json
    python scripts/benchmark.py --configs defaults --busy-core --out busy.md --json busy.json

Word vectors, skipgram and cbow against fastText and gensim (about an hour on the full
14.8M-word corpus; ``--wordvec-words 3000000`` for its first 3M words)::

    python scripts/benchmark.py --configs wordvec --repeats 1 --out wordvec.md --json wordvec.json

Scale (peak RSS and time against corpus size, in memory vs out of core; Dask on a local
cluster) has ``scripts/bench_scale.py`` (corpus: ``scripts/make_scale_corpus.py``) and
``scripts/bench_dask.py``.

Configurations
--------------
``paper``
    dim 10, word_ngrams 2, lr 0.25, epoch 5, bucket 2M (fastText paper,
    Joulin et al. 2016): fastembed ``preset="fasttext"``, fastText, PyTorch.
``ft-defaults``
    dim 100, lr 0.1, epoch 5, word_ngrams 1 (fastText's defaults, stated):
    the same three systems.
``defaults``
    each system with its own defaults: fastembed (no parameters), fastText (no
    parameters but ``thread``), scikit-learn LinearSVC and SGD, Vowpal Wabbit
    (:data:`VW_OPTIONS`; its input converted first, timed apart as
    ``convert s``; on multi-label data trained on each line's first label) and
    (unless ``--no-compat``) fastembed ``preset="fasttext"`` with fastText's
    defaults.
``autotune`` (not run unless named in ``--configs``)
    10% of the training set (a seeded random draw) is held out for validation:
    fastembed's autotune and fastText's, each given the held-out file and
    :data:`AUTOTUNE_DURATION` seconds, train on the other 90%; fastembed's
    defaults and tf-idf(1,2) + LinearSVC train on the whole training set. On
    multi-label data fastText gets ``loss="ova"`` (fastembed's search keeps to
    it by itself). fastText's autotune runs with ``MALLOC_PERTURB_=255``. The
    JIT warm-up of a fastembed autotune row is a 5-second search.
``latency`` (not run unless named in ``--configs``)
    fastembed and fastText, dim 100 with word bigrams: single-line prediction
    latency after training and after reloading, batch throughput, and whole
    ``predict``/``train`` processes with their peak RSS; once per run also
    ``fastembed train`` with no argument (see ``bench_latency.py``).
``wordvec`` (not run unless named in ``--configs``)
    word vectors: fastembed, fastText and gensim skipgram and cbow, dim 100, 5 epochs,
    min_count 5, on the text of IMDB and 20 Newsgroups (``--wordvec-corpus``, built when
    missing): train time, tok/s/thread, peak RSS, WordSim353 and analogies (see
    ``bench_wordvec.py``, which runs it alone too). Its records are ``meta["wordvec"]`` of
    the JSON.

On multi-label data (Reuters) ``paper`` and ``ft-defaults`` use ``loss="ova"``
and report P@1, R@1 and micro-F1 at threshold 0.5.

``--busy-core``: a separate process runs a plain Python busy loop
(``while True: pass``) from before each timed process starts until it ends,
for every system alike: the measurement with one of the cores busy. The
records and tables say so; its CPU time is not counted as other load.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_latency  # noqa: E402 - after the sys.path line on purpose
import bench_wordvec  # noqa: E402
from bench_baselines import SklearnSystem, TorchSystem  # noqa: E402
from bench_common import (  # noqa: E402
    DATASETS,
    DEFAULT_DATA_DIR,
    REPO_ROOT,
    compile_bytecode,
    fmt_num,
    fmt_ratio,
    hold_out,
    machine_info,
    prepare_dataset,
    run_child,
    summarize,
)
from bench_systems import FastembedSystem, FastTextSystem, Unavailable, VowpalWabbitSystem  # noqa: E402

EXIT_SKIPPED = 3  # a worker's exit status when its system is not available

PAPER = {"dim": 10, "word_ngrams": 2, "lr": 0.25, "epoch": 5, "bucket": 2_000_000}
FT_DEFAULTS = {"dim": 100, "lr": 0.1, "epoch": 5, "word_ngrams": 1}
VW_OPTIONS = "--loss_function logistic --ngram 2 -b 24 --passes 5 --holdout_off"
AUTOTUNE_DURATION = 60
AUTOTUNE_HOLDOUT = 0.1
AUTOTUNE_WARMUP_DURATION = 5
CONFIGS = ("paper", "ft-defaults", "defaults", "autotune", "latency", "wordvec")
DEFAULT_CONFIGS = ("paper", "ft-defaults", "defaults")

SYSTEMS = {
    "fastembed": FastembedSystem,
    "fasttext": FastTextSystem,
    "torch": TorchSystem,
    "sklearn-svc": lambda: SklearnSystem("svc"),
    "sklearn-sgd": lambda: SklearnSystem("sgd"),
    "vw": VowpalWabbitSystem,
}


def worker_main(spec: dict) -> int:
    """Run one system once and print its measurements as one JSON line.

    Parameters
    ----------
    spec : dict
        ``system`` (a key of :data:`SYSTEMS`), ``train``, ``test``, ``params``,
        ``threads``, ``seed``, ``multilabel``, ``model_path``; with
        ``probe=True`` only the import is done (availability and version);
        with ``kind="latency"``, :func:`bench_latency.measure` instead of
        train, test and save.

    Returns
    -------
    int
        Exit status: 0, :data:`EXIT_SKIPPED`, or 1 on an error (whose
        ``Type: message`` is the first line on stderr).
    """
    system = SYSTEMS[spec["system"]]()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            t0 = time.perf_counter()
            try:
                version = system.load()
            except Unavailable as exc:
                print(json.dumps({"skipped": str(exc)}))
                return EXIT_SKIPPED
            out = {"version": version, "import_s": time.perf_counter() - t0,
                   "location": getattr(system, "location", None)}
            if spec.get("probe"):
                print(json.dumps(out))
                return 0
            if spec.get("kind") == "latency":
                out.update(bench_latency.measure(system, spec))
            else:
                out.update(_train_test_save(system, spec))
        out["warnings"] = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught})
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which goes on
        print(f"{type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        traceback.print_exc()
        return 1
    print(json.dumps(out, default=str))
    return 0


def _train_test_save(system, spec: dict) -> dict:
    """The timed steps of one accuracy run: convert (if the system needs it), train, test; then save."""
    out = {}
    t0 = time.perf_counter()
    if system.prepare(spec):
        out["convert_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    model, info = system.train(spec)
    out["train_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out["metrics"] = system.evaluate(model, spec)
    out["test_s"] = time.perf_counter() - t0
    out["model_bytes"] = system.save(model, spec["model_path"])
    return out | info


# ============================================================== parent: planning

@dataclass
class Entry:
    """One row of a table: a system with its parameters.

    Attributes
    ----------
    label : str
        The row's name.
    system : str
        A key of :data:`SYSTEMS`.
    params : dict
        Keyword arguments of the system's trainer.
    train : str or None
        The training file; None: the dataset's whole training set.
    env : dict
        Environment variables of the worker beyond the runner's.
    """

    label: str
    system: str
    params: dict = field(default_factory=dict)
    train: str | None = None
    env: dict = field(default_factory=dict)


def plan(config: str, multilabel: bool, args: argparse.Namespace,
         split: tuple[str, str] | None = None) -> list[Entry]:
    """The rows of one (dataset, configuration) table, in run order.

    Parameters
    ----------
    config : str
        One of :data:`CONFIGS` but ``latency`` (see :mod:`bench_latency`).
    multilabel : bool
        The dataset has lines with several labels (then ``loss="ova"`` in
        ``paper`` and ``ft-defaults``).
    args : argparse.Namespace
        Command-line options (``torch_batch``, ``torch_lr_scale``, ``compat``).
    split : (str, str), optional
        The ``autotune`` configuration's files: the training set without the held-out part,
        and the held-out part (:func:`bench_common.hold_out`).

    Returns
    -------
    list of Entry
    """
    if config in ("paper", "ft-defaults"):
        params = {**(PAPER if config == "paper" else FT_DEFAULTS), "loss": "ova" if multilabel else "softmax"}
        return [Entry("fastembed preset=fasttext", "fastembed", {"preset": "fasttext", **params}),
                Entry("fastText", "fasttext", params),
                Entry(f"PyTorch (batch {args.torch_batch})", "torch",
                      {**params, "batch": args.torch_batch, "lr_scale": args.torch_lr_scale})]
    if config == "autotune":
        rest, heldout = split
        at = f"autotune {AUTOTUNE_DURATION} s"
        return [Entry(f"fastembed {at}", "fastembed",
                      {"autotune_validation": heldout, "autotune_duration": AUTOTUNE_DURATION}, train=rest),
                Entry(f"fastText {at}", "fasttext",
                      {"autotuneValidationFile": heldout, "autotuneDuration": AUTOTUNE_DURATION,
                       **({"loss": "ova"} if multilabel else {})}, train=rest, env={"MALLOC_PERTURB_": "255"}),
                Entry("fastembed", "fastembed"), Entry("sklearn LinearSVC", "sklearn-svc")]
    entries = [Entry("fastembed", "fastembed"), Entry("fastText", "fasttext")]
    if args.compat:
        entries.append(Entry("fastembed preset=fasttext (fastText defaults)", "fastembed",
                             {"preset": "fasttext", **FT_DEFAULTS, "loss": "softmax"}))
    return entries + [Entry("sklearn LinearSVC", "sklearn-svc"), Entry("sklearn SGD", "sklearn-sgd"),
                      Entry("Vowpal Wabbit", "vw", {"options": VW_OPTIONS})]


# ============================================================= parent: running

class Runner:
    """Spawns workers and commands (beside a busy core with ``--busy-core``) and makes run records."""

    def __init__(self, args: argparse.Namespace, scratch: str):
        self.args, self.scratch = args, scratch
        self.env = dict(os.environ, PYTHONHASHSEED="0")
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
            self.env[var] = str(args.threads)
        self._n = 0

    def _run_dir(self) -> Path:
        self._n += 1
        run_dir = Path(self.scratch) / f"run{self._n}"
        run_dir.mkdir()
        return run_dir

    def spawn(self, spec: dict, timeout: float, timed: bool = True, env: dict | None = None) -> tuple[dict, object]:
        """Run one worker; return its parsed JSON (or {}) and the ChildResult.

        ``timed=False`` (the import probes): never beside the busy core. ``env``: variables
        added to the runner's environment.
        """
        run_dir = self._run_dir()
        spec = {**spec, "model_path": str(run_dir / "model")}
        child = run_child([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
                          {**self.env, **(env or {})}, timeout, run_dir, busy_core=timed and self.args.busy_core)
        lines = [ln for ln in child.stdout.splitlines() if ln.startswith("{")]
        try:
            payload = json.loads(lines[-1]) if lines else {}
        except json.JSONDecodeError:
            payload = {}
        shutil.rmtree(run_dir, ignore_errors=True)
        return payload, child

    def command(self, argv: list[str], cwd: str | os.PathLike | None = None):
        """Run one timed command (not a worker) in the workers' environment; return the ChildResult."""
        run_dir = self._run_dir()
        child = run_child(argv, self.env, self.args.timeout, run_dir, busy_core=self.args.busy_core, cwd=cwd)
        shutil.rmtree(run_dir, ignore_errors=True)
        return child

    def probe(self, system: str) -> dict:
        """Import a system in a worker: ``{"version": ...}`` or ``{"skipped": reason}``."""
        payload, child = self.spawn({"system": system, "probe": True}, timeout=600, timed=False)
        if child.returncode not in (0, EXIT_SKIPPED) or not payload:
            return {"skipped": f"probe failed: {first_line(child.stderr)}"}
        return payload

    @staticmethod
    def title(system: str) -> str:
        """The display name of a key of :data:`SYSTEMS`."""
        return SYSTEMS[system]().title

    def record(self, child, payload: dict, expect: str | None, problem: str | None = None, **fields) -> dict:
        """One run's record: ``fields``, what the parent measured, the worker's payload, the status.

        Parameters
        ----------
        child : bench_common.ChildResult
        payload : dict
            The worker's JSON line ({} for a command).
        expect : str or None
            A key the payload must have for the run to count as ok.
        problem : str, optional
            Why an otherwise successful run failed (a check of its output).
        """
        rec = {**fields, "threads": self.args.threads, "busy_core": self.args.busy_core,
               "process_s": child.wall_s, "peak_rss_mb": child.peak_rss_mb, "cpu_s": child.cpu_s,
               "other_load": child.other_load, "returncode": child.returncode}
        if child.timed_out:
            rec.update(status="failed", error=f"timeout after {self.args.timeout:g} s")
        elif child.returncode == EXIT_SKIPPED and payload.get("skipped") is not None:
            rec.update(status="skipped", error=payload["skipped"])
        elif child.returncode != 0 or (expect and expect not in payload):
            rec.update(status="failed", error=first_line(child.stderr) or f"exit status {child.returncode}")
        elif problem:
            rec.update(status="failed", error=problem)
        else:
            rec.update(status="ok", **payload)
        return rec

    def run(self, entry: Entry, ds, config: str, rep: int, warmup: bool = False) -> dict:
        """Run one entry once; return its record (status ok / failed / skipped)."""
        params = entry.params
        if warmup and "autotune_duration" in params:  # compiles the kernels without a whole search
            params = {**params, "autotune_duration": AUTOTUNE_WARMUP_DURATION}
        spec = {"system": entry.system, "train": entry.train or ds.train,
                "test": ds.test, "params": params, "threads": self.args.threads,
                "seed": self.args.seed + max(rep, 0), "multilabel": ds.multilabel}
        payload, child = self.spawn(spec, self.args.timeout, env=entry.env)
        return self.record(child, payload, "metrics", dataset=ds.name, config=config, label=entry.label,
                           system=entry.system, params=entry.params, rep=rep, warmup=warmup)


def first_line(text: str) -> str:
    """The first non-empty line of a text (stripped), or ''."""
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


# ============================================================= parent: reporting

METRICS = (("p_at_1", "P@1"), ("r_at_1", "R@1"), ("micro_f1", "micro-F1"))


def aggregate(records: list[dict], dataset_tokens: int) -> dict:
    """Medians (and min, max) over the successful repetitions of one entry.

    Parameters
    ----------
    records : list of dict
        Run records of one (dataset, configuration, entry), warm-ups excluded.
    dataset_tokens : int
        Training tokens per epoch (the same count for every system).

    Returns
    -------
    dict
        ``ok``/``runs`` counts, ``errors`` and, per figure, ``(median, min, max)``.
    """
    ok = [r for r in records if r["status"] == "ok"]
    agg = {"runs": len(records), "ok": len(ok), "errors": [r["error"] for r in records if r["status"] != "ok"],
           "status": records[0]["status"] if records and not ok else "ok"}
    get = {
        **{key: (lambda r, k=key: r["metrics"].get(k)) for key, _ in METRICS},
        "train_s": lambda r: r["train_s"], "import_s": lambda r: r["import_s"],
        "convert_s": lambda r: r.get("convert_s"),
        "test_s": lambda r: r["test_s"], "process_s": lambda r: r["process_s"],
        "peak_rss_mb": lambda r: r["peak_rss_mb"], "other_load": lambda r: r.get("other_load"),
        "model_mb": lambda r: r["model_bytes"] / 2**20 if r.get("model_bytes") is not None else None,
        "mtok_s_thread": lambda r: (dataset_tokens * r["epochs"] / r["train_s"] / r["threads"] / 1e6
                                    if r.get("epochs") else None),
    }
    for key, fn in get.items():
        agg[key] = summarize([fn(r) for r in ok])
    phases = dict.fromkeys(k for r in ok for k in (r.get("phases") or {}))  # ordered, unique
    agg["phases"] = {k: summarize([(r.get("phases") or {}).get(k) for r in ok])[0] for k in phases}
    return agg


def render_table(ds, config: str, entries: list[Entry], runs: list[dict], busy_core: bool = False) -> str:
    """One markdown table: the medians of each entry, with ratios to fastText.

    Parameters
    ----------
    ds : bench_common.Dataset
    config : str
    entries : list of Entry
    runs : list of dict
        All run records (filtered here to this dataset and configuration).
    busy_core : bool
        The runs had one core busy (``--busy-core``): the title says so.

    Returns
    -------
    str
    """
    aggs = {}
    for e in entries:
        recs = [r for r in runs if r["dataset"] == ds.name and r["config"] == config
                and r["label"] == e.label and not r["warmup"]]
        if recs:
            aggs[e.label] = aggregate(recs, ds.tokens)

    def med(label, key):
        a = aggs.get(label)
        return a[key][0] if a and a["ok"] and a.get(key) else None

    def cell(label, key, digits=None, base="fastText"):
        """The median of a figure, with its ratio to the base row's (none on the base row)."""
        value = med(label, key)
        return fmt_num(value, digits) + ("" if label == base else fmt_ratio(value, med(base, key), digits is not None))

    metrics = METRICS if ds.multilabel else (("p_at_1", "accuracy"),)
    svc = "sklearn LinearSVC" if med("sklearn LinearSVC", "p_at_1") is not None else None
    cols = [name for _, name in metrics]
    if svc:
        cols.append(f"{metrics[0][1]} / LinearSVC")
    convert = any(a["ok"] and a["convert_s"] for a in aggs.values())
    cols.append("train s [min–max]")
    if convert:
        cols.append("convert s")
    cols += ["import s", "test s", "process s", "Mtok/s/thread", "peak RSS MB", "model MB",
             "train split (s)", "other load"]
    align = "".join("---|" if c.startswith("train split") else "---:|" for c in cols)
    lines = ["| system | " + " | ".join(cols) + " |", "|---|" + align]
    for label, a in aggs.items():
        if not a["ok"]:
            lines.append(f"| {label} | {a['status']}: {a['errors'][0]} |" + " |" * (len(cols) - 1))
            continue
        cells = [cell(label, k, 4) for k, _ in metrics]
        if svc:
            cells.append("–" if label == svc else fmt_ratio(med(label, "p_at_1"), med(svc, "p_at_1"), True).strip() or "–")
        cells.append(f"{cell(label, 'train_s')} [{fmt_num(a['train_s'][1])}–{fmt_num(a['train_s'][2])}]")
        if convert:
            cells.append(fmt_num(med(label, "convert_s")))
        cells += [cell(label, key) for key in ("import_s", "test_s", "process_s", "mtok_s_thread",
                                               "peak_rss_mb", "model_mb")]
        cells.append(", ".join(f"{k.removesuffix('_s')} {fmt_num(v)}" for k, v in a["phases"].items()) or "–")
        cells.append(fmt_num(a["other_load"][2], 2) if a["other_load"] else "–")
        name = label if a["ok"] == a["runs"] else f"{label} ({a['runs'] - a['ok']}/{a['runs']} failed: {a['errors'][0]})"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    title = f"### {ds.name} — {config}" + (" (one core busy)" if busy_core else "")
    about = (f"{ds.train_docs:,} train / {ds.test_docs:,} test documents, {ds.labels} labels"
             f"{' (multi-label)' if ds.multilabel else ''}, {ds.tokens:,} training tokens per epoch. "
             f"Medians of the repetitions; ×: ratio to fastText; other load: the most CPU (cores) "
             f"other processes used during one of the row's runs.")
    if ds.note:
        about += f" Split: {ds.note}."
    return "\n".join([title, "", about, "", *lines, ""])


def render_header(meta: dict, runs: list[dict]) -> str:
    """The report's header: machine, versions, command, date, load, notes."""
    m = meta["machine"]
    load = summarize([r.get("other_load") for r in runs])
    out = ["# fastembed benchmark", "",
           f"- date: {meta['date']}",
           f"- command: `{meta['command']}`",
           f"- machine: {m['cpu']}, {m['cores']} cores (nproc {m['nproc']}), {m['mem_gib']} GiB, {m['os']}",
           f"- Python {m['python']}; " + "; ".join(f"{k} {v}" for k, v in meta["versions"].items()),
           (f"- threads {meta['threads']} for every system; {meta['repeats']} repetitions, alternated; "
            f"seed {meta['seed']} + repetition; every run a fresh process"),
           ("- train s: from the file path to a trained model in memory (reading, dictionary, training); "
            "process s: the whole worker process (interpreter start, imports, train, test, save); "
            "Mtok/s/thread: training tokens (words + `</s>`) × epochs / train s / threads"),
           ]
    if meta.get("busy_core"):
        out.append("- **one core busy**: a separate process ran a plain Python busy loop (`while True: pass`) "
                   "from before each timed process started until it ended, for every system alike; its CPU "
                   "time is not counted in other load")
    if load:
        out.append(f"- other load: CPU used by other processes during a run, in cores (the machine is "
                   f"shared): median {load[0]:.2f}, range {load[1]:.2f}–{load[2]:.2f}")
    out += [f"- note: {n}" for n in meta["notes"]]
    return "\n".join(out) + "\n"


def library_versions() -> dict:
    """Versions of the supporting libraries (from package metadata; nothing imported)."""
    out = {}
    for dist in ("numpy", "numba", "scipy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        rev = subprocess.run(["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, check=True).stdout.strip()
        out["fastembed git"] = rev
    except (OSError, subprocess.CalledProcessError):
        pass
    return out


# ==================================================================== main

def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="all",
                   help=f"comma-separated, or 'all' ({','.join(DATASETS)}); default %(default)s")
    p.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                   help=f"comma-separated subset of {','.join(CONFIGS)}; default %(default)s")
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of %(default)s")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="default %(default)s")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per run; default %(default)s")
    p.add_argument("--torch-batch", type=int, default=32)
    p.add_argument("--torch-lr-scale", choices=("batch", "none"), default="batch",
                   help="multiply the torch lr by the batch size (per-example equivalent) or not")
    p.add_argument("--no-compat", dest="compat", action="store_false",
                   help="in 'defaults', leave out fastembed preset=fasttext with fastText's defaults")
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="skip the discarded first run of JIT systems (fastembed) per table")
    p.add_argument("--no-bytecode", dest="bytecode", action="store_false",
                   help="do not write fastembed's .pyc files first (bench_common.compile_bytecode): with "
                        "PYTHONDONTWRITEBYTECODE set and an editable install, every process then compiles "
                        "fastembed's modules (and .pyc files already written are still used)")
    p.add_argument("--busy-core", action="store_true",
                   help="run a busy loop in another process during every timed run (one core busy)")
    p.add_argument("--wordvec-corpus", default=bench_wordvec.DEFAULT_CORPUS,
                   help="'wordvec' corpus, built when missing; default %(default)s")
    p.add_argument("--wordvec-words", type=int, default=0,
                   help="build the 'wordvec' corpus from the first N words only (0: all)")
    p.add_argument("--wordvec-models", default=",".join(bench_wordvec.MODELS),
                   help="'wordvec' models; default %(default)s")
    p.add_argument("--wordvec-systems", default=",".join(bench_wordvec.SYSTEMS),
                   help="'wordvec' systems; default %(default)s")
    p.add_argument("--out", default="results.md")
    p.add_argument("--json", default="results.json")
    args = p.parse_args(argv)
    args.datasets = list(DATASETS) if args.datasets == "all" else args.datasets.split(",")
    args.configs, args.systems = args.configs.split(","), args.systems.split(",")
    for name, allowed in (("datasets", DATASETS), ("configs", CONFIGS), ("systems", SYSTEMS)):
        bad = [v for v in getattr(args, name) if v not in allowed]
        if bad:
            p.error(f"unknown {name}: {', '.join(bad)}")
    return args


def log(msg: str) -> None:
    """Progress on stderr (stdout carries the markdown)."""
    print(msg, file=sys.stderr, flush=True)


def probe_systems(runner: Runner, keys: list[str], meta: dict) -> set[str]:
    """Import each selected system once; note the skipped ones and the versions.

    Returns
    -------
    set of str
        The keys of the available systems.
    """
    available = set()
    for key in keys:
        probe, system = runner.probe(key), SYSTEMS[key]()
        if "skipped" in probe:
            meta["notes"].append(f"{system.title} skipped: {probe['skipped']}")
            log(f"skip {key}: {probe['skipped']}")
        else:
            available.add(key)
            meta["versions"][system.package] = probe["version"]
            if probe.get("location"):
                meta["notes"].append(f"{system.title} imported from {probe['location']}")
    meta["versions"].update(library_versions())
    return available


def run_block(runner: Runner, ds, config: str, entries: list[Entry], args, runs: list[dict], save) -> None:
    """All runs of one table: optional JIT warm-ups, then the alternated repetitions.

    Parameters
    ----------
    runner : Runner
    ds : bench_common.Dataset
    config : str
    entries : list of Entry
    args : argparse.Namespace
    runs : list of dict
        Appended to, one record per run.
    save : callable
        Called after every run (keeps the JSON and markdown files current).
    """
    if args.warmup:
        for e in entries:
            if SYSTEMS[e.system]().jit:
                log(f"{ds.name} {config} {e.label}: warm-up")
                runs.append(runner.run(e, ds, config, rep=-1, warmup=True))
    for rep in range(args.repeats):
        for e in entries:
            rec = runner.run(e, ds, config, rep)
            runs.append(rec)
            if rec["status"] == "ok":
                detail = (f"P@1 {rec['metrics']['p_at_1']:.4f} train {rec['train_s']:.2f}s "
                          f"process {rec['process_s']:.2f}s rss {rec['peak_rss_mb']:.0f}MB "
                          f"other load {rec['other_load'] or 0:.2f}")
            else:
                detail = rec["error"]
            log(f"{ds.name} {config} rep {rep + 1}/{args.repeats} {e.label}: {rec['status']} {detail}")
            save()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    meta = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": shlex.join([Path(sys.executable).name, *sys.argv]),
            "machine": machine_info(), "threads": args.threads, "repeats": args.repeats, "seed": args.seed,
            "busy_core": args.busy_core, "versions": {}, "notes": [], "datasets": {}}
    runs: list[dict] = []
    tables: list[str] = []
    if args.bytecode:
        meta["notes"].append(compile_bytecode())

    def save() -> None:
        Path(args.json).write_text(json.dumps({"meta": meta, "runs": runs}, indent=1, default=str))
        Path(args.out).write_text(render_header(meta, runs) + "\n" + "\n".join(tables))

    with tempfile.TemporaryDirectory(prefix="fastembed-bench-") as scratch:
        runner = Runner(args, scratch)
        available = probe_systems(runner, args.systems, meta)
        if "torch" in available:
            meta["notes"].append(f"PyTorch: batch {args.torch_batch}, lr × "
                                 f"{'batch size' if args.torch_lr_scale == 'batch' else '1'}")
        if "vw" in available and "defaults" in args.configs:
            meta["notes"].append(f"Vowpal Wabbit: `--oaa K {VW_OPTIONS} --cache_file F`; convert s (not in "
                                 f"train s): writing both files in VW's format; multi-label lines train on "
                                 f"their first label (P@1 and R@1 count all labels, no micro-F1)")
        latency_systems = [k for k in bench_latency.LATENCY_PARAMS if k in available]
        if "latency" in args.configs:
            meta["notes"].append(f"latency: `fastembed` command: `{shlex.join(bench_latency.fastembed_command())}`")
        print(render_header(meta, runs), flush=True)
        dataset_configs = [c for c in args.configs if c != "wordvec"]
        for name in args.datasets if dataset_configs else ():
            ds = prepare_dataset(args.data_dir, name, scratch)
            meta["datasets"][name] = vars(ds) | {"train": None, "test": None}
            if ds.note:
                meta["notes"].append(f"{name}: {ds.note}")
            split = None
            for config in dataset_configs:
                if config == "latency":
                    if not latency_systems:
                        continue
                    bench_latency.run_latency_block(runner, ds, latency_systems, args, runs, save, log)
                    tables.append(bench_latency.render_latency_table(ds, runs, args.busy_core))
                else:
                    if config == "autotune":
                        split = hold_out(ds.train, AUTOTUNE_HOLDOUT, args.seed, scratch)
                    entries = [e for e in plan(config, ds.multilabel, args, split) if e.system in available]
                    if not entries:
                        continue
                    run_block(runner, ds, config, entries, args, runs, save)
                    tables.append(render_table(ds, config, entries, runs, args.busy_core))
                print(tables[-1], flush=True)
                save()
            for path in (ds.train, ds.test, *(split or ())):
                os.unlink(path)
        if "latency" in args.configs and latency_systems:
            bench_latency.run_bundled_block(runner, latency_systems, args, runs, save, log)
            tables.append(bench_latency.render_bundled_table(runs, args.busy_core))
            print(tables[-1], flush=True)
            save()
        if "wordvec" in args.configs:
            table, meta["wordvec"] = bench_wordvec.run(
                args.wordvec_corpus, systems=args.wordvec_systems.split(","),
                models=args.wordvec_models.split(","),
                threads=args.threads, repeats=args.repeats, timeout=args.timeout,
                words=args.wordvec_words, log=log)
            tables.append("### word vectors\n\n" + table)
            print(tables[-1], flush=True)
            save()
    log(f"wrote {args.out} and {args.json}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(worker_main(json.loads(sys.argv[2])))
    sys.exit(main(sys.argv[1:]))
