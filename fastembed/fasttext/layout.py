"""fastText's model file layout (``.bin`` and the quantized ``.ftz``), its contents as plain
arrays (:class:`FastTextFile`), and the consistency rules fastText's loader relies on.

Supervised and unsupervised (cbow, skipgram) models alike: the layout does not depend on the
model. :mod:`.reading` parses a file, :mod:`.writing` writes one.

The layout (little-endian, as fastText writes it on x86; ``src/fasttext.cc`` ``saveModel``):

* ``int32`` magic 793712314, ``int32`` version (12; 11 is read too);
* args (``args.cc``): ``int32`` dim, ws, epoch, minCount, neg, wordNgrams, loss (1 hs, 2 ns,
  3 softmax, 4 ova), model (1 cbow, 2 sg, 3 sup), bucket, minn, maxn, lrUpdateRate, then
  ``float64`` t. The label prefix is not stored: fastText assumes ``__label__`` on load;
* dictionary (``dictionary.cc``): ``int32`` size, nwords, nlabels, ``int64`` ntokens,
  pruneidx_size; ``size`` entries (bytes, a NUL, ``int64`` count, ``int8`` type: 0 word, 1
  label), words first; then ``pruneidx_size`` pairs ``int32`` (bucket, row offset). A
  ``pruneidx_size`` of -1 means not pruned: n-gram bucket ``b`` is input row ``nwords + b``;
  otherwise bucket ``b`` is row ``nwords + pruneidx[b]`` and buckets not listed have no row
  (with 0, no n-gram has one);
* ``bool`` quantized input, the input matrix; ``bool`` qout, the output matrix. A dense
  matrix (``densematrix.cc``) is ``int64`` rows, cols and ``rows * cols`` float32. A
  quantized one (``quantmatrix.cc``, ``productquantizer.cc``) is ``bool`` qnorm, ``int64``
  rows, cols, ``int32`` codesize, ``codesize`` uint8 codes, the product quantizer (``int32``
  dim, nsubq, dsub, lastdsub, ``dim * 256`` float32 centroids) and, with qnorm, ``rows`` uint8
  norm codes and a norm quantizer of dim 1. The output is quantized only when the input is
  and qout is set.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from fastembed.errors import ArgumentError
from fastembed.quantize import FASTTEXT_KSUB, QuantizedMatrix

__all__ = ["ARG_NAMES", "FASTTEXT_MAGIC", "FASTTEXT_VERSION", "HEADER_BYTES", "LABEL", "LOSS_NAMES",
           "MODEL_NAMES", "PRUNE_PAIR_BYTES", "WORD", "FastTextFile", "entry_bytes", "matrix_bytes", "problem"]

FASTTEXT_MAGIC = 793712314
FASTTEXT_VERSION = 12
_READABLE_VERSIONS = (11, 12)
LOSS_NAMES = {1: "hs", 2: "ns", 3: "softmax", 4: "ova"}
MODEL_NAMES = {1: "cbow", 2: "sg", 3: "sup"}
WORD, LABEL = 0, 1
_INT_ARGS = ("dim", "ws", "epoch", "minCount", "neg", "wordNgrams", "loss", "model", "bucket",
             "minn", "maxn", "lrUpdateRate")
ARG_NAMES = _INT_ARGS + ("t",)
_HEAD = struct.Struct("<ii")
_ARGS = struct.Struct("<12id")
_DICT_HEAD = struct.Struct("<iiiqq")
_ENTRY_TAIL = struct.Struct("<qb")  # after the word's NUL
_MATRIX_HEAD = struct.Struct("<qq")
_QUANT_HEAD = struct.Struct("<Bqqi")
_PQ_HEAD = struct.Struct("<iiii")
_I32_MAX = 2**31 - 1


@dataclass
class FastTextFile:
    """The contents of a fastText model file, as plain arrays.

    Attributes
    ----------
    args : dict
        fastText's names (``dim``, ``ws``, ``epoch``, ``minCount``, ``neg``, ``wordNgrams``,
        ``loss``, ``model``, ``bucket``, ``minn``, ``maxn``, ``lrUpdateRate``, ``t``); ``loss``
        is ``"hs"``, ``"ns"``, ``"softmax"`` or ``"ova"``, ``model`` ``"cbow"``, ``"sg"`` or
        ``"sup"``. For a version-11 supervised file ``maxn`` is 0, as fastText loads it.
    entries : list of bytes
        The dictionary: ``nwords`` words, then ``nlabels`` labels (with their prefix).
    counts : ndarray of int64, types : ndarray of int8
        Per entry: its count, and 0 (word) or 1 (label).
    ntokens : int
        Tokens of the training corpus.
    pruneidx_size : int
        -1 (not pruned) or the number of (bucket, row offset) pairs in ``pruneidx``.
    pruneidx : ndarray of int32, shape (pruneidx_size, 2)
        The pairs in file order (fastText writes them in hash-map order).
    input_matrix, output_matrix : ndarray of float32 (rows, dim), or QuantizedMatrix
    version : int
        The file's format version (written as is).
    """

    args: dict
    entries: list
    counts: np.ndarray
    types: np.ndarray
    ntokens: int
    input_matrix: np.ndarray | QuantizedMatrix
    output_matrix: np.ndarray | QuantizedMatrix
    pruneidx_size: int = -1
    pruneidx: np.ndarray = field(default_factory=lambda: np.empty((0, 2), dtype=np.int32))
    version: int = FASTTEXT_VERSION

    @property
    def nwords(self) -> int:
        return int(np.count_nonzero(self.types == WORD))

    @property
    def nlabels(self) -> int:
        return int(np.count_nonzero(self.types == LABEL))

    @property
    def words(self) -> list:
        return self.entries[:self.nwords]

    @property
    def labels(self) -> list:
        return self.entries[self.nwords:]

    @property
    def word_counts(self) -> np.ndarray:
        return self.counts[:self.nwords]

    @property
    def label_counts(self) -> np.ndarray:
        return self.counts[self.nwords:]

    @property
    def quantized(self) -> bool:
        return isinstance(self.input_matrix, QuantizedMatrix)

    @property
    def supervised(self) -> bool:
        return self.args["model"] == "sup"

    def dense_input(self) -> np.ndarray:
        """The input matrix as float32 rows (rebuilt from the codes if quantized)."""
        return _dense(self.input_matrix)

    def dense_output(self) -> np.ndarray:
        """The output matrix as float32 rows (rebuilt from the codes if quantized)."""
        return _dense(self.output_matrix)

    def bucket_rows(self, buckets) -> np.ndarray:
        """Input rows of hashed n-gram buckets (``hash % bucket``): ``nwords + bucket``, or
        through ``pruneidx`` in a pruned file; -1 for a bucket that has no row there."""
        buckets = np.asarray(buckets, dtype=np.int64)
        nwords = self.nwords
        if self.pruneidx_size < 0:
            return nwords + buckets
        rows = np.full(buckets.shape, -1, dtype=np.int64)
        if self.pruneidx_size > 0:
            keys = self.pruneidx[:, 0].astype(np.int64)
            order = np.argsort(keys)
            keys = keys[order]
            pos = np.clip(np.searchsorted(keys, buckets), 0, keys.size - 1)
            found = keys[pos] == buckets
            rows[found] = nwords + self.pruneidx[order[pos[found]], 1]
        return rows


# -- sizes (what write_fasttext writes) ---------------------------------------------------------

HEADER_BYTES = _HEAD.size + _ARGS.size + _DICT_HEAD.size
PRUNE_PAIR_BYTES = 8  # an int32 (bucket, row offset) pair


def entry_bytes(entry: bytes) -> int:
    """Bytes of a dictionary entry: the word, its NUL, count and type."""
    return len(entry) + 1 + _ENTRY_TAIL.size


def matrix_bytes(rows, dim, dsub=None, qnorm=False) -> int:
    """Bytes of a matrix after its ``bool`` flag: dense (``dsub`` None), or product-quantized
    with ``dsub`` columns per code (and the row norms apart with ``qnorm``)."""
    if dsub is None:
        return _MATRIX_HEAD.size + 4 * rows * dim
    nsubq = -(-dim // dsub)
    size = _QUANT_HEAD.size + rows * nsubq + _PQ_HEAD.size + 4 * dim * FASTTEXT_KSUB
    return size + (rows + _PQ_HEAD.size + 4 * FASTTEXT_KSUB if qnorm else 0)


def _dense(matrix):
    return matrix.dense() if isinstance(matrix, QuantizedMatrix) else matrix


# -- consistency (reading and writing) ---------------------------------------------------------

def problem(ft) -> str | None:
    """What makes ``ft`` something fastText cannot load as it is, or None."""
    args = ft.args
    if set(args) != set(ARG_NAMES):
        return f"args must have exactly the keys {', '.join(ARG_NAMES)}"
    for name in _INT_ARGS:
        if name not in ("loss", "model"):
            v = args[name]
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) \
                    or not -_I32_MAX - 1 <= v <= _I32_MAX:
                return f"{name} must be a 32-bit integer, got {v!r}"
    if args["loss"] not in LOSS_NAMES.values() or args["model"] not in MODEL_NAMES.values():
        return f"unknown loss {args['loss']!r} or model {args['model']!r}"
    dim, bucket = args["dim"], args["bucket"]
    if dim < 1 or bucket < 0 or args["minn"] < 0 or args["maxn"] < 0 or args["wordNgrams"] < 0:
        return "dim must be positive, bucket, minn, maxn and wordNgrams non-negative"
    if bucket == 0 and (args["maxn"] > 0 or args["wordNgrams"] > 1):
        return "bucket is 0 but the model uses n-grams (fastText would divide by zero)"
    if ft.version not in _READABLE_VERSIONS:
        return f"version {ft.version} (11 or 12 only)"
    n = len(ft.entries)
    if not (isinstance(ft.counts, np.ndarray) and ft.counts.shape == (n,)
            and isinstance(ft.types, np.ndarray) and ft.types.shape == (n,)):
        return "entries, counts and types must have one value per entry"
    if n > _I32_MAX or not (0 <= ft.ntokens < 2**63):
        return "too many entries, or ntokens out of range"
    if (ft.counts < 0).any():
        return "a dictionary count is negative"
    nwords, nlabels = ft.nwords, ft.nlabels
    if (ft.types[:nwords] != WORD).any() or (ft.types[nwords:] != LABEL).any():
        return "the dictionary must hold its words first, then its labels"
    if not all(isinstance(e, bytes) for e in ft.entries) or b"\0" in b"".join(ft.entries):
        return "every dictionary entry must be bytes without NUL"
    if len(set(ft.entries)) != n:
        return "the dictionary has a duplicate entry"
    why = _pruneidx_problem(ft, bucket)
    if why:
        return why
    if ft.pruneidx_size >= 0 and not ft.quantized:
        return "a pruned dictionary needs a quantized input matrix (fastText refuses it dense)"
    if isinstance(ft.output_matrix, QuantizedMatrix) and not ft.quantized:
        return "a quantized output matrix needs a quantized input matrix"
    n_ngram_rows = bucket if ft.pruneidx_size < 0 else ft.pruneidx_size
    n_out = nlabels if args["model"] == "sup" else nwords
    for what, matrix, rows in (("input", ft.input_matrix, nwords + n_ngram_rows),
                               ("output", ft.output_matrix, n_out)):
        why = _matrix_problem(matrix, what)
        if why:
            return why
        if matrix.shape != (rows, dim):
            return f"the {what} matrix is {matrix.shape[0]} x {matrix.shape[1]}, not {rows} x {dim}"
    return None


def _pruneidx_problem(ft, bucket):
    p, pairs = ft.pruneidx_size, ft.pruneidx
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not -1 <= p <= _I32_MAX:
        return f"pruneidx_size must be -1 or a row count, got {p!r}"
    if not (isinstance(pairs, np.ndarray) and pairs.dtype == np.int32
            and pairs.shape == (max(p, 0), 2)):
        return f"pruneidx must be int32 of shape ({max(p, 0)}, 2)"
    if p > 0:
        if pairs[:, 0].min() < 0 or pairs[:, 0].max() >= bucket:
            return f"a pruned bucket is outside [0, {bucket})"
        if pairs[:, 1].min() < 0 or pairs[:, 1].max() >= p:
            return f"a pruned row offset is outside [0, {p})"
        if np.unique(pairs[:, 0]).size != p:
            return "a bucket appears twice in the pruned index"
    return None


def _matrix_problem(matrix, what):
    if isinstance(matrix, QuantizedMatrix):
        if matrix.ksub != FASTTEXT_KSUB:
            return f"the {what} matrix has {matrix.ksub} centroids a block; fastText needs 256"
        try:
            matrix.check(f"the {what} matrix")
        except ArgumentError as exc:
            return str(exc)
        if matrix.qnorm and matrix.norm_centroids.size != FASTTEXT_KSUB:
            return f"the {what} norm codebook has {matrix.norm_centroids.size} centroids, not 256"
        return None
    if not (isinstance(matrix, np.ndarray) and matrix.ndim == 2 and matrix.dtype == np.float32):
        return f"the {what} matrix must be a 2-D float32 array or a QuantizedMatrix"
    return None
