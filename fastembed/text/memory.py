"""Texts and labels held in memory, as the bytes of a corpus in fastText's format.

``train_supervised(texts=..., labels=...)`` and the scikit-learn estimator turn their samples
into the lines ``<prefix>label1 <prefix>label2 text`` here, in one ``bytes`` object that the
corpus reader wraps without a copy: no temporary file. The lines are encoded in blocks of
:data:`_BLOCK` samples, so that besides the texts themselves the peak is about twice the
corpus's bytes (the blocks, then their join), not a Python string per line.

Two things in a text would change the line's meaning, and are neutralised:

* a newline would end the example there: newlines (and carriage returns) are read as spaces,
  which fastText's tokeniser takes as separators anyway, so the words stay the same;
* a token starting with the label prefix would become a label of the line: such tokens are
  dropped, as prediction ignores them.
"""

from __future__ import annotations

import numbers
import re

import numpy as np

from fastembed.errors import ArgumentError

__all__ = ["corpus_bytes", "label_tokens", "strip_label_tokens", "training_source"]

# fastText's token separators (space, \t, \n, \v, \f, \r, NUL), as the corpus reader splits
SEPARATORS = r"\x00\t-\r "
_LINE_BREAKS = str.maketrans({"\n": " ", "\r": " "})
_BLOCK = 1 << 16


def strip_label_tokens(texts, prefix):
    """``texts`` with their tokens starting with ``prefix`` removed and newlines made spaces."""
    label_token = re.compile(f"(?<![^{SEPARATORS}]){re.escape(prefix)}[^{SEPARATORS}]*")
    out = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ArgumentError(f"texts[{i}] must be a str, got {type(text).__name__}")
        if prefix in text:
            text = label_token.sub("", text)
        if "\n" in text or "\r" in text:
            text = text.translate(_LINE_BREAKS)
        out.append(text)
    return out


def label_tokens(label, prefix, where):
    """The label tokens of one sample: ``label`` is one label or a list of them (multi-label).

    A label is a string (with or without ``prefix``) or an integer; it may not hold whitespace.
    """
    if isinstance(label, (str, numbers.Integral)) and not isinstance(label, bool):
        return _label_token(label, prefix, where)
    if isinstance(label, (list, tuple, set, frozenset, np.ndarray)):
        return " ".join(_label_token(item, prefix, f"{where}[{j}]") for j, item in enumerate(label))
    raise ArgumentError(f"{where} must be a label (str) or a list of labels, got {type(label).__name__}")


def _label_token(label, prefix, where):
    if isinstance(label, numbers.Integral) and not isinstance(label, bool):
        label = str(int(label))
    elif not isinstance(label, str):
        raise ArgumentError(f"{where} must be a label string, got {type(label).__name__}")
    if not label or re.search(f"[{SEPARATORS}]", label):
        raise ArgumentError(f"{where} must be a non-empty label without whitespace, got {label!r}")
    token = label if label.startswith(prefix) else prefix + label
    if token == prefix:
        raise ArgumentError(f"{where} is the bare label prefix {prefix!r}")
    return token


def corpus_bytes(texts, labels, prefix, name="texts"):
    """The corpus of ``texts`` labelled with ``labels``, one line per text, as UTF-8 bytes.

    ``texts``: any iterable of str (list, NumPy array, pandas Series); ``labels``: an iterable
    of the same length of labels, or of lists of labels. Returns ``(bytes, n_lines)``.
    """
    if isinstance(texts, (str, bytes)) or isinstance(labels, (str, bytes)):
        raise ArgumentError(f"{name}: texts and labels must be sequences (one item per sample), "
                            "not a single string")
    if getattr(labels, "ndim", 1) != 1:
        raise ArgumentError(f"{name}: labels must be one-dimensional (a label or a list of labels "
                            f"per text), got an array of shape {labels.shape}")
    texts = strip_label_tokens(list(texts), prefix)
    labels = list(labels)
    if len(texts) != len(labels):
        raise ArgumentError(f"{name}: {len(texts)} texts but {len(labels)} labels: one label "
                            "(or list of labels) per text")
    if not texts:
        raise ArgumentError(f"{name}: no texts")
    blocks = []
    for start in range(0, len(texts), _BLOCK):
        block = [f"{label_tokens(labels[i], prefix, f'labels[{i}]')} {texts[i]}\n"
                 for i in range(start, min(start + _BLOCK, len(texts)))]
        blocks.append("".join(block).encode("utf-8", "surrogateescape"))
    return b"".join(blocks), len(texts)


def training_source(input, texts, labels, prefix):
    """What the corpus reader gets: ``input``, or the bytes of ``texts`` and ``labels``."""
    if texts is None and labels is None:
        if input is None:
            raise ArgumentError("give a training corpus: input=, or texts= and labels=")
        return input
    if input is not None:
        raise ArgumentError("give either input= or texts= and labels=, not both")
    if texts is None or labels is None:
        raise ArgumentError("texts= and labels= go together: give both")
    return corpus_bytes(texts, labels, prefix)[0]
