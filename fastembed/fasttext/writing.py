"""Writing fastText's ``.bin`` and ``.ftz`` files (:func:`write_fasttext`)."""

from __future__ import annotations

import struct

import numpy as np

from fastembed.errors import ArgumentError
from fastembed.fasttext.layout import (
    _ARGS,
    _DICT_HEAD,
    _ENTRY_TAIL,
    _HEAD,
    _INT_ARGS,
    _MATRIX_HEAD,
    _PQ_HEAD,
    _QUANT_HEAD,
    FASTTEXT_MAGIC,
    LOSS_NAMES,
    MODEL_NAMES,
    FastTextFile,
    problem,
)
from fastembed.files import atomic_output
from fastembed.quantize import QuantizedMatrix

__all__ = ["write_fasttext"]


def write_fasttext(path, ft: FastTextFile):
    """Write ``ft`` to ``path`` (atomically) in fastText's layout: dense matrices give a
    ``.bin``, quantized ones a ``.ftz``; fastText 0.9.x loads either.

    Raises
    ------
    ArgumentError
        When ``ft`` is not something fastText can load (the message says what).
    """
    why = problem(ft)
    if why:
        raise ArgumentError(f"cannot write a fastText model: {why}")
    args = dict(ft.args)
    args["loss"] = {v: k for k, v in LOSS_NAMES.items()}[args["loss"]]
    args["model"] = {v: k for k, v in MODEL_NAMES.items()}[args["model"]]
    with atomic_output(path) as f:
        f.write(_HEAD.pack(FASTTEXT_MAGIC, ft.version))
        f.write(_ARGS.pack(*(int(args[k]) for k in _INT_ARGS), float(args["t"])))
        f.write(_DICT_HEAD.pack(len(ft.entries), ft.nwords, ft.nlabels, int(ft.ntokens),
                                int(ft.pruneidx_size)))
        f.write(b"".join(word + b"\0" + _ENTRY_TAIL.pack(int(c), int(t))
                         for word, c, t in zip(ft.entries, ft.counts, ft.types)))
        _write_array(f, ft.pruneidx, "<i4")
        f.write(struct.pack("<?", ft.quantized))
        _write_matrix(f, ft.input_matrix)
        f.write(struct.pack("<?", isinstance(ft.output_matrix, QuantizedMatrix)))
        _write_matrix(f, ft.output_matrix)


def _write_array(f, a, dtype):
    a = np.ascontiguousarray(a, dtype=dtype)
    if a.size:
        f.write(memoryview(a).cast("B"))


def _write_matrix(f, matrix):
    if not isinstance(matrix, QuantizedMatrix):
        f.write(_MATRIX_HEAD.pack(*matrix.shape))
        _write_array(f, matrix, "<f4")
        return
    q = matrix
    f.write(_QUANT_HEAD.pack(int(q.qnorm), q.rows, q.dim, q.codes.size))
    _write_array(f, q.codes, np.uint8)
    f.write(_PQ_HEAD.pack(q.dim, q.nsubq, q.dsub, q.lastdsub))
    _write_array(f, q.centroids, "<f4")
    if q.qnorm:
        _write_array(f, q.norm_codes, np.uint8)
        f.write(_PQ_HEAD.pack(1, 1, 1, 1))
        _write_array(f, q.norm_centroids, "<f4")
