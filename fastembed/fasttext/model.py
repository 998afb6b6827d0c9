"""fastText supervised models behind fastembed's :class:`~fastembed.model.Model` surface, and
fastembed models written as fastText files.

:class:`FastTextModel` is a ``Model`` read from a ``.bin``/``.ftz``: the dictionary and the row
map come from the file (a pruned ``.ftz``'s ``pruneidx`` is the row map; a ``.bin`` has a row
for every bucket), and prediction, ``test`` and vectors go through fastText's exact forward
(:mod:`fastembed.fasttext.predict`). :func:`to_fasttext` is the other way: a fastembed model
fastText can represent, as a :class:`~fastembed.fasttext.layout.FastTextFile`.
"""

from __future__ import annotations

import os
import sys
import threading

import numpy as np

from fastembed.errors import ArgumentError, ModelFileError
from fastembed.fasttext.layout import LABEL, WORD, FastTextFile
from fastembed.fasttext.predict import gold_labels, make_net, predict_block, predict_one
from fastembed.fasttext.quantizing import quantize_fasttext
from fastembed.fasttext.reading import read_fasttext
from fastembed.fasttext.writing import write_fasttext
from fastembed.model.classifier import Model, _check_single_line
from fastembed.quantize import NITER
from fastembed.settings import TrainArgs
from fastembed.text import Dictionary
from fastembed.text.hashing import as_readonly_u8
from fastembed.wordvec.vectors import _offsets, _pool

__all__ = ["FastTextModel", "to_fasttext"]

FASTTEXT_LABEL_PREFIX = "__label__"  # not stored in the file: fastText assumes it on load
_FASTTEXT_LOSSES = ("softmax", "ova", "hs")


class _LineSlot:
    """One thread's result arrays for single lines (what
    :class:`~fastembed.model.predictor.LineSlot` gives); fastText's kernels size their other
    buffers per call, so ``line_bytes`` is unbounded."""

    __slots__ = ("call", "top_ids", "top_probs", "top_probs_1", "hidden")
    line_bytes = sys.maxsize

    def __init__(self, vocab, net):
        n = max(net.n_labels, 1)
        self.top_ids = np.empty(n, np.int32)
        self.top_probs = np.empty(n, np.float64)
        self.top_probs_1 = self.top_probs[:1]
        self.hidden = np.empty(net.inp.shape[1], np.float32)
        top_ids, top_probs, hidden = self.top_ids, self.top_probs, self.hidden

        def call(k, threshold, line):
            return predict_one(np.frombuffer(line, np.uint8), vocab, net, k, threshold, top_ids, top_probs, hidden)

        self.call = call


class _Predictor:
    """What :class:`Model` asks of its predictor (that of
    :class:`~fastembed.model.predictor.Predictor`), with fastText's kernels: a
    :class:`_LineSlot` per thread, since the kernels release the GIL."""

    def __init__(self, vocab, net):
        self.vocab, self.net = vocab, net
        self.local = threading.local()

    def slot(self) -> _LineSlot:
        return self.grow(0)

    def grow(self, n_bytes) -> _LineSlot:
        slot = getattr(self.local, "slot", None)
        if slot is None:
            slot = self.local.slot = _LineSlot(self.vocab, self.net)
        return slot

    def hidden(self, line: bytes) -> np.ndarray:
        slot = self.slot()
        slot.call(0, 0.0, line)
        return slot.hidden.copy()

    def block(self, data, k: int, threshold: float):
        return predict_block(data, self.vocab, self.net, k, threshold)


class FastTextModel(Model):
    """A fastText supervised model (``.bin`` or ``.ftz``), predicting exactly as fastText does.

    ``input_matrix`` is the file's input matrix (rebuilt from its codes if quantized), without
    fastembed's extra zero row: a bucket without a row is left out of a line's bag, as fastText
    does. ``output_matrix`` has a row per label (fastText's layout, also for hs). The file's
    label prefix is ``__label__`` (fastText does not store it).
    """

    def __init__(self, args, dictionary, input_matrix, output_matrix, source: FastTextFile):
        super().__init__(args, dictionary, input_matrix, output_matrix)
        self.source = source
        self._hs = None  # fastembed's tree arrays are not used: predict.hs_tree is fastText's
        # fastText's rows: no map for a .bin (row nwords + bucket), pruneidx for a .ftz
        vocab = dictionary.line_vocab()
        if source.pruneidx_size < 0:
            vocab = vocab._replace(row_keys=np.zeros(0, np.uint64), unseen_row=input_matrix.shape[0])
        self._vocab = vocab

    @classmethod
    def load(cls, path):
        """Read a fastText supervised ``.bin``/``.ftz``; :class:`ModelFileError` otherwise."""
        ft = read_fasttext(path)
        if not ft.supervised:
            raise ModelFileError(f"{os.fspath(path)}: a fastText {ft.args['model']} model (word vectors), "
                                 f"not a classifier; load it with fastembed.load_model for its word vectors")
        return cls.from_file(ft, path)

    @classmethod
    def from_file(cls, ft: FastTextFile, path="<fastText model>"):
        a = ft.args
        if a["loss"] not in _FASTTEXT_LOSSES:
            raise ModelFileError(f"{os.fspath(path)}: a supervised model with loss {a['loss']!r} is not "
                                 f"supported (softmax, ova and hs are)")
        if ft.nlabels == 0:
            raise ModelFileError(f"{os.fspath(path)}: a classifier without labels")
        uses_buckets = a["bucket"] > 0 and (a["maxn"] > 0 or a["wordNgrams"] > 1)
        try:
            args = TrainArgs.from_preset(
                "fasttext", dim=a["dim"], epoch=a["epoch"], word_ngrams=max(a["wordNgrams"], 1),
                bucket=a["bucket"], min_count=max(a["minCount"], 1), minn=a["minn"], maxn=a["maxn"],
                loss=a["loss"], pooling="mean", label_prefix=FASTTEXT_LABEL_PREFIX)
            if ft.pruneidx_size < 0:
                bucket_ids = np.zeros(0, np.int32)  # every bucket has its row: no map is needed
            else:
                pairs = ft.pruneidx[np.argsort(ft.pruneidx[:, 1], kind="stable")]
                bucket_ids = pairs[:, 0].astype(np.int32) if uses_buckets else np.zeros(0, np.int32)
            dictionary = Dictionary(
                word_pool=_pool(ft.words), word_offsets=_offsets(ft.words), word_counts=ft.word_counts,
                label_pool=_pool(ft.labels), label_offsets=_offsets(ft.labels), label_counts=ft.label_counts,
                ntokens=ft.ntokens, label_prefix=FASTTEXT_LABEL_PREFIX, word_ngrams=max(a["wordNgrams"], 1),
                bucket=a["bucket"], minn=a["minn"], maxn=a["maxn"], min_count=max(a["minCount"], 1),
                bucket_ids=bucket_ids)
        except ValueError as exc:  # ArgumentError is one
            raise ModelFileError(f"{os.fspath(path)}: unusable fastText model ({exc})") from None
        if a["loss"] == "hs" and (np.diff(ft.label_counts) > 0).any():
            raise ModelFileError(f"{os.fspath(path)}: hs model whose label counts are not in descending order")
        inp = ft.dense_input()
        if ft.pruneidx_size < 0 and not uses_buckets:
            inp = inp[:ft.nwords]  # rows nothing reads
        return cls(args, dictionary, np.ascontiguousarray(inp), np.ascontiguousarray(ft.dense_output()), ft)

    # -- what differs from Model -------------------------------------------------------------

    @property
    def bucket_ids(self):
        d = self.dictionary
        if self.source.pruneidx_size < 0 and self.input_matrix.shape[0] > d.nwords:
            return np.arange(d.bucket, dtype=np.int32)
        return d.bucket_ids

    def _ready(self):
        if self._predictor is None:
            self._predictor = _Predictor(self._vocab, make_net(self.input_matrix, self.output_matrix,
                                                               self.args.loss, self.dictionary.label_counts))
        return self._predictor

    def get_word_vector(self, word):
        """fastText's ``get_word_vector``: the mean of the word's rows (its own if known, and its
        character n-grams that have a row); zeros if none."""
        _check_single_line(word, "word")
        if not word or any(c.isspace() for c in word):
            return np.zeros(self.dim, dtype=np.float32)
        data = word.encode("utf-8", "surrogateescape")
        vocab = self._vocab._replace(word_ngrams=1, eos_id=-1)
        hidden = np.empty(self.dim, np.float32)
        p = self._ready()
        slot = p.slot()  # k == 0 writes only ``hidden``, this call's own array
        predict_one(np.frombuffer(data, np.uint8), vocab, p.net, 0, 0.0, slot.top_ids, slot.top_probs, hidden)
        return hidden

    def word_vectors(self):
        return np.stack([self.get_word_vector(w) for w in self.words]) if self.words else (
            np.zeros((0, self.dim), dtype=np.float32))

    def save(self, path):
        """A fastText model is saved as a fastText file (:meth:`save_fasttext`)."""
        self.save_fasttext(path)

    def save_fasttext(self, path):
        write_fasttext(path, self.source)

    def quantize(self, *, dsub=2, qnorm=False, cutoff="auto", qout=False, seed=0, niter=NITER):
        """A compressed copy, as fastText's ``quantize`` (without ``retrain``) makes it: a
        fastText model again, saved as a ``.ftz`` that fastText reads too
        (:func:`~fastembed.fasttext.quantizing.quantize_fasttext`; the settings are
        :meth:`Model.quantize`'s)."""
        small = type(self).from_file(quantize_fasttext(self.source, dsub=dsub, qnorm=qnorm, cutoff=cutoff,
                                                       qout=qout, seed=seed, niter=niter))
        small.train_stats = {"quantized_rows": small.source.input_matrix.rows,
                             "original_rows": int(self.input_matrix.shape[0])}  # the rows a line can read
        return small

    def _evaluate(self, source, k, threshold):
        """fastText's ``test``: lines with a known label, their predictions at k."""
        from fastembed.model.classifier import _check_threshold
        from fastembed.text.reader import read_bytes

        k = self._check_k(k)
        data = as_readonly_u8(np.frombuffer(read_bytes(source), np.uint8))
        top_ids, _, counts = self._ready().block(data, k, _check_threshold(threshold))
        offsets, gold = gold_labels(data, self._vocab)
        n_labels = self.dictionary.nlabels
        n_gold_line = np.diff(offsets)
        has_gold = n_gold_line > 0
        lines = np.repeat(np.arange(counts.size), counts)
        cols = top_ids[np.arange(top_ids.shape[1])[None, :] < counts[:, None]]
        keep = has_gold[lines]
        lines, cols = lines[keep], cols[keep]
        gold_keys = np.repeat(np.arange(counts.size, dtype=np.int64), n_gold_line) * n_labels + gold
        hits = np.isin(lines.astype(np.int64) * n_labels + cols, gold_keys)
        correct = np.bincount(cols[hits], minlength=n_labels)
        n_pred = np.bincount(cols, minlength=n_labels)
        n_gold = np.bincount(gold, minlength=n_labels)
        return int(has_gold.sum()), correct, n_pred, n_gold, counts.size


def to_fasttext(model) -> FastTextFile:
    """``model`` as a fastText supervised file, or :class:`ArgumentError` saying why it cannot be one.

    fastText's model is the mean of the rows (``pooling="mean"``), softmax, ova or hs, labels
    with the prefix ``__label__``, and a row for every bucket of ``nwords + bucket``: buckets
    fastembed holds no row for (never seen, or dropped by ``min_count_ngram``) read its zero
    row, so they get zero rows here, which fastText averages in as fastembed does.
    """
    if isinstance(model, FastTextModel):
        return model.source
    a = model.args
    if a.pooling != "mean":
        raise ArgumentError(f"cannot write a fastText model: pooling={a.pooling!r} has no fastText equivalent "
                            f"(fastText averages the rows: train with pooling='mean', or --preset fasttext)")
    if a.loss not in _FASTTEXT_LOSSES:
        raise ArgumentError(f"cannot write a fastText model: loss {a.loss!r}")
    d = model.dictionary
    if d.label_prefix != FASTTEXT_LABEL_PREFIX:
        raise ArgumentError(f"cannot write a fastText model: label prefix {d.label_prefix!r} (fastText reads "
                            f"labels as {FASTTEXT_LABEL_PREFIX!r} and does not store the prefix)")
    uses_buckets = d.bucket > 0 and (d.maxn > 0 or d.word_ngrams > 1)
    bucket = d.bucket if uses_buckets else 0
    dim = model.dim
    inp = np.zeros((d.nwords + bucket, dim), dtype=np.float32)
    inp[:d.nwords] = model.input_matrix[:d.nwords]
    if uses_buckets and model.bucket_ids.size:
        inp[d.nwords + model.bucket_ids.astype(np.int64)] = model.input_matrix[d.nwords:d.unseen_row]
    out = model.output_matrix
    if a.loss == "hs":  # fastText's output matrix has a row per label; hs reads the first n - 1
        out = np.concatenate([out, np.zeros((1, dim), np.float32)])
    words, labels = d.word_bytes, d.label_bytes
    loss = {"softmax": "softmax", "ova": "ova", "hs": "hs"}[a.loss]
    args = dict(dim=dim, ws=5, epoch=a.epoch, minCount=a.min_count, neg=5, wordNgrams=a.word_ngrams,
                loss=loss, model="sup", bucket=bucket, minn=d.minn, maxn=d.maxn, lrUpdateRate=100, t=1e-4)
    return FastTextFile(args, words + labels, np.concatenate([d.word_counts, d.label_counts]).astype(np.int64),
                        np.array([WORD] * len(words) + [LABEL] * len(labels), dtype=np.int8), d.ntokens,
                        np.ascontiguousarray(inp), np.ascontiguousarray(out, dtype=np.float32))

