"""Shared helpers of the benchmark scripts: data, tokenisation, metrics, measurement.

Only the standard library is imported here, so that a benchmark worker can
import this module without paying for (or hiding) the import of the system it
measures.

Contents
--------
* Datasets: :data:`DATASETS`, :func:`prepare_dataset` (decompress once, split
  AG News, count tokens).
* fastText-format tokenisation: :func:`parse_line`, :func:`read_corpus`.
* Metrics with fastText's definitions: :func:`ranking_metrics`, :func:`micro_metrics`.
* Measurement: :func:`run_child` (wall time and peak RSS of one subprocess,
  optionally beside a busy-loop process), :func:`summarize`, :func:`machine_info`,
  :func:`compile_bytecode` (fastembed's ``.pyc`` files, as a regular install has them).
* Table cells: :func:`fmt_num`, :func:`fmt_ratio`.
"""

from __future__ import annotations

import compileall
import contextlib
import dataclasses
import gzip
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

LABEL_PREFIX = "__label__"
EOS = "</s>"  # fastText appends this token to every line

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = next((d / "shared" / "data" for d in REPO_ROOT.parents if (d / "shared" / "data").is_dir()),
                        REPO_ROOT.parent / "shared" / "data")
"""The nearest ``shared/data`` above the repository (a worktree may sit deeper than the main checkout)."""


# --------------------------------------------------------------------------- data

@dataclasses.dataclass(frozen=True)
class DatasetSource:
    """Where a dataset's splits live under the data directory.

    Attributes
    ----------
    train, test : str
        File names (``.txt.gz``) inside the dataset's folder.
    split_train : float or None
        If set, ``train`` and ``test`` name the same file, and its first
        ``split_train`` fraction of lines is the training set, the rest the
        test set (a deterministic split, no shuffling).
    """

    train: str = "train.txt.gz"
    test: str = "test.txt.gz"
    split_train: float | None = None


DATASETS: dict[str, DatasetSource] = {
    "trec6": DatasetSource(),
    "trec50": DatasetSource(),
    "sms_spam": DatasetSource(),
    "reuters21578_modapte": DatasetSource(),
    "ag_news": DatasetSource("test.txt.gz", "test.txt.gz", split_train=0.8),
    "sst2": DatasetSource(),
    "20newsgroups": DatasetSource(),
    "imdb": DatasetSource(),
}
"""The datasets of ``/work/shared/data``, smallest first (see its README.md)."""


@dataclasses.dataclass
class Dataset:
    """A dataset decompressed to plain fastText-format files.

    Attributes
    ----------
    name : str
    train, test : str
        Paths of the plain-text files every system is given.
    train_docs, test_docs : int
        Number of lines.
    tokens : int
        Training tokens as fastText counts them for its words/sec figure:
        every whitespace-separated word that is not a label, plus one ``</s>``
        per line.
    labels : int
        Distinct labels in the training file.
    multilabel : bool
        True if some training line has more than one label.
    note : str
        How the split was made, when it is not the official one.
    """

    name: str
    train: str
    test: str
    train_docs: int
    test_docs: int
    tokens: int
    labels: int
    multilabel: bool
    note: str = ""


def parse_line(line: str) -> tuple[list[str], list[str]]:
    """Split one fastText-format line into labels and words.

    Parameters
    ----------
    line : str
        ``__label__a [__label__b ...] some text``. Tokens are separated by
        whitespace; a token is a label if it starts with ``__label__``
        (wherever it is on the line, as in fastText).

    Returns
    -------
    labels : list of str
        The label tokens, prefix included, in order, duplicates removed.
    words : list of str
        The other tokens, in order (without the ``</s>`` fastText adds).
    """
    labels: list[str] = []
    words: list[str] = []
    for tok in line.split():
        if tok.startswith(LABEL_PREFIX):
            if tok not in labels:
                labels.append(tok)
        else:
            words.append(tok)
    return labels, words


def read_corpus(path: str | os.PathLike) -> tuple[list[list[str]], list[list[str]]]:
    """Read a plain fastText-format file.

    Parameters
    ----------
    path : str or path-like
        UTF-8 text, one document a line.

    Returns
    -------
    labels, words : list of list of str
        Per document, as returned by :func:`parse_line`.
    """
    all_labels, all_words = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            labels, words = parse_line(line)
            all_labels.append(labels)
            all_words.append(words)
    return all_labels, all_words


def prepare_dataset(data_dir: str | os.PathLike, name: str, work_dir: str | os.PathLike) -> Dataset:
    """Decompress a dataset once into ``work_dir`` and describe it.

    Parameters
    ----------
    data_dir : str or path-like
        The shared data directory (one folder per dataset of ``.txt.gz`` files).
    name : str
        A key of :data:`DATASETS`.
    work_dir : str or path-like
        Where ``<name>.train.txt`` and ``<name>.test.txt`` are written.

    Returns
    -------
    Dataset
    """
    src = DATASETS[name]
    folder = Path(data_dir) / name

    def lines_of(fname: str) -> list[str]:
        with gzip.open(folder / fname, "rt", encoding="utf-8") as f:
            return f.readlines()

    note = ""
    if src.split_train is None:
        train_lines, test_lines = lines_of(src.train), lines_of(src.test)
    else:
        lines = lines_of(src.train)
        cut = round(len(lines) * src.split_train)
        train_lines, test_lines = lines[:cut], lines[cut:]
        note = (f"no official train split available: {src.train} split in file order, "
                f"first {cut} lines ({src.split_train:.0%}) train, last {len(lines) - cut} test")

    paths = {}
    for split, lines in (("train", train_lines), ("test", test_lines)):
        paths[split] = str(Path(work_dir) / f"{name}.{split}.txt")
        with open(paths[split], "w", encoding="utf-8") as f:
            f.writelines(lines)

    tokens, label_set, multilabel = 0, set(), False
    for line in train_lines:
        labels, words = parse_line(line)
        tokens += len(words) + 1
        label_set.update(labels)
        multilabel |= len(labels) > 1
    return Dataset(name, paths["train"], paths["test"], len(train_lines), len(test_lines),
                   tokens, len(label_set), multilabel, note)


def hold_out(train: str, fraction: float, seed: int, work_dir: str | os.PathLike) -> tuple[str, str]:
    """Split a training file into (rest, held out): ``fraction`` of its lines, drawn at random.

    The autotune configuration trains on the rest and tunes on the held-out lines. The draw is
    a seeded shuffle of the line numbers, so every system sees the same two files; both keep
    the lines in their original order.
    """
    import random

    with open(train, encoding="utf-8") as f:
        lines = f.readlines()
    order = list(range(len(lines)))
    random.Random(seed).shuffle(order)
    held = set(order[:round(len(lines) * fraction)])
    stem = Path(work_dir) / Path(train).stem
    paths = (f"{stem}.rest.txt", f"{stem}.heldout.txt")
    with open(paths[0], "w", encoding="utf-8") as rest, open(paths[1], "w", encoding="utf-8") as out:
        for i, line in enumerate(lines):
            (out if i in held else rest).write(line)
    return paths


# ------------------------------------------------------------------------ metrics

def ranking_metrics(gold: list[set], top1: list, predicted: list[set] | None = None) -> dict:
    """P@1, R@1 and (optionally) micro-F1, as fastText's ``test`` defines them.

    Parameters
    ----------
    gold : list of set
        The true labels of each test document. Documents with an empty set
        (no label known to the model) are skipped, as fastText skips them.
    top1 : list
        The highest-scoring label of each document.
    predicted : list of set, optional
        The labels predicted with a threshold (fastText: ``k=-1,
        threshold=0.5``); adds the keys of :func:`micro_metrics`.

    Returns
    -------
    dict
        ``p_at_1`` (share of documents whose top label is a true one; the
        accuracy on single-label data), ``r_at_1`` (correct top labels over all
        true labels), ``n`` (documents scored).
    """
    keep = [i for i, g in enumerate(gold) if g]
    n_gold = sum(len(gold[i]) for i in keep)
    hits = sum(top1[i] in gold[i] for i in keep)
    out = {"n": len(keep), "p_at_1": hits / len(keep) if keep else float("nan"),
           "r_at_1": hits / n_gold if n_gold else float("nan")}
    if predicted is not None:
        out.update(micro_metrics(gold, predicted))
    return out


def micro_metrics(gold: list[set], predicted: list[set]) -> dict:
    """Micro-averaged precision, recall and F1 of thresholded predictions.

    Parameters
    ----------
    gold, predicted : list of set
        True and predicted labels per document; documents with no true label
        are skipped (see :func:`ranking_metrics`).

    Returns
    -------
    dict
        The keys of :func:`micro_prf`.
    """
    pairs = [(g, p) for g, p in zip(gold, predicted) if g]
    tp = sum(len(g & p) for g, p in pairs)
    n_pred, n_gold = sum(len(p) for _, p in pairs), sum(len(g) for g, _ in pairs)
    return micro_prf(tp / n_pred if n_pred else 0.0, tp / n_gold if n_gold else 0.0)


def micro_prf(precision: float, recall: float) -> dict:
    """Package micro precision and recall with their harmonic mean.

    Parameters
    ----------
    precision, recall : float

    Returns
    -------
    dict
        ``micro_p``, ``micro_r``, ``micro_f1``.
    """
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"micro_p": precision, "micro_r": recall, "micro_f1": f1}


# -------------------------------------------------------------------- measurement

@dataclasses.dataclass
class ChildResult:
    """What the parent observes of one worker subprocess.

    Attributes
    ----------
    returncode : int
        Exit status (negative: killed by that signal).
    stdout, stderr : str
    wall_s : float
        Wall time from spawning the process to reaping it.
    peak_rss_mb : float
        ``ru_maxrss`` of the reaped child (KiB on Linux) in MiB; the maximum
        over the child and the descendants it waited for.
    cpu_s : float
        User + system CPU time of the child (and its reaped descendants).
    other_load : float or None
        CPU time that everything else on the machine used while the child ran,
        per second of wall time (in cores): how much the run was disturbed.
    timed_out : bool
    """

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    peak_rss_mb: float
    cpu_s: float
    other_load: float | None
    timed_out: bool


def _busy_cpu_s() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (from /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds one live process has used (from /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


BUSY_LOOP = "while True: pass"
"""The program of the ``--busy-core`` process: one core kept busy, as a competing job would."""


class BusyCore:
    """A plain Python busy loop in its own process, for as long as the ``with`` block runs.

    Attributes
    ----------
    cpu_s : float or None
        CPU seconds the loop used between :meth:`mark` and the end of the block
        (the parent subtracts them from the machine's load: they are not "other load").
    """

    def __init__(self):
        self.cpu_s = None
        self._proc = None
        self._cpu0 = None

    def __enter__(self):
        self._proc = subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdin=subprocess.DEVNULL,
                                      start_new_session=True)
        time.sleep(0.05)  # spinning (past its interpreter start) before the timed process starts
        return self

    def mark(self) -> None:
        """Start counting the loop's CPU time (just before the timed process starts)."""
        self._cpu0 = _process_cpu_s(self._proc.pid)

    def __exit__(self, *exc):
        cpu1 = _process_cpu_s(self._proc.pid)
        if self._cpu0 is not None and cpu1 is not None:
            self.cpu_s = cpu1 - self._cpu0
        self._proc.kill()
        self._proc.wait()
        return False


def run_child(argv: list[str], env: dict, timeout: float, scratch: str | os.PathLike,
              busy_core: bool = False, cwd: str | os.PathLike | None = None) -> ChildResult:
    """Run one command in its own session, measuring its wall time and peak RSS.

    Output goes to files in ``scratch`` (not pipes), so the parent can reap the
    child itself with :func:`os.wait4` and read its resource usage. On timeout
    the child's whole process group is killed.

    Parameters
    ----------
    argv : list of str
    env : dict
        The child's environment.
    timeout : float
        Seconds before the child is killed.
    scratch : str or path-like
        An existing directory for the output files.
    busy_core : bool
        Run a busy loop (:class:`BusyCore`) in another process from before the
        child starts until it has ended: the child then competes for the cores
        with one fully busy core. The loop's CPU time is not counted in
        ``other_load``.
    cwd : str or path-like, optional
        The child's working directory.

    Returns
    -------
    ChildResult
    """
    out_path, err_path = Path(scratch) / "stdout", Path(scratch) / "stderr"
    timed_out = threading.Event()
    busy = BusyCore() if busy_core else contextlib.nullcontext()
    with busy, open(out_path, "wb") as out, open(err_path, "wb") as err:
        if busy_core:
            busy.mark()
        busy0 = _busy_cpu_s()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True)

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        busy1 = _busy_cpu_s()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    cpu = usage.ru_utime + usage.ru_stime
    other = None
    if busy0 is not None and busy1 is not None and not (busy_core and busy.cpu_s is None):
        other = max(0.0, (busy1 - busy0 - cpu - (busy.cpu_s if busy_core else 0.0)) / wall)
    return ChildResult(proc.returncode, out_path.read_text(errors="replace"),
                       err_path.read_text(errors="replace"), wall, usage.ru_maxrss / 1024.0, cpu, other,
                       timed_out.is_set())


def compile_bytecode() -> str:
    """Write the bytecode (``.pyc``) of fastembed's modules and of these scripts; returns a note
    for the report.

    A regular install has it: pip compiles a package's modules when it installs them, as it did
    fastText's Python module. An editable install (``pip install -e .``) leaves it to the first
    import, which writes nothing when ``PYTHONDONTWRITEBYTECODE`` is set (as it is in the shared
    environment this was measured in): every fresh process then compiled the ~46 modules a
    training imports again. ``fastembed train`` on TREC-6 took 0.546 s without them and 0.473 s
    with them (medians of 7 alternating processes, quiet machine, 2026-12-03). Python checks a
    ``.pyc`` against its source's size and modification time, so an edited module is compiled
    afresh whatever is here."""
    dirs = [REPO_ROOT / "fastembed", REPO_ROOT / "scripts"]
    ok = all([compileall.compile_dir(d, quiet=1) for d in dirs])  # a list: every directory, even after a failure
    env = "set" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "not set"
    return (f"bytecode: fastembed's and the scripts' modules compiled beforehand (`compileall`), as a "
            f"regular install has them (PYTHONDONTWRITEBYTECODE {env} here)" + ("" if ok else "; some failed"))


def summarize(values: list[float]) -> tuple[float, float, float] | None:
    """Median, minimum and maximum of the values that are not None.

    Parameters
    ----------
    values : list of float or None

    Returns
    -------
    tuple of float or None
        ``(median, min, max)``, or None if there is no value.
    """
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def machine_info() -> dict:
    """Describe the machine: CPU model, core counts, memory, OS, Python.

    Returns
    -------
    dict
    """
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            kib = next(int(ln.split()[1]) for ln in f if ln.startswith("MemTotal"))
        mem_gib = round(kib / 2**20, 1)
    except (OSError, StopIteration):
        pass
    try:
        nproc = int(subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout)
    except (OSError, subprocess.CalledProcessError, ValueError):
        nproc = len(os.sched_getaffinity(0))
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(), "nproc": nproc,
            "mem_gib": mem_gib, "os": platform.platform(), "python": platform.python_version()}


# ---------------------------------------------------------------------- table cells

def fmt_num(v: float | None, digits: int | None = None) -> str:
    """A figure with sensible precision (3 significant digits unless ``digits``); '–' if missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if digits is not None:
        return f"{v:.{digits}f}"
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    return f"{v:.{max(0, 2 - mag)}f}"


def fmt_ratio(v: float | None, base: float | None, precise: bool = False) -> str:
    """`` ×r`` with r = v / base: 3 decimals near 1 (always if ``precise``), else 2 digits; '' if missing."""
    if v is None or base is None or not base or (isinstance(v, float) and math.isnan(v)):
        return ""
    r = v / base
    return f" ×{r:.3f}" if precise or 0.9 < r < 1.1 else f" ×{r:#.2g}" if r < 10 else f" ×{r:.0f}"
