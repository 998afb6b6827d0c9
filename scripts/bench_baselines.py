"""The baselines of scripts/benchmark.py: the same model in PyTorch, and scikit-learn linear classifiers.

Each is a :class:`bench_systems.System`, driven by ``benchmark.py --worker``.
"""

from __future__ import annotations

import importlib
import math
import time
import zlib
from typing import ClassVar

from bench_common import EOS, ranking_metrics, read_corpus
from bench_systems import System, _import, path_size


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
        return path_size(path)


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
        return path_size(path)

