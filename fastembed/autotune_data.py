"""Autotune's corpora: the validation corpus as bytes, the swapped split of a repeat, the refit's
joined corpus. All are newline-terminated ``uint8`` arrays of fastText-format lines.

The swapped split answers the noise of a small validation set: the same setting scored 0.809
and 0.794 on TREC-50's 545 held-out lines with two seeds, and the 500-line test set moved with
the validation lines drawn as much. A setting that beats the best is trained again (see
:mod:`fastembed.autotune`); with a refit to come, that second run trains on the training lines
minus a random draw of as many lines as the validation set has, plus the validation lines, and
is scored on the lines drawn. Its score then comes from other lines than the first run's: the
mean of the two runs is less the luck of one sample.
"""

import os

import numpy as np

from fastembed.errors import ArgumentError
from fastembed.text.memory import corpus_bytes
from fastembed.text.reader import read_bytes

__all__ = ["joined", "swapped_split", "validation_bytes"]

_NEWLINE = 10


def validation_bytes(validation, label_prefix):
    """The validation corpus (a path, or (texts, labels)) as newline-terminated ``uint8`` bytes."""
    if validation is None:
        raise ArgumentError("autotune_duration, autotune_metric and autotune_refit need autotune_validation")
    if isinstance(validation, tuple):
        if len(validation) != 2:
            raise ArgumentError("autotune_validation as a tuple must be (texts, labels)")
        return _terminated(corpus_bytes(*validation, label_prefix, name="autotune_validation")[0])
    if not isinstance(validation, (str, os.PathLike)):
        raise ArgumentError("autotune_validation must be a file path or (texts, labels), got "
                            f"{type(validation).__name__}")
    return _terminated(read_bytes(validation))


def joined(train, valid):
    """The training lines, then the validation lines: the refit's corpus."""
    return np.concatenate([_terminated(train), _terminated(valid)])


def swapped_split(train, valid, seed):
    """(training, validation) of the swapped split: ``train`` without a seeded draw of as many
    lines as ``valid`` has, then ``valid``; and the lines drawn, in their order. None if
    ``train`` has fewer than twice as many lines as ``valid``."""
    train, valid = _terminated(train), _terminated(valid)
    ends = np.flatnonzero(train == _NEWLINE) + 1
    lengths = np.diff(ends, prepend=0)
    n_valid = int(np.count_nonzero(valid == _NEWLINE))
    if n_valid == 0 or ends.size < 2 * n_valid:
        return None
    drawn = np.zeros(ends.size, dtype=bool)
    drawn[np.random.default_rng(seed).choice(ends.size, n_valid, replace=False)] = True
    in_drawn = np.repeat(drawn, lengths)  # one flag per byte
    return np.concatenate([train[~in_drawn], valid]), train[in_drawn]


def _terminated(data):
    """``data`` (bytes or ``uint8`` array) as a ``uint8`` array ending with a newline (or empty)."""
    data = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else np.asarray(data)
    if data.size and data[-1] != _NEWLINE:
        data = np.concatenate([data, np.array([_NEWLINE], dtype=np.uint8)])
    return data
