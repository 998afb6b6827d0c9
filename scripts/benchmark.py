#!/usr/bin/env python
"""fastembed vs fastText vs PyTorch vs scikit-learn: one command, same files, same settings.

Every run is a fresh subprocess (``benchmark.py --worker SPEC``) so that each
run's import cost, peak RSS and failures are its own. The systems are
alternated (A rep 1, B rep 1, ..., A rep 2, ...) so that drift of a noisy
machine spreads over all of them.

Examples
--------
Everything (all datasets, the three configurations, 3 repetitions)::

    python scripts/benchmark.py --datasets all --out results.md --json results.json
    python scripts/plot_benchmark.py results.json -o accuracy_vs_time.png

A quick look (about 1.5 minutes)::

    python scripts/benchmark.py --datasets trec6,sms_spam --repeats 1

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
    parameters but ``thread``), scikit-learn LinearSVC and SGD, and (unless
    ``--no-compat``) fastembed ``preset="fasttext"`` with fastText's defaults.

On multi-label data (Reuters) ``paper`` and ``ft-defaults`` use ``loss="ova"``
and report P@1, R@1 and micro-F1 at threshold 0.5.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (  # after the sys.path line on purpose
    DATASETS,
    DEFAULT_DATA_DIR,
    EOS,
    REPO_ROOT,
    machine_info,
    micro_metrics,
    micro_prf,
    prepare_dataset,
    ranking_metrics,
    read_corpus,
    run_child,
    summarize,
)

EXIT_SKIPPED = 3  # a worker's exit status when its system is not available

PAPER = {"dim": 10, "word_ngrams": 2, "lr": 0.25, "epoch": 5, "bucket": 2_000_000}
FT_DEFAULTS = {"dim": 100, "lr": 0.1, "epoch": 5, "word_ngrams": 1}
CONFIGS = ("paper", "ft-defaults", "defaults")


# ============================================================ systems (worker side)

class Unavailable(Exception):
    """The system cannot be imported (or lacks the API): skip it, do not fail."""


class System:
    """One system under test, as driven by the worker harness (:func:`worker_main`).

    A subclass imports its library in :meth:`load` (timed as ``import_s``),
    trains from the training file in :meth:`train` (``train_s``), scores the
    test file in :meth:`evaluate` (``test_s``) and writes its model in
    :meth:`save` (not timed).
    """

    title = ""
    package = ""  # distribution name, for the versions line
    jit = False  # True: warm its JIT cache with one discarded run per block

    def load(self) -> str:
        """Import the system.

        Returns
        -------
        str
            Its version.

        Raises
        ------
        Unavailable
            If it is not installed or lacks the API.
        """
        raise NotImplementedError

    def train(self, spec: dict) -> tuple[object, dict]:
        """Train from ``spec["train"]`` (a path) with ``spec["params"]``.

        Returns
        -------
        model : object
        info : dict
            Optional ``phases`` (dict of seconds), ``epochs``, ``tokens``.
        """
        raise NotImplementedError

    def evaluate(self, model, spec: dict) -> dict:
        """Score ``spec["test"]``; return the dict of :func:`ranking_metrics`."""
        raise NotImplementedError

    def save(self, model, path: str) -> int | None:
        """Write the model to ``path``; return its size in bytes (None: not saved)."""
        raise NotImplementedError


def _import(name: str, what: str):
    """Import a module by name, turning an ImportError into :class:`Unavailable`."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise Unavailable(f"{what} not importable ({exc})") from None


def _path_size(path: str) -> int:
    """Bytes of a file, or of all files under a directory."""
    p = Path(path)
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size


class FastembedSystem(System):
    """fastembed through its fastText-like API (``fastembed.train_supervised``)."""

    title = package = "fastembed"
    jit = True

    def load(self):
        fe = _import("fastembed", "fastembed")
        try:  # resolves fastembed's lazy attribute: the real import happens here
            self.train_fn = fe.train_supervised
        except (ImportError, AttributeError) as exc:
            raise Unavailable(f"fastembed.train_supervised not usable ({type(exc).__name__}: {exc})") from None
        return getattr(fe, "__version__", "?")

    def train(self, spec):
        params = spec["params"]
        model = self.train_fn(input=spec["train"], **params, threads=spec["threads"], seed=spec["seed"],
                              verbose=0)
        stats = dict(getattr(model, "train_stats", None) or {})
        phases = {k: v for k, v in stats.items()
                  if k.endswith("_s") and k != "total_s" and isinstance(v, (int, float))}
        epochs = getattr(getattr(model, "args", None), "epoch", None) or params.get("epoch")
        return model, {"phases": phases, "epochs": epochs, "tokens": stats.get("tokens"),
                       "train_stats": stats}

    def evaluate(self, model, spec):
        n, p, r = model.test(spec["test"], k=1)
        out = {"n": n, "p_at_1": p, "r_at_1": r}
        if spec["multilabel"]:
            gold, words = read_corpus(spec["test"])
            known = set(model.labels)
            preds = model.predict([" ".join(w) for w in words], k=-1, threshold=0.5)
            out.update(micro_metrics([known.intersection(g) for g in gold], [set(lab) for lab, _ in preds]))
        return out

    def save(self, model, path):
        model.save(path)
        return _path_size(path)


class FastTextSystem(System):
    """The official fastText Python binding."""

    title, package = "fastText", "fasttext"

    def load(self):
        self.ft = _import("fasttext", "fasttext")
        return importlib.metadata.version("fasttext")

    def train(self, spec):
        model = self.ft.train_supervised(input=spec["train"], **spec["params"], thread=spec["threads"],
                                         seed=spec["seed"], verbose=0)
        return model, {"epochs": model.epoch}

    def evaluate(self, model, spec):
        n, p, r = model.test(spec["test"], k=1)
        out = {"n": n, "p_at_1": p, "r_at_1": r}
        if spec["multilabel"]:
            _, mp, mr = model.test(spec["test"], k=-1, threshold=0.5)
            out.update(micro_prf(mp, mr))
        return out

    def save(self, model, path):
        model.save_model(path)
        return _path_size(path)


class TorchSystem(System):
    """The same model in idiomatic PyTorch: EmbeddingBag(mean) -> Linear -> softmax / OVA.

    Tokenisation follows fastText: whitespace split, labels by prefix, ``</s>``
    appended, vocabulary from the training file, word n-grams hashed into
    ``bucket`` rows after the vocabulary (word hash: CRC-32 of the UTF-8 word,
    combined as fastText does, ``h = h * 116049371 + h_next``, modulo
    ``bucket``). SGD on both tables (sparse gradients for the embedding), lr
    decaying linearly to 0 over all batches of all epochs, shuffled batches.
    The loss of a batch is summed over its labels and averaged over its
    documents; with ``lr_scale="batch"`` the lr is multiplied by the batch
    size, which makes one batch step the sum of the per-example steps that
    fastText would take.
    """

    title, package = "PyTorch", "torch"
    defaults: ClassVar[dict] = {"dim": 100, "lr": 0.1, "epoch": 5, "word_ngrams": 1, "bucket": 2_000_000,
                "loss": "softmax", "batch": 32, "lr_scale": "batch"}
    ngram_mult = 116049371

    def load(self):
        self.np = _import("numpy", "numpy")
        self.torch = _import("torch", "torch")
        return self.torch.__version__

    # --- data
    def _encode(self, docs: list[list[str]], grow: bool):
        """Documents -> CSR bags of row ids (word ids, then hashed n-gram ids)."""
        np, vocab = self.np, self.vocab
        flat: list[str] = []
        lens = np.empty(len(docs), dtype=np.int64)
        for i, words in enumerate(docs):
            flat.extend(words)
            flat.append(EOS)
            lens[i] = len(words) + 1
        if grow:
            setdefault = vocab.setdefault
            ids = np.array([setdefault(w, len(vocab)) for w in flat], dtype=np.int64)
            self.word_hash = np.fromiter((zlib.crc32(w.encode()) for w in vocab), np.uint64, len(vocab))
            self.nwords = len(vocab)  # n-gram rows come after the (now complete) vocabulary
        else:
            get = vocab.get
            ids = np.array([get(w, -1) for w in flat], dtype=np.int64)
        doc = np.repeat(np.arange(len(docs)), lens)
        known = ids >= 0
        rows, row_doc = [ids[known]], [doc[known]]
        n = self.params["word_ngrams"]
        if n > 1:
            hashes = np.zeros(len(flat), dtype=np.uint64)
            hashes[known] = self.word_hash[ids[known]]
            for i in np.flatnonzero(~known):  # out-of-vocabulary words still form n-grams
                hashes[i] = zlib.crc32(flat[i].encode())
            h, mult, bucket = hashes, np.uint64(self.ngram_mult), np.uint64(self.params["bucket"])
            for k in range(1, n):
                h = h[:-1] * mult + hashes[k:]  # wraps modulo 2**64, as fastText's uint64
                same = doc[:-k] == doc[k:]
                rows.append(self.nwords + (h[same] % bucket).astype(np.int64))
                row_doc.append(doc[:-k][same])
        rows, row_doc = np.concatenate(rows), np.concatenate(row_doc)
        order = np.argsort(row_doc, kind="stable")
        offsets = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(np.bincount(row_doc, minlength=len(docs)), out=offsets[1:])
        return rows[order], offsets, int(lens.sum())

    def _batch(self, bags, docs):
        """The EmbeddingBag inputs (flat ids, bag offsets) of some documents."""
        np, torch = self.np, self.torch
        rows, offsets = bags
        starts, lens = offsets[docs], offsets[docs + 1] - offsets[docs]
        bag_off = np.zeros(len(docs), dtype=np.int64)
        np.cumsum(lens[:-1], out=bag_off[1:])
        flat = np.repeat(starts - bag_off, lens) + np.arange(lens.sum())
        return torch.from_numpy(rows[flat]), torch.from_numpy(bag_off)

    # --- System API
    def train(self, spec):
        np, torch = self.np, self.torch
        nn, F = torch.nn, torch.nn.functional
        p = self.params = {**self.defaults, **spec["params"]}
        torch.set_num_threads(spec["threads"])
        torch.manual_seed(spec["seed"])
        rng = np.random.default_rng(spec["seed"])

        t0 = time.perf_counter()
        gold, docs = read_corpus(spec["train"])
        t1 = time.perf_counter()
        self.vocab, self.label_ids = {}, {}
        for labels in gold:
            for lab in labels:
                self.label_ids.setdefault(lab, len(self.label_ids))
        rows, offsets, tokens = self._encode(docs, grow=True)
        n_docs, n_labels = len(docs), len(self.label_ids)
        multi = any(len(g) > 1 for g in gold)
        if p["loss"] == "softmax" and not multi:
            target = torch.tensor([self.label_ids[g[0]] for g in gold])
        else:
            target = torch.zeros(n_docs, n_labels)
            for i, labels in enumerate(gold):
                target[i, [self.label_ids[lab] for lab in labels]] = 1.0
            if p["loss"] == "softmax":  # several labels: a uniform target distribution
                target /= target.sum(1, keepdim=True)
        loss_fn = {"softmax": F.cross_entropy, "ova": F.binary_cross_entropy_with_logits}[p["loss"]]
        t2 = time.perf_counter()

        n_rows = self.nwords + (p["bucket"] if p["word_ngrams"] > 1 else 0)
        dim, batch = p["dim"], p["batch"]
        model = nn.ModuleDict({"emb": nn.EmbeddingBag(n_rows, dim, mode="mean", sparse=True),
                               "out": nn.Linear(dim, n_labels, bias=False)})
        nn.init.uniform_(model["emb"].weight, -1.0 / dim, 1.0 / dim)
        nn.init.zeros_(model["out"].weight)
        lr = p["lr"] * (batch if p["lr_scale"] == "batch" else 1)
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        total = math.ceil(n_docs / batch) * p["epoch"]
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 - step / total)
        bags = (rows, offsets)
        for _ in range(p["epoch"]):
            perm = rng.permutation(n_docs)
            for s in range(0, n_docs, batch):
                docs_b = perm[s:s + batch]
                logits = model["out"](model["emb"](*self._batch(bags, docs_b)))
                loss = loss_fn(logits, target[docs_b], reduction="sum") / len(docs_b)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        t3 = time.perf_counter()
        return model, {"phases": {"read_s": t1 - t0, "encode_s": t2 - t1, "fit_s": t3 - t2},
                       "epochs": p["epoch"], "tokens": tokens}

    def evaluate(self, model, spec):
        np, torch = self.np, self.torch
        gold, docs = read_corpus(spec["test"])
        rows, offsets, _ = self._encode(docs, grow=False)
        squash = torch.sigmoid if self.params["loss"] == "ova" else lambda x: torch.softmax(x, 1)
        chunks = []
        with torch.no_grad():
            for s in range(0, len(docs), 4096):
                docs_b = np.arange(s, min(s + 4096, len(docs)))
                chunks.append(squash(model["out"](model["emb"](*self._batch((rows, offsets), docs_b)))).numpy())
        probs = np.concatenate(chunks)
        gold_ids = [{self.label_ids[lab] for lab in g if lab in self.label_ids} for g in gold]
        predicted = [set(np.flatnonzero(row >= 0.5).tolist()) for row in probs] if spec["multilabel"] else None
        return ranking_metrics(gold_ids, probs.argmax(1).tolist(), predicted)

    def save(self, model, path):
        self.torch.save(model.state_dict(), path)
        return _path_size(path)


class SklearnSystem(System):
    """A scikit-learn linear classifier on word uni+bigram features (labels stripped).

    ``svc``: TfidfVectorizer(1-2 grams, sublinear tf) + LinearSVC.
    ``sgd``: HashingVectorizer(1-2 grams, 2**21 features, l2-normalised counts) +
    SGDClassifier (hinge). Parameter ``tfidf=True`` inserts a
    TfidfTransformer(sublinear_tf=True); it is off because it lowered accuracy
    on every dataset tried (sst2 0.794 -> 0.655, trec6 0.898 -> 0.850, trec50
    0.818 -> 0.792, sms_spam 0.976 -> 0.970, Reuters micro-F1 0.803 -> 0.751).
    Multi-label data: one-vs-rest over a MultiLabelBinarizer (threads via
    joblib's threading backend).
    """

    package = "scikit-learn"

    def __init__(self, kind: str):
        self.kind = kind
        self.title = {"svc": "sklearn LinearSVC", "sgd": "sklearn SGD"}[kind]

    def load(self):
        self.np = _import("numpy", "numpy")
        sk = _import("sklearn", "scikit-learn")
        for mod in ("feature_extraction.text", "svm", "linear_model", "multiclass", "pipeline",
                    "preprocessing"):
            importlib.import_module(f"sklearn.{mod}")
        self.sk, self.joblib = sk, _import("joblib", "joblib")
        return sk.__version__

    def _make(self, params, threads, seed, multi):
        sk = self.sk
        text = sk.feature_extraction.text
        common = {"ngram_range": (1, 2), "tokenizer": str.split, "token_pattern": None, "lowercase": False}
        if self.kind == "svc":
            vec = text.TfidfVectorizer(sublinear_tf=True, **common)
            clf = sk.svm.LinearSVC(random_state=seed)
        else:
            steps = [text.HashingVectorizer(alternate_sign=False, n_features=2**21, **common)]
            if params.get("tfidf", False):
                steps.append(text.TfidfTransformer(sublinear_tf=True))
            vec = sk.pipeline.make_pipeline(*steps)
            clf = sk.linear_model.SGDClassifier(random_state=seed, n_jobs=None if multi else threads)
        if multi:
            clf = sk.multiclass.OneVsRestClassifier(clf, n_jobs=threads)
        return vec, clf

    def train(self, spec):
        t0 = time.perf_counter()
        gold, docs = read_corpus(spec["train"])
        texts = [" ".join(w) for w in docs]
        t1 = time.perf_counter()
        multi = spec["multilabel"]
        vec, clf = self._make(spec["params"], spec["threads"], spec["seed"], multi)
        X = vec.fit_transform(texts)
        self.mlb = None
        if multi:
            self.mlb = self.sk.preprocessing.MultiLabelBinarizer()
            y = self.mlb.fit_transform(gold)
        else:
            y = [g[0] for g in gold]
        t2 = time.perf_counter()
        with self.joblib.parallel_backend("threading", n_jobs=spec["threads"]):
            clf.fit(X, y)
        t3 = time.perf_counter()
        return (vec, clf), {"phases": {"read_s": t1 - t0, "vectorize_s": t2 - t1, "fit_s": t3 - t2}}

    def evaluate(self, model, spec):
        vec, clf = model
        gold, docs = read_corpus(spec["test"])
        X = vec.transform([" ".join(w) for w in docs])
        if self.mlb is None:
            classes = set(clf.classes_)
            top1 = clf.predict(X).tolist()
            predicted = None
        else:
            classes = set(self.mlb.classes_)
            top1 = self.mlb.classes_[self.np.asarray(clf.decision_function(X)).argmax(1)].tolist()
            predicted = [set(labels) for labels in self.mlb.inverse_transform(clf.predict(X))]
        return ranking_metrics([{lab for lab in g if lab in classes} for g in gold], top1, predicted)

    def save(self, model, path):
        self.joblib.dump(model, path)
        return _path_size(path)


SYSTEMS = {
    "fastembed": FastembedSystem,
    "fasttext": FastTextSystem,
    "torch": TorchSystem,
    "sklearn-svc": lambda: SklearnSystem("svc"),
    "sklearn-sgd": lambda: SklearnSystem("sgd"),
}


def worker_main(spec: dict) -> int:
    """Run one system once and print its measurements as one JSON line.

    Parameters
    ----------
    spec : dict
        ``system`` (a key of :data:`SYSTEMS`), ``train``, ``test``, ``params``,
        ``threads``, ``seed``, ``multilabel``, ``model_path``; with
        ``probe=True`` only the import is done (availability and version).

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
            out = {"version": version, "import_s": time.perf_counter() - t0}
            if spec.get("probe"):
                print(json.dumps(out))
                return 0
            t0 = time.perf_counter()
            model, info = system.train(spec)
            out["train_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            out["metrics"] = system.evaluate(model, spec)
            out["test_s"] = time.perf_counter() - t0
            out["model_bytes"] = system.save(model, spec["model_path"])
            out.update(info)
        out["warnings"] = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught})
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which goes on
        print(f"{type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        traceback.print_exc()
        return 1
    print(json.dumps(out, default=str))
    return 0


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
    """

    label: str
    system: str
    params: dict = field(default_factory=dict)


def plan(config: str, multilabel: bool, args: argparse.Namespace) -> list[Entry]:
    """The rows of one (dataset, configuration) table, in run order.

    Parameters
    ----------
    config : str
        One of :data:`CONFIGS`.
    multilabel : bool
        The dataset has lines with several labels (then ``loss="ova"`` in
        ``paper`` and ``ft-defaults``).
    args : argparse.Namespace
        Command-line options (``torch_batch``, ``torch_lr_scale``, ``compat``).

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
    entries = [Entry("fastembed", "fastembed"), Entry("fastText", "fasttext")]
    if args.compat:
        entries.append(Entry("fastembed preset=fasttext (fastText defaults)", "fastembed",
                             {"preset": "fasttext", **FT_DEFAULTS, "loss": "softmax"}))
    return entries + [Entry("sklearn LinearSVC", "sklearn-svc"), Entry("sklearn SGD", "sklearn-sgd")]


# ============================================================= parent: running

class Runner:
    """Spawns workers and turns their output into run records."""

    def __init__(self, args: argparse.Namespace, scratch: str):
        self.args, self.scratch = args, scratch
        self.env = dict(os.environ, PYTHONHASHSEED="0")
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
            self.env[var] = str(args.threads)
        self._n = 0

    def spawn(self, spec: dict, timeout: float) -> tuple[dict, object]:
        """Run one worker; return its parsed JSON (or {}) and the ChildResult."""
        self._n += 1
        run_dir = Path(self.scratch) / f"run{self._n}"
        run_dir.mkdir()
        spec = {**spec, "model_path": str(run_dir / "model")}
        child = run_child([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
                          self.env, timeout, run_dir)
        lines = [ln for ln in child.stdout.splitlines() if ln.startswith("{")]
        try:
            payload = json.loads(lines[-1]) if lines else {}
        except json.JSONDecodeError:
            payload = {}
        shutil.rmtree(run_dir, ignore_errors=True)
        return payload, child

    def probe(self, system: str) -> dict:
        """Import a system in a worker: ``{"version": ...}`` or ``{"skipped": reason}``."""
        payload, child = self.spawn({"system": system, "probe": True}, timeout=600)
        if child.returncode not in (0, EXIT_SKIPPED) or not payload:
            return {"skipped": f"probe failed: {first_line(child.stderr)}"}
        return payload

    def run(self, entry: Entry, ds, config: str, rep: int, warmup: bool = False) -> dict:
        """Run one entry once; return its record (status ok / failed / skipped)."""
        spec = {"system": entry.system, "train": ds.train, "test": ds.test, "params": entry.params,
                "threads": self.args.threads, "seed": self.args.seed + max(rep, 0),
                "multilabel": ds.multilabel}
        payload, child = self.spawn(spec, self.args.timeout)
        rec = {"cpu_s": child.cpu_s, "other_load": child.other_load, "dataset": ds.name, "config": config, "label": entry.label, "system": entry.system,
               "params": entry.params, "rep": rep, "warmup": warmup, "threads": self.args.threads,
               "process_s": child.wall_s, "peak_rss_mb": child.peak_rss_mb, "returncode": child.returncode}
        if child.timed_out:
            rec.update(status="failed", error=f"timeout after {self.args.timeout:g} s")
        elif child.returncode == EXIT_SKIPPED:
            rec.update(status="skipped", error=payload.get("skipped", ""))
        elif child.returncode != 0 or "metrics" not in payload:
            rec.update(status="failed", error=first_line(child.stderr) or f"exit status {child.returncode}")
        else:
            rec.update(status="ok", **payload)
        return rec


def first_line(text: str) -> str:
    """The first non-empty line of a text (stripped), or ''."""
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


# ============================================================= parent: reporting

METRICS = (("p_at_1", "P@1"), ("r_at_1", "R@1"), ("micro_f1", "micro-F1"))


def _num(v: float, digits: int | None = None) -> str:
    """A figure with sensible precision (3 significant digits unless ``digits``)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if digits is not None:
        return f"{v:.{digits}f}"
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    return f"{v:.{max(0, 2 - mag)}f}"


def _ratio(v, base, precise: bool = False) -> str:
    """`` ×r`` with r = v / base: 3 decimals near 1 (always if ``precise``), else 2 digits."""
    if v is None or base is None or not base or (isinstance(v, float) and math.isnan(v)):
        return ""
    r = v / base
    return f" ×{r:.3f}" if precise or 0.9 < r < 1.1 else f" ×{r:#.2g}" if r < 10 else f" ×{r:.0f}"


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


def render_table(ds, config: str, entries: list[Entry], runs: list[dict]) -> str:
    """One markdown table: the medians of each entry, with ratios to fastText.

    Parameters
    ----------
    ds : bench_common.Dataset
    config : str
    entries : list of Entry
    runs : list of dict
        All run records (filtered here to this dataset and configuration).

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
        return _num(value, digits) + ("" if label == base else _ratio(value, med(base, key), digits is not None))

    metrics = METRICS if ds.multilabel else (("p_at_1", "accuracy"),)
    svc = "sklearn LinearSVC" if med("sklearn LinearSVC", "p_at_1") is not None else None
    cols = [name for _, name in metrics]
    if svc:
        cols.append(f"{metrics[0][1]} / LinearSVC")
    cols += ["train s [min–max]", "import s", "test s", "process s", "Mtok/s/thread", "peak RSS MB",
             "model MB", "train split (s)", "other load"]
    align = "".join("---|" if c.startswith("train split") else "---:|" for c in cols)
    lines = ["| system | " + " | ".join(cols) + " |", "|---|" + align]
    for label, a in aggs.items():
        if not a["ok"]:
            lines.append(f"| {label} | {a['status']}: {a['errors'][0]} |" + " |" * (len(cols) - 1))
            continue
        cells = [cell(label, k, 4) for k, _ in metrics]
        if svc:
            cells.append("–" if label == svc else _ratio(med(label, "p_at_1"), med(svc, "p_at_1"), True).strip() or "–")
        cells.append(f"{cell(label, 'train_s')} [{_num(a['train_s'][1])}–{_num(a['train_s'][2])}]")
        cells += [cell(label, key) for key in ("import_s", "test_s", "process_s", "mtok_s_thread",
                                               "peak_rss_mb", "model_mb")]
        cells.append(", ".join(f"{k.removesuffix('_s')} {_num(v)}" for k, v in a["phases"].items()) or "–")
        cells.append(_num(a["other_load"][2], 2) if a["other_load"] else "–")
        name = label if a["ok"] == a["runs"] else f"{label} ({a['runs'] - a['ok']}/{a['runs']} failed: {a['errors'][0]})"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    title = f"### {ds.name} — {config}"
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
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of %(default)s")
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
            "versions": {}, "notes": [], "datasets": {}}
    runs: list[dict] = []
    tables: list[str] = []

    def save() -> None:
        Path(args.json).write_text(json.dumps({"meta": meta, "runs": runs}, indent=1, default=str))
        Path(args.out).write_text(render_header(meta, runs) + "\n" + "\n".join(tables))

    with tempfile.TemporaryDirectory(prefix="fastembed-bench-") as scratch:
        runner = Runner(args, scratch)
        available = probe_systems(runner, args.systems, meta)
        if "torch" in available:
            meta["notes"].append(f"PyTorch: batch {args.torch_batch}, lr × "
                                 f"{'batch size' if args.torch_lr_scale == 'batch' else '1'}")
        print(render_header(meta, runs), flush=True)
        for name in args.datasets:
            ds = prepare_dataset(args.data_dir, name, scratch)
            meta["datasets"][name] = vars(ds) | {"train": None, "test": None}
            if ds.note:
                meta["notes"].append(f"{name}: {ds.note}")
            for config in args.configs:
                entries = [e for e in plan(config, ds.multilabel, args) if e.system in available]
                if entries:
                    run_block(runner, ds, config, entries, args, runs, save)
                    tables.append(render_table(ds, config, entries, runs))
                    print(tables[-1], flush=True)
                    save()
            for split in (ds.train, ds.test):
                os.unlink(split)
    log(f"wrote {args.out} and {args.json}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(worker_main(json.loads(sys.argv[2])))
    sys.exit(main(sys.argv[1:]))
