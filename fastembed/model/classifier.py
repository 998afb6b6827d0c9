"""The trained classifier: prediction, evaluation, vectors, and its file."""

import numbers
import os

import numpy as np

from fastembed._version import __version__
from fastembed.errors import ArgumentError, ModelFileError
from fastembed.model.file_schema import VERSION, read_model, stats_for_file
from fastembed.model.forward import LOSS_CODES, predict_probs
from fastembed.model.huffman import tree_arrays
from fastembed.model.predictor import Predictor
from fastembed.model.pooling import bag_weights
from fastembed.model_file import save_arrays
from fastembed.text import Dictionary
from fastembed.text.hashing import as_readonly_u8
from fastembed.text.reader import max_line_bytes, read_bytes

_PREDICT_BATCH = 8192  # bags per forward call: bounds the (batch, n_labels) probability block
_POOL_ROWS = 1 << 16  # rows gathered at once for one vector: bounds the block to 64K x dim


class Model:
    """A fastText-style classifier: mean of embedding rows, a dense layer, a softmax.

    The input table is logically ``(nwords + bucket, dim)``. Only the hashed n-gram rows met in
    training are held: row ``nwords + j`` stands for bucket ``bucket_ids[j]``, and the last row,
    always zero, stands for every bucket never seen in training (fastText leaves most of those
    rows at zero too). That keeps memory and the model file proportional to what was learnt.
    The dictionary owns that row map (:mod:`fastembed.text.ngram_rows`): the rows it gives are
    rows of ``input_matrix``.

    Attributes
    ----------
    args : TrainArgs
    dictionary : fastembed.text.Dictionary
    input_matrix : ndarray of float32, shape (nwords + n_used_buckets + 1, dim)
    output_matrix : ndarray of float32, shape (n_labels, dim), or (n_labels - 1, dim) for ``hs``
    bucket_ids : ndarray of int32, shape (n_used_buckets,)
        The dictionary's row map (``dictionary.bucket_ids``).
    idf : ndarray of float32, shape (n_rows,), or None
        Inverse document frequencies of the rows, for ``pooling="tfidf"``.
    train_stats : dict
        Timings and counts of the run that trained the model (empty for a loaded model).
    optimizer_state : tuple or None
        ``(input_state, output_state)``, each (element-wise sums, row-wise sums) of the
        optimizer (``training.optimizer_state``): what continued training needs (None: a model
        read from a version-1 file).
    doc_freq : ndarray of int64, shape (n_rows,), or None
        For ``pooling="tfidf"``: in how many of the ``documents`` training lines each row occurs.
    documents : int
        Lines trained on (all runs), the document count of ``idf``.
    """

    def __init__(self, args, dictionary, input_matrix, output_matrix, idf=None, train_stats=None,
                 optimizer_state=None, doc_freq=None, documents=0):
        self.args = args
        self.idf = idf
        self.optimizer_state = optimizer_state
        self.doc_freq = doc_freq
        self.documents = int(documents)
        self.dictionary = dictionary
        self.input_matrix = input_matrix
        self.output_matrix = output_matrix
        self.train_stats = dict(train_stats or {})
        self._hs = tree_arrays(args.loss, dictionary.label_counts)
        self._predictor = None
        self._predictor_of = None
        self._labels_array = None
        self.quantization = None  # set by quantize() and by loading a quantized file

    @property
    def bucket_ids(self):
        return self.dictionary.bucket_ids

    # -- the fastText-like surface -----------------------------------------------------------

    @property
    def words(self):
        """The vocabulary, most frequent first (``</s>`` included, as in fastText)."""
        return self.dictionary.words

    @property
    def labels(self):
        """The labels, with their prefix, most frequent first."""
        return self.dictionary.labels

    @property
    def dim(self):
        return self.input_matrix.shape[1]

    def get_word_vector(self, word):
        """The mean of the word's rows (its own and its character n-grams); zeros if it has none."""
        _check_single_line(word, "word")
        rows = self.dictionary.word_ids(word)
        if rows.size == 0:
            return np.zeros(self.dim, dtype=np.float32)
        return _pooled_rows(self.input_matrix, rows)

    def get_sentence_vector(self, text):
        """The hidden vector of one line of text: the pooled rows of its words and n-grams."""
        _check_single_line(text, "text")
        return self._ready().hidden(text.encode("utf-8", "surrogateescape"))

    def word_vectors(self):
        """Vectors of every word of the vocabulary: (nwords, dim) float32, as get_word_vector."""
        nwords = self.dictionary.nwords
        if self.args.maxn == 0:
            return self.input_matrix[:nwords].copy()
        return np.stack([self.get_word_vector(w) for w in self.words]) if nwords else (
            np.zeros((0, self.dim), dtype=np.float32))

    def predict(self, text, k=1, threshold=0.0):
        """The ``k`` most probable labels of a line, or of each line of a list.

        Parameters
        ----------
        text : str or list of str
            One line (no newline inside), or a list of lines.
        k : int
            Labels to return per line; -1 for all of them.
        threshold : float
            Only labels with a probability of at least ``threshold`` are returned.

        Returns
        -------
        (labels, probs) for a string: a tuple of label strings and a float array, most probable
        first. A list of such pairs for a list.
        """
        if isinstance(text, str):  # one line: one serial kernel call into this thread's buffers, made once
            if "\n" in text or 4 * len(text) > max_line_bytes():  # else it is one line within the limit
                _check_single_line(text, "text")
            predictor = self._ready()
            if not (type(k) is int and k == 1 and type(threshold) is float and threshold == 0.0):
                k, threshold = self._check_k(k), _check_threshold(threshold)
            line = text.encode("utf-8", "surrogateescape")
            try:  # Predictor.grow(len(line)) inlined: a method call saved per line
                slot = predictor.local.slot  # this thread's own buffers: the kernel releases the GIL
            except AttributeError:
                slot = predictor.grow(len(line))
            if len(line) > slot.line_bytes:
                slot = predictor.grow(len(line))
            count = slot.call(k, threshold, line)
            if count == 1:
                return (self.dictionary.labels[slot.top_ids.item(0)],), slot.top_probs_1.copy()
            labels = self.dictionary.labels
            return (tuple([labels[i] for i in slot.top_ids[:count].tolist()]), slot.top_probs[:count].copy())
        lines = list(text)
        data = _joined_lines(lines)
        if data is None:  # a line that is not one line of str within the limit is named; or all is long
            for i, line in enumerate(lines):
                _check_single_line(line, f"text[{i}]")
            data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
        return self.predict_lines(data, k=k, threshold=threshold)

    def predict_lines(self, source, k=1, threshold=0.0):
        """Predictions for every line of a corpus, one (labels, probs) pair per line.

        ``source`` is anything the text reader takes: a path, bytes, or a list of lines.
        Labels in the lines are ignored; blank lines get a prediction too.
        """
        top_ids, top_probs, counts = self.predict_block(read_bytes(source), k, threshold)
        probs = list(top_probs)
        for i in np.flatnonzero(counts < top_ids.shape[1]).tolist():  # fewer than k reach the threshold
            probs[i] = probs[i][:counts[i]]
        return list(zip(self.label_names(top_ids, counts), probs))

    def predict_block(self, data, k=1, threshold=0.0):
        """Label ids of the top ``k`` of every line of ``data`` (bytes or uint8; lines end with ``\\n``).

        Returns ``(top_ids int32[n_lines, k'], top_probs float64[n_lines, k'], counts int32[n_lines])``
        with ``k' = min(k, n_labels)``: line ``i``'s labels are ``top_ids[i, :counts[i]]``, most
        probable first. Blocks worth it (:func:`~fastembed.model.line_predict.worth_threads`) use
        every thread.
        """
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = np.frombuffer(data, dtype=np.uint8)
        return self._ready().block(as_readonly_u8(data), self._check_k(k), _check_threshold(threshold))

    def label_names(self, top_ids, counts):
        """Label names of :meth:`predict_block`'s output: a tuple per line, ``counts[i]`` long."""
        if self._labels_array is None:
            self._labels_array = np.array(self.dictionary.labels, dtype=object)
        names = list(map(tuple, self._labels_array[top_ids].tolist()))
        for i in np.flatnonzero(counts < top_ids.shape[1]).tolist():
            names[i] = names[i][:counts[i]]
        return names

    def test(self, path, k=1, threshold=0.0):
        """Precision and recall at ``k`` on a labelled corpus, as fastText's ``test``.

        Returns
        -------
        (n_examples, precision_at_k, recall_at_k)
            Lines without a known label are not counted.
        """
        n, correct, n_pred, n_gold, _ = self._evaluate(path, k, threshold)
        return n, float(correct.sum() / max(n_pred.sum(), 1)), float(correct.sum() / max(n_gold.sum(), 1))

    def test_label(self, path, k=1, threshold=0.0):
        """Per-label precision, recall and F1 at ``k``: ``{label: {"precision", "recall", "f1score"}}``."""
        _, correct, n_pred, n_gold, _ = self._evaluate(path, k, threshold)
        out = {}
        for i, label in enumerate(self.labels):
            p = correct[i] / n_pred[i] if n_pred[i] else float("nan")
            r = correct[i] / n_gold[i] if n_gold[i] else float("nan")
            f1 = 2 * p * r / (p + r) if n_pred[i] and n_gold[i] and p + r > 0 else float("nan")
            out[label] = {"precision": float(p), "recall": float(r), "f1score": float(f1)}
        return out

    def save(self, path):
        """Write the model to ``path`` atomically (a temporary file, then a rename)."""
        save_arrays(path, *self.file_contents(), version=VERSION)

    @property
    def continuable(self):
        """Whether the model holds what continued training needs (see ``init_model``)."""
        return self.optimizer_state is not None and (self.args.pooling != "tfidf"
                                                     or self.doc_freq is not None)

    def file_contents(self, training=None):
        """``(arrays, meta)`` of the model file; ``training``: a checkpoint's state (JSON-able)."""
        from fastembed.model.quantized import encode

        dictionary = self.dictionary.to_arrays()
        codes, quantization = encode(self)
        arrays = {
            "input_matrix": self.input_matrix,
            "output_matrix": self.output_matrix,
            "bucket_ids": dictionary.pop("bucket_ids"),  # the dictionary's row map, at the top level
        }
        for name in ("input", "output"):  # a quantized matrix is stored as its codes
            if f"{name}_codes" in codes:
                del arrays[f"{name}_matrix"]
        arrays.update(codes)
        if self.idf is not None:
            arrays["idf"] = self.idf
        arrays.update({f"dict.{name}": a for name, a in dictionary.items()})
        if self.continuable:
            (input_sum, input_row_sum), (output_sum, output_row_sum) = self.optimizer_state
            if self.args.optimizer == "adagrad":
                arrays.update({"optim.input_sum": input_sum, "optim.output_sum": output_sum})
            elif self.args.optimizer == "rowwise-adagrad":
                arrays.update({"optim.input_row_sum": input_row_sum,
                               "optim.output_row_sum": output_row_sum})
            if self.doc_freq is not None:
                arrays["doc_freq"] = self.doc_freq
        meta = {
            "fastembed_version": __version__,
            "args": self.args.to_dict(),
            "dictionary": self.dictionary.config(),
            "train_stats": stats_for_file(self.train_stats),
            "documents": self.documents,
            "continuable": self.continuable,
            "training": training,
        }
        if quantization is not None:
            meta["quantization"] = quantization
        return arrays, meta

    def save_fasttext(self, path):
        """Write the model as a fastText ``.bin`` that fastText's ``load_model`` reads and predicts
        with as fastembed does. Only a model fastText can represent: mean pooling, softmax, ova or
        hs, the ``__label__`` prefix; :class:`ArgumentError` says why otherwise."""
        from fastembed.fasttext.model import to_fasttext
        from fastembed.fasttext.writing import write_fasttext

        write_fasttext(path, to_fasttext(self))

    def quantize(self, **settings):
        """A compressed copy: pruned rows, product-quantized; saved and loaded as any model
        (see :func:`fastembed.model.quantized.quantize_model` for the settings)."""
        from fastembed.model.quantized import quantize_model

        return quantize_model(self, **settings)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`; :class:`ModelFileError` on a bad file.

        The file is untrusted input: every metadata field and array is checked
        (:mod:`fastembed.model.file_schema`) before any of it is used.
        """
        return cls.from_file_arrays(*read_model(path), path)

    @classmethod
    def from_file_arrays(cls, arrays, dims, path):
        """The model of :func:`~fastembed.model.file_schema.read_model`'s checked output."""
        from fastembed.model.quantized import decode

        input_matrix, output_matrix, quantization = decode(arrays, dims)
        dict_arrays = {name[5:]: a for name, a in arrays.items() if name.startswith("dict.")}
        dict_arrays["bucket_ids"] = arrays["bucket_ids"]  # the row map: the dictionary holds it
        try:
            dictionary = Dictionary.from_arrays(dict_arrays, dims.config)
        except ValueError as exc:  # the schema checks all of it: this is a defect of the schema
            raise ModelFileError(f"{os.fspath(path)}: inconsistent model file ({exc})") from None
        state = None
        if dims.continuable:  # never with quantization (the schema refuses both)
            def sums(table, name):
                n, dim = table.shape
                return (arrays.get(f"optim.{name}_sum", np.zeros((0, dim), np.float32)),
                        arrays.get(f"optim.{name}_row_sum", np.zeros(0, np.float32)))
            state = (sums(input_matrix, "input"), sums(output_matrix, "output"))
        model = cls(dims.args, dictionary, input_matrix, output_matrix, idf=arrays.get("idf"),
                    optimizer_state=state, doc_freq=arrays.get("doc_freq"), documents=dims.documents)
        model.quantization = quantization
        model.train_stats = dims.train_stats
        return model

    # -- internals ---------------------------------------------------------------------------

    def _check_k(self, k):
        if type(k) is int and 0 < k <= self.dictionary.nlabels:  # the common case, quickly
            return k
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or (k < 1 and k != -1):
            raise ArgumentError(f"k must be a positive integer or -1 (all labels), got {k!r}")
        return len(self.labels) if k == -1 else min(int(k), len(self.labels))

    def _ready(self):
        """The :class:`Predictor` of the current tables (rebuilt if one was replaced)."""
        made_of = self._predictor_of
        if (made_of is None or made_of[0] is not self.input_matrix or made_of[1] is not self.output_matrix
                or made_of[2] is not self.idf):
            made_of = (self.input_matrix, self.output_matrix, self.idf)
            self._predictor = Predictor(self.dictionary.line_vocab(), *made_of, self._hs, self.args.pooling,
                                        self.args.loss, self.dictionary.nlabels)
            self._predictor_of = made_of
        return self._predictor

    def _encode(self, source, keep_unlabelled=True, threads=0):
        return self.dictionary.encode(source, keep_unlabelled=keep_unlabelled, threads=threads)

    def _weights(self, bags):
        return bag_weights(self.args.pooling, bags.indices, bags.offsets, self.idf)

    def _bag_probabilities(self, bags):
        paths, codes, offsets = self._hs
        loss_kind = LOSS_CODES[self.args.loss]
        weights = self._weights(bags)
        n_labels = len(self.labels)
        n = bags.offsets.size - 1
        for start in range(0, n, _PREDICT_BATCH):
            stop = min(start + _PREDICT_BATCH, n)
            sub_offsets = bags.offsets[start:stop + 1] - bags.offsets[start]
            sub_indices = bags.indices[bags.offsets[start]:bags.offsets[stop]]
            sub_weights = weights[bags.offsets[start]:bags.offsets[stop]] if weights.size else weights
            probs = np.empty((stop - start, n_labels), dtype=np.float32)
            predict_probs(self.input_matrix, self.output_matrix, sub_indices, sub_offsets,
                            sub_weights, loss_kind, paths, codes, offsets, probs)
            yield probs

    def _evaluate(self, source, k, threshold):
        """Counts for precision/recall at k, per label: (n, correct, n_pred, n_gold, n_lines).

        As fastText's ``test``: lines without a known label are left out; a prediction is
        correct when its label is among the line's labels.
        """
        k = self._check_k(k)
        _check_threshold(threshold)
        bags = self._encode(source, keep_unlabelled=False)
        n_labels = len(self.labels)
        lab_idx, lab_off = bags.label_indices, bags.label_offsets
        n_lines = lab_off.size - 1
        has_gold = np.diff(lab_off) > 0
        gold_keys = np.repeat(np.arange(n_lines, dtype=np.int64), np.diff(lab_off)) * n_labels + lab_idx
        pred_lines, pred_cols = [], []
        row0 = 0
        for probs in self._bag_probabilities(bags):
            top, keep = _top_k(probs, k, threshold)
            rows, slots = np.nonzero(keep)
            pred_lines.append(rows + row0)
            pred_cols.append(top[rows, slots])
            row0 += probs.shape[0]
        pred_lines = np.concatenate(pred_lines) if pred_lines else np.zeros(0, np.int64)
        pred_cols = np.concatenate(pred_cols) if pred_cols else np.zeros(0, np.int64)
        counted = has_gold[pred_lines]
        pred_lines, pred_cols = pred_lines[counted], pred_cols[counted]
        hits = np.isin(pred_lines * n_labels + pred_cols, gold_keys)
        correct = np.bincount(pred_cols[hits], minlength=n_labels)
        n_pred = np.bincount(pred_cols, minlength=n_labels)
        n_gold = np.bincount(lab_idx, minlength=n_labels)
        return int(has_gold.sum()), correct, n_pred, n_gold, n_lines


def _top_k(probs, k, threshold):
    """The ``k`` largest entries per row, descending, ties by column: (columns (n, k), kept (n, k) bool).

    ``kept`` marks the entries of at least ``threshold``; they come first in each row. The tie
    rule is :func:`fastembed.model.line_predict.top_k`'s, so that ``test`` counts what ``predict``
    returns: labels that always occur together get equal output rows under "ova" (both start at
    zero and take the same steps), and ``argpartition`` alone split their ties either way.
    """
    n_labels = probs.shape[1]
    probs = np.where(np.isnan(probs), -np.inf, probs)  # as top_k, a NaN is never chosen before a number
    if k < n_labels:
        kth = -np.partition(-probs, k - 1, axis=1)[:, k - 1:k]  # the k-th largest of each row
        above, tied = probs > kth, probs == kth
        room = k - above.sum(axis=1, keepdims=True)  # slots left for the tied, lowest columns first
        chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
        part = np.nonzero(chosen)[1].reshape(probs.shape[0], k)
    else:
        part = np.broadcast_to(np.arange(n_labels), probs.shape)
    vals = np.take_along_axis(probs, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    top = np.take_along_axis(part, order, axis=1)
    keep = np.take_along_axis(vals, order, axis=1) >= threshold
    return top, keep


def _pooled_rows(table, rows, weights=None):
    """``sum_i w_i * table[rows[i]]`` (``w_i = 1 / n`` without weights), as float32.

    Rows are gathered _POOL_ROWS at a time: gathering them all at once took 4.8 GB for the
    vector of one 3-million-character word with character n-grams (dim 100).
    """
    total = np.zeros(table.shape[1], dtype=np.float64)
    for start in range(0, rows.size, _POOL_ROWS):
        block = table[rows[start:start + _POOL_ROWS]]
        if weights is None:
            total += block.sum(axis=0, dtype=np.float64)
        else:
            total += weights[start:start + _POOL_ROWS].astype(np.float64) @ block
    if weights is None:
        total /= rows.size
    return total.astype(np.float32)


def _check_threshold(threshold):
    """``threshold`` as a float, if it is a probability."""
    if type(threshold) is float and 0.0 <= threshold <= 1.0:  # the common case, quickly
        return threshold
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not (
            0.0 <= threshold <= 1.0):  # NaN fails both comparisons
        raise ArgumentError(f"threshold must be a probability between 0 and 1, got {threshold!r}")
    return float(threshold)


def _joined_lines(lines):
    """The lines as one corpus (UTF-8, each ended by ``'\\n'``); None when they must be checked one
    by one (:func:`_check_single_line`): a line not a str or holding a newline, or more bytes in
    all than the line limit.

    Checked on the whole at C speed (a TypeError from the join, a count of newlines, the total
    length): the line-by-line check in Python took 1-2 us a line, as much as predicting a
    short line.
    """
    if not lines:
        return b""
    try:
        joined = "\n".join(lines)
    except TypeError:
        return None
    if joined.count("\n") != len(lines) - 1:
        return None
    data = (joined + "\n").encode("utf-8", "surrogateescape")
    return data if len(data) <= max_line_bytes() else None  # else, the lines one by one


def _check_single_line(text, name):
    """One line of text, no longer than the reader's limit (which bounds encoding memory)."""
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    if "\n" in text:
        raise ValueError(f"{name} holds a newline: predict and vectors take one line at a time")
    limit = max_line_bytes()
    if len(text) > limit or (4 * len(text) > limit
                             and len(text.encode("utf-8", "surrogateescape")) > limit):
        raise ArgumentError(f"{name} is longer than {limit} bytes (raise the limit with "
                            f"fastembed.text.line_limit)")
