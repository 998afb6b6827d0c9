"""The trained classifier: prediction, evaluation, vectors, and its file."""

import numbers
import os

import numpy as np

from fastembed._version import __version__
from fastembed.errors import ArgumentError, ModelFileError
from fastembed.model.file_schema import read_model
from fastembed.model.forward import LOSS_CODES, predict_probs
from fastembed.model_file import save_arrays
from fastembed.model.huffman import tree_arrays
from fastembed.model.pooling import bag_weights
from fastembed.text import Dictionary
from fastembed.text.reader import max_line_bytes

_PREDICT_BATCH = 8192  # bags per forward call: bounds the (batch, n_labels) probability block
_POOL_ROWS = 1 << 16  # rows gathered at once for one vector: bounds the block to 64K x dim


class Model:
    """A fastText-style classifier: mean of embedding rows, a dense layer, a softmax.

    The input table is logically ``(nwords + bucket, dim)``. Only the hashed n-gram rows met in
    training are held: row ``nwords + j`` stands for bucket ``bucket_ids[j]``, and the last row,
    always zero, stands for every bucket never seen in training (fastText leaves most of those
    rows at zero too). That keeps memory and the model file proportional to what was learnt.

    Attributes
    ----------
    args : TrainArgs
    dictionary : fastembed.text.Dictionary
    input_matrix : ndarray of float32, shape (nwords + n_used_buckets + 1, dim)
    output_matrix : ndarray of float32, shape (n_labels, dim), or (n_labels - 1, dim) for ``hs``
    bucket_ids : ndarray of int32, shape (n_used_buckets,)
    idf : ndarray of float32, shape (n_rows,), or None
        Inverse document frequencies of the rows, for ``pooling="tfidf"``.
    train_stats : dict
        Timings and counts of the run that trained the model (empty for a loaded model).
    """

    def __init__(self, args, dictionary, input_matrix, output_matrix, bucket_ids, idf=None,
                 train_stats=None):
        self.args = args
        self.idf = idf
        self.dictionary = dictionary
        self.input_matrix = input_matrix
        self.output_matrix = output_matrix
        self.bucket_ids = bucket_ids
        self.train_stats = dict(train_stats or {})
        self._bucket_map = None
        self._hs = tree_arrays(args.loss, dictionary.label_counts)

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
        rows = self._compact(np.asarray(self.dictionary.word_ids(word), dtype=np.int32))
        if rows.size == 0:
            return np.zeros(self.dim, dtype=np.float32)
        return _pooled_rows(self.input_matrix, rows)

    def get_sentence_vector(self, text):
        """The hidden vector of one line of text: the pooled rows of its words and n-grams."""
        _check_single_line(text, "text")
        bags = self._encode([text])
        weights = self._weights(bags)
        if weights.size == 0:  # mean pooling
            if bags.indices.size == 0:
                return np.zeros(self.dim, dtype=np.float32)
            return _pooled_rows(self.input_matrix, bags.indices)
        return _pooled_rows(self.input_matrix, bags.indices, weights)

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
        single = isinstance(text, str)
        lines = [text] if single else list(text)
        for i, line in enumerate(lines):
            _check_single_line(line, "text" if single else f"text[{i}]")
        results = self.predict_lines(lines, k=k, threshold=threshold)
        return results[0] if single else results

    def predict_lines(self, source, k=1, threshold=0.0):
        """Predictions for every line of a corpus, one (labels, probs) pair per line.

        ``source`` is anything the text reader takes: a path, bytes, or a list of lines.
        Labels in the lines are ignored; blank lines get a prediction too.
        """
        k = self._check_k(k)
        _check_threshold(threshold)
        labels = self.labels
        results = []
        for probs in self._probabilities(source):
            top, keep = _top_k(probs, k, threshold)
            for row, cols, mask in zip(probs, top, keep):
                cols = cols[mask]
                results.append((tuple(labels[c] for c in cols), row[cols].astype(np.float64)))
        return results

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
        arrays = {
            "input_matrix": self.input_matrix,
            "output_matrix": self.output_matrix,
            "bucket_ids": self.bucket_ids,
        }
        if self.idf is not None:
            arrays["idf"] = self.idf
        arrays.update({f"dict.{name}": a for name, a in self.dictionary.to_arrays().items()})
        meta = {
            "fastembed_version": __version__,
            "args": self.args.to_dict(),
            "dictionary": self.dictionary.config(),
            "train_stats": {k: v for k, v in self.train_stats.items()
                            if isinstance(v, (int, float, str))},
        }
        save_arrays(path, arrays, meta)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`; :class:`ModelFileError` on a bad file.

        The file is untrusted input: every metadata field and array is checked
        (:mod:`fastembed.model.file_schema`) before any of it is used.
        """
        arrays, dims = read_model(path)
        dict_arrays = {name[5:]: a for name, a in arrays.items() if name.startswith("dict.")}
        try:
            dictionary = Dictionary.from_arrays(dict_arrays, dims.config)
        except ValueError as exc:  # the schema checks all of it: this is a defect of the schema
            raise ModelFileError(f"{os.fspath(path)}: inconsistent model file ({exc})") from None
        return cls(dims.args, dictionary, arrays["input_matrix"], arrays["output_matrix"],
                   arrays["bucket_ids"], idf=arrays.get("idf"))

    # -- internals ---------------------------------------------------------------------------

    def _check_k(self, k):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or (k < 1 and k != -1):
            raise ArgumentError(f"k must be a positive integer or -1 (all labels), got {k!r}")
        return len(self.labels) if k == -1 else min(int(k), len(self.labels))

    def _compact(self, rows):
        """Map rows of the full (nwords + bucket) space to rows of ``input_matrix``."""
        nwords = self.dictionary.nwords
        hashed = rows >= nwords
        if not hashed.any():
            return rows
        if self._bucket_map is None:
            unseen = self.input_matrix.shape[0] - 1
            bucket_map = np.full(max(self.dictionary.bucket, 1), unseen - nwords, dtype=np.int32)
            bucket_map[self.bucket_ids] = np.arange(self.bucket_ids.size, dtype=np.int32)
            self._bucket_map = bucket_map
        out = rows.copy()
        out[hashed] = nwords + self._bucket_map[rows[hashed] - nwords]
        return out

    def _encode(self, source, keep_unlabelled=True):
        bags = self.dictionary.encode(source, keep_unlabelled=keep_unlabelled)
        bags.indices = self._compact(bags.indices)
        return bags

    def _weights(self, bags):
        return bag_weights(self.args.pooling, bags.indices, bags.offsets, self.idf)

    def _probabilities(self, source):
        """Yield (n, n_labels) float32 probability blocks for the lines of ``source``."""
        bags = self._encode(source)
        yield from self._bag_probabilities(bags)

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
    """The ``k`` largest entries per row, descending: (columns (n, k), kept (n, k) bool).

    ``kept`` marks the entries of at least ``threshold``; they come first in each row.
    """
    n_labels = probs.shape[1]
    if k < n_labels:
        part = np.argpartition(-probs, k - 1, axis=1)[:, :k]
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
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not (
            0.0 <= threshold <= 1.0):  # NaN fails both comparisons
        raise ArgumentError(f"threshold must be a probability between 0 and 1, got {threshold!r}")


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
