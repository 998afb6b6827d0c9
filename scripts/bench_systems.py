"""The systems under test that speak fastText's format: fastembed, fastText, Vowpal Wabbit.

Each is a :class:`System`, driven in a worker process by ``benchmark.py --worker``
(see :func:`benchmark.worker_main`); the PyTorch and scikit-learn baselines are in
``bench_baselines.py``. A system imports its library only in :meth:`System.load`,
so that the worker can time the import.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import time
from pathlib import Path

from bench_common import micro_metrics, micro_prf, parse_line, ranking_metrics, read_corpus


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

    def prepare(self, spec: dict) -> bool:
        """Convert the input files, if the system needs another format (timed as ``convert_s``).

        Returns
        -------
        bool
            True if there was something to convert (False: no ``convert_s``).
        """
        return False

    # --- the latency section (bench_latency.py); only fastembed and fastText have these

    def load_model(self, path: str):
        """Load a model written by :meth:`save`."""
        raise NotImplementedError

    def predictor(self, model):
        """The call whose latency is measured: one line (a str without newline) to its top label."""
        raise NotImplementedError

    def predict_batch(self, model, lines: list[str]) -> tuple[float, list[str]]:
        """Predict all ``lines`` in one call.

        Returns
        -------
        seconds : float
            The wall time of that call alone.
        top : list of str
            The most probable label of each line.
        """
        raise NotImplementedError


def _import(name: str, what: str):
    """Import a module by name, turning an ImportError into :class:`Unavailable`."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise Unavailable(f"{what} not importable ({exc})") from None


def path_size(path: str) -> int:
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
        self.fe = fe
        self.location = str(Path(fe.__file__).parent)
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
        return path_size(path)

    def load_model(self, path):
        return self.fe.load_model(path)

    def predictor(self, model):
        return lambda line: model.predict(line, k=1)

    def predict_batch(self, model, lines):
        t0 = time.perf_counter()
        preds = model.predict(lines, k=1)
        seconds = time.perf_counter() - t0
        return seconds, [labels[0] if labels else None for labels, _ in preds]


class FastTextSystem(System):
    """The official fastText Python binding.

    Prediction goes through the compiled ``model.f`` (``model.predict`` breaks
    under NumPy 2); like the binding's own ``predict``, each line is passed
    with a ``"\\n"`` appended.
    """

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
        return path_size(path)

    def load_model(self, path):
        return self.ft.load_model(path)

    def predictor(self, model):
        predict = model.f.predict
        return lambda line: predict(line + "\n", 1, 0.0, "strict")

    def predict_batch(self, model, lines):
        t0 = time.perf_counter()
        labels, _ = model.f.multilinePredict([line + "\n" for line in lines], 1, 0.0, "strict")
        seconds = time.perf_counter() - t0
        return seconds, [lab[0] if lab else None for lab in labels]



VW_ESCAPES = str.maketrans({"|": "\u00a6", ":": "\u02d0"})
"""VW's namespace (``|``) and feature-value (``:``) separators, replaced by look-alikes in words."""


def write_vw(src: str, dst: Path, label_ids: dict[str, int], grow: bool) -> list[set[int]]:
    """Convert a fastText-format file to VW's multiclass text format.

    Parameters
    ----------
    src : str
        The fastText-format file.
    dst : Path
        The VW file to write: ``INDEX | word word ...`` (training) or
        ``| word word ...`` (prediction), one example a line.
    label_ids : dict
        Label -> index 1..K; grown in order of first appearance when ``grow``.
    grow : bool
        True for the training file: add new labels and write each line's first
        label (VW's ``--oaa`` takes one label per example).

    Returns
    -------
    list of set of int
        The indices of each line's known labels (to score predictions with).
    """
    gold = []
    with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as out:
        for line in f:
            labels, words = parse_line(line)
            if grow:
                for lab in labels:
                    label_ids.setdefault(lab, len(label_ids) + 1)
            ids = [label_ids[lab] for lab in labels if lab in label_ids]
            gold.append(set(ids))
            head = str(ids[0]) if grow and ids else ""
            out.write(f"{head} | {' '.join(words).translate(VW_ESCAPES)}\n")
    return gold


class VowpalWabbitSystem(System):
    """Vowpal Wabbit through its Python package: one-against-all logistic regression on word uni+bigrams.

    :meth:`prepare` converts both files with :func:`write_vw` (labels as
    indices 1..K, ``|`` and ``:`` in words replaced). Training runs
    ``--oaa K`` plus ``params["options"]`` on the converted file with a cache
    file (the first pass parses the text, the others read the cache) and ends
    when the model file (``-f``) is written. The test file is predicted by a
    second workspace that loads that model (``-i model -t -d test -p preds``).
    VW's learner is one thread (it parses on another), whatever ``threads`` is.
    Multi-label data: each line trains on its first label; P@1 and R@1 count
    all of its labels; there is no thresholded prediction (no micro-F1).
    """

    title, package = "Vowpal Wabbit", "vowpalwabbit"

    def load(self):
        self.vw = _import("vowpalwabbit", "vowpalwabbit")
        if not hasattr(self.vw, "Workspace"):
            raise Unavailable("vowpalwabbit has no Workspace (version 9 or later needed)")
        return importlib.metadata.version("vowpalwabbit")

    def prepare(self, spec):
        self.work = Path(spec["model_path"]).parent  # the worker's own, empty directory
        self.label_ids: dict[str, int] = {}
        self.train_file, self.test_file = self.work / "train.vw", self.work / "test.vw"
        write_vw(spec["train"], self.train_file, self.label_ids, grow=True)
        self.gold = write_vw(spec["test"], self.test_file, self.label_ids, grow=False)
        return True

    def train(self, spec):
        model_file = self.work / "model.vw"
        ws = self.vw.Workspace(f"--oaa {len(self.label_ids)} {spec['params']['options']} "
                               f"--cache_file {self.work / 'train.cache'} -d {self.train_file} "
                               f"-f {model_file} --quiet")
        ws.finish()  # writes the model file
        return model_file, {}

    def evaluate(self, model, spec):
        preds = self.work / "preds.txt"
        self.vw.Workspace(f"-i {model} -t -d {self.test_file} -p {preds} --quiet").finish()
        with open(preds) as f:
            top1 = [int(float(line.split()[0])) for line in f]
        return ranking_metrics(self.gold, top1)

    def save(self, model, path):
        return path_size(model)  # written by training (-f)
