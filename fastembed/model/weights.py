"""Per-example training weights: ``sample_weight`` (one per line) times ``class_weight``.

The training kernel (:func:`fastembed.model.train_step.chunk_kernel`) multiplies an
example's learning rate by its weight, for the output layer and the input rows alike: under
SGD that is exactly the gradient of the weighted loss ``w * loss``. A weight of 0 leaves the
example out altogether (no forward pass, no optimizer state touched). Weights are not copies:
a weight-2 line makes one step twice as long, where two copies would make two steps.
"""

import numbers
import os

import numpy as np

from fastembed.errors import ArgumentError

__all__ = ["NO_WEIGHTS", "example_weights", "read_weights"]

_MAX_WEIGHT = float(np.finfo(np.float32).max)  # the kernel gets the weights as float32
_READ_BYTES = 8 << 20  # a weights file is read and converted in blocks of this many bytes
_MAX_NUMBER_BYTES = 100  # a longer line is not one number

NO_WEIGHTS = np.zeros(0, dtype=np.float32)
"""What the kernel gets without weights: every example weighs 1."""


def example_weights(corpus, labels, label_prefix, sample_weight=None, class_weight=None):
    """The weight of every example of ``corpus`` (float32), or :data:`NO_WEIGHTS`.

    Parameters
    ----------
    corpus : EncodedCorpus
        The training corpus as encoded; its ``kept_lines`` map examples to source lines.
    labels : list of str
        The dictionary's labels (with their prefix), in label-id order.
    label_prefix : str
    sample_weight : array-like, optional
        One finite non-negative weight per line of the source (skipped lines included), or per
        text of in-memory input.
    class_weight : "balanced" or dict, optional
        "balanced": label ``c`` weighs ``n_examples / (n_labels * n_c)``, ``n_c`` counting
        the examples that carry ``c`` (scikit-learn's rule). A dict maps labels (with or
        without the prefix) to weights; labels left out weigh 1. A multi-label example takes
        the mean of its labels' weights.
    """
    if sample_weight is None and class_weight is None:
        return NO_WEIGHTS
    n = corpus.n_lines
    weights = np.ones(n, dtype=np.float64)
    if sample_weight is not None:
        weights = _per_example(sample_weight, corpus)
    if class_weight is not None:
        per_label = _class_weights(class_weight, corpus, labels, label_prefix)
        counts = np.diff(corpus.label_offsets)
        sums = np.add.reduceat(per_label[corpus.label_indices], corpus.label_offsets[:-1]) if n else weights
        weights = weights * sums / np.maximum(counts, 1)  # every kept example has a label
    if not (weights > 0).any():
        raise ArgumentError("every example has weight 0: nothing to train on")
    return weights.astype(np.float32)


def _per_example(sample_weight, corpus):
    """``sample_weight`` (one per source line) checked, then taken at the kept examples."""
    if isinstance(sample_weight, (str, os.PathLike)):
        weights = read_weights(sample_weight)
        name = f"sample_weight file {os.fspath(sample_weight)}"
    else:
        try:
            weights = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError):
            raise ArgumentError("sample_weight must be an array of numbers, one per line") from None
        name = "sample_weight"
    n_lines = corpus.n_lines + corpus.n_skipped
    if weights.shape != (n_lines,):
        got = f"{weights.size} lines" if name != "sample_weight" else (
            f"{weights.size} weights (shape {weights.shape})")
        raise ArgumentError(f"{name} has {got} but the corpus has {n_lines} lines: give one "
                            "weight per line")
    bad = np.flatnonzero(~(np.isfinite(weights) & (weights >= 0) & (weights <= _MAX_WEIGHT)))
    if bad.size:
        where = f" (line {bad[0] + 1}: {weights[bad[0]]})" if name != "sample_weight" else ""
        raise ArgumentError(f"{name} must be finite and non-negative, at most {_MAX_WEIGHT:.4g}{where}")
    if corpus.kept_lines is not None:
        weights = weights[corpus.kept_lines]
    elif corpus.n_skipped:  # an out-of-core corpus does not record which lines it kept
        raise ArgumentError(f"sample_weight needs every line to be an example, but {corpus.n_skipped} "
                            "lines were skipped (blank or unlabelled) from a corpus encoded out of core")
    return weights


def read_weights(path):
    """The weights of a file of one number per line (a last line without its newline too):
    float64 (n,). ArgumentError naming the first line that is not a number."""
    pieces, n_lines, rest = [], 0, b""
    try:
        with open(path, "rb") as f:
            while True:
                block = f.read(_READ_BYTES)
                if not block:
                    break
                block = rest + block
                cut = block.rfind(b"\n") + 1
                rest = block[cut:]
                if len(rest) > _MAX_NUMBER_BYTES:  # no newline in sight (a wrong file, /dev/zero)
                    _numbers([rest[:_MAX_NUMBER_BYTES + 1]], path, n_lines + block.count(b"\n", 0, cut))
                if cut:
                    pieces.append(_numbers(block[:cut - 1].split(b"\n"), path, n_lines))
                    n_lines += pieces[-1].size
            if rest:
                pieces.append(_numbers([rest], path, n_lines))
    except IsADirectoryError:
        raise ArgumentError(f"sample_weight file {os.fspath(path)} is a directory") from None
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float64)


def _numbers(lines, path, first):
    """``lines`` (bytes) as float64; ArgumentError naming the first one that is not a number."""
    try:  # the per-line float() below runs only to name the bad line
        if max(map(len, lines)) > _MAX_NUMBER_BYTES:  # np.array would make every line that long
            raise ValueError
        return np.array(lines).astype(np.float64)
    except ValueError:
        for i, line in enumerate(lines):
            try:
                if len(line) > _MAX_NUMBER_BYTES:
                    raise ValueError
                float(line)
            except ValueError:
                text = line.decode("utf-8", "replace").strip()[:40]
                raise ArgumentError(f"sample_weight file {os.fspath(path)} line {first + i + 1}: "
                                    f"{text!r} is not a number") from None
        raise ArgumentError(f"sample_weight file {os.fspath(path)}: not one number per line") from None


def _class_weights(class_weight, corpus, labels, label_prefix):
    """One weight per label id."""
    n_labels = len(labels)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ArgumentError(f"class_weight must be 'balanced' or a dict, got {class_weight!r}")
        counts = np.bincount(corpus.label_indices, minlength=n_labels).astype(np.float64)
        return corpus.n_lines / (n_labels * np.maximum(counts, 1.0))
    if not isinstance(class_weight, dict):
        raise ArgumentError(f"class_weight must be 'balanced' or a dict, got {type(class_weight).__name__}")
    ids = {label: i for i, label in enumerate(labels)}
    per_label = np.ones(n_labels, dtype=np.float64)
    for key, value in class_weight.items():
        name = str(key)
        label = name if name.startswith(label_prefix) else label_prefix + name
        if label not in ids:
            raise ArgumentError(f"class_weight names {key!r}, which is not a label of the corpus")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
                np.isfinite(value) and value >= 0):
            raise ArgumentError(f"class_weight[{key!r}] must be a finite non-negative number, got {value!r}")
        per_label[ids[label]] = float(value)
    return per_label
