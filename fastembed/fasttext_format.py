"""fastText's model files (``.bin`` and the quantized ``.ftz``): read and write.

:func:`read_fasttext` parses a file into a :class:`FastTextFile` (plain arrays, no Model);
:func:`write_fasttext` writes one back in the layout fastText 0.9.x reads. Supervised and
unsupervised (cbow, skipgram) models alike: the layout does not depend on the model.

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

Every file is untrusted: only a regular file is opened (``O_NONBLOCK``, so a FIFO cannot
block the open); every count and size is checked against the bytes left in the file before
anything is allocated for it; enums, flags, the order of the dictionary and every shape are
checked against each other. Any problem is one :class:`~fastembed.errors.ModelFileError`
whose one-line message names it.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass, field

import numpy as np

from fastembed.errors import ArgumentError, ModelFileError
from fastembed.files import atomic_output
from fastembed.quantize import FASTTEXT_KSUB, QuantizedMatrix

__all__ = [
    "FASTTEXT_MAGIC",
    "FASTTEXT_VERSION",
    "LOSS_NAMES",
    "MODEL_NAMES",
    "FastTextFile",
    "read_fasttext",
    "write_fasttext",
]

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
_CHUNK = 1 << 20  # bytes read at a time while parsing the dictionary


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


def _dense(matrix):
    return matrix.dense() if isinstance(matrix, QuantizedMatrix) else matrix


# -- reading ---------------------------------------------------------------------------------

class _Cursor:
    """Reads a file front to back; every read is first checked against the bytes left."""

    def __init__(self, f, size, path):
        self.f, self.size, self.path, self.pos = f, size, path, 0

    def fail(self, why):
        raise ModelFileError(f"{self.path}: {why}")

    @property
    def left(self):
        return self.size - self.pos

    def need(self, nbytes, what):
        if nbytes > self.left:
            self.fail(f"truncated fastText model: {what} needs {nbytes} bytes at offset "
                      f"{self.pos}, {self.left} left")

    def read(self, nbytes, what):
        self.need(nbytes, what)
        data = self.f.read(nbytes)
        if len(data) != nbytes:
            self.fail(f"the file changed while it was read ({what})")
        self.pos += nbytes
        return data

    def unpack(self, fmt, what):
        return fmt.unpack(self.read(fmt.size, what))

    def array(self, dtype, count, what):
        dtype = np.dtype(dtype)
        self.need(count * dtype.itemsize, what)
        out = np.empty(count, dtype=dtype)
        if count:
            view = memoryview(out).cast("B")
            done = 0
            while done < view.nbytes:
                n = self.f.readinto(view[done:])
                if not n:
                    self.fail(f"the file changed while it was read ({what})")
                done += n
            self.pos += done
        return out.astype(dtype.newbyteorder("="), copy=False)  # a no-op on little-endian hosts

    def seek(self, pos):
        self.f.seek(pos)
        self.pos = pos


def _open_regular(path):
    """Open ``path`` for reading if it is a regular file; a FIFO or device never blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot open ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise ModelFileError(f"{path}: {kind}, not a model file")
        return os.fdopen(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise


def read_fasttext(path) -> FastTextFile:
    """Read a fastText ``.bin`` or ``.ftz`` model file.

    Raises
    ------
    ModelFileError
        With a one-line reason, for anything but a complete, consistent fastText model file.
    """
    path = os.fspath(path)
    f, size = _open_regular(path)
    with f:
        cur = _Cursor(f, size, path)
        try:
            ft = _read(cur)
        except OSError as exc:
            cur.fail(f"read error ({exc.strerror or exc})")
    problem = _problem(ft)
    if problem:
        cur.fail(f"inconsistent fastText model: {problem}")
    return ft


def _read(cur) -> FastTextFile:
    if cur.size < _HEAD.size:
        cur.fail("not a fastText model file (too short)")
    magic, version = cur.unpack(_HEAD, "the header")
    if magic != FASTTEXT_MAGIC:
        cur.fail("not a fastText model file (wrong magic number)")
    if version not in _READABLE_VERSIONS:
        cur.fail(f"fastText model format version {version} is not supported (reads 11 and 12)")
    args = _read_args(cur, version)
    entries, counts, types, ntokens, pruneidx_size, pruneidx = _read_dictionary(cur)
    quant_input = _read_flag(cur, "the quantized-input flag")
    input_matrix = _read_matrix(cur, quant_input, "input matrix")
    qout = _read_flag(cur, "the qout flag")
    output_matrix = _read_matrix(cur, quant_input and qout, "output matrix")
    if cur.left:
        cur.fail(f"{cur.left} bytes after the end of the fastText model")
    return FastTextFile(args, entries, counts, types, ntokens, input_matrix, output_matrix,
                        pruneidx_size, pruneidx, version)


def _read_args(cur, version):
    values = cur.unpack(_ARGS, "the arguments")
    args = dict(zip(ARG_NAMES, values))
    loss, model = args["loss"], args["model"]
    if loss not in LOSS_NAMES:
        cur.fail(f"unknown loss code {loss} (1..4 are hs, ns, softmax, ova)")
    if model not in MODEL_NAMES:
        cur.fail(f"unknown model code {model} (1..3 are cbow, skipgram, supervised)")
    args["loss"], args["model"] = LOSS_NAMES[loss], MODEL_NAMES[model]
    args["t"] = float(args["t"])
    if version == 11 and args["model"] == "sup":
        args["maxn"] = 0  # fastText: version-11 supervised models have no character n-grams
    return args


def _read_dictionary(cur):
    size, nwords, nlabels, ntokens, pruneidx_size = cur.unpack(_DICT_HEAD, "the dictionary header")
    if min(size, nwords, nlabels, ntokens) < 0 or nwords + nlabels != size:
        cur.fail(f"bad dictionary header (size {size}, nwords {nwords}, nlabels {nlabels}, "
                 f"ntokens {ntokens})")
    # each entry is at least its NUL, an int64 count and an int8 type
    cur.need(size * (1 + _ENTRY_TAIL.size), f"the dictionary ({size} entries)")
    entries, counts, types = _read_entries(cur, size)
    if not np.isin(types, (WORD, LABEL)).all():
        cur.fail("a dictionary entry has an unknown type (0 word and 1 label only)")
    if (types[:nwords] != WORD).any() or (types[nwords:] != LABEL).any():
        cur.fail(f"the dictionary does not hold its {nwords} words first, then its "
                 f"{nlabels} labels")
    if not -1 <= pruneidx_size <= _I32_MAX:
        cur.fail(f"bad pruned-index size {pruneidx_size}")
    pairs = max(pruneidx_size, 0)
    pruneidx = cur.array("<i4", 2 * pairs, f"the pruned index ({pairs} pairs)")
    return entries, counts, types, ntokens, pruneidx_size, pruneidx.reshape(pairs, 2)


def _read_entries(cur, size):
    """``size`` dictionary entries, read in chunks (a Python loop: about 1 us an entry)."""
    entries = []
    tails = []  # (count, type) per entry
    tail = _ENTRY_TAIL.size
    unpack_tail = _ENTRY_TAIL.unpack_from
    buf = b""
    base = cur.pos  # the file offset of buf[0]
    off = 0  # where the next entry starts in buf
    searched = 0  # buf[off:searched] holds no NUL
    for i in range(size):
        end = buf.find(b"\0", searched)
        while end < 0 or len(buf) - end - 1 < tail:
            searched = len(buf) if end < 0 else end
            if not cur.left:
                cur.fail(f"truncated fastText model: dictionary entry {i} of {size} is cut off")
            buf = buf[off:] + cur.read(min(_CHUNK, cur.left), "the dictionary")
            base += off
            searched -= off
            off = 0
            end = buf.find(b"\0", searched)
        entries.append(buf[off:end])
        tails.append(unpack_tail(buf, end + 1))
        off = searched = end + 1 + tail
    cur.seek(base + off)
    tails = np.array(tails, dtype=np.int64).reshape(size, 2)
    return entries, tails[:, 0].copy(), tails[:, 1].astype(np.int8)


def _read_flag(cur, what):
    (value,) = cur.read(1, what)
    if value > 1:
        cur.fail(f"{what} is {value}, not 0 or 1")
    return bool(value)


def _read_matrix(cur, quantized, what):
    if quantized:
        return _read_quantized(cur, what)
    rows, cols = cur.unpack(_MATRIX_HEAD, f"the {what} header")
    if not (0 <= rows <= _I32_MAX and 1 <= cols <= _I32_MAX):
        cur.fail(f"bad {what} shape ({rows}, {cols})")
    data = cur.array("<f4", rows * cols, f"the {what} ({rows} x {cols})")
    return data.reshape(rows, cols)


def _read_quantized(cur, what):
    qnorm, rows, cols, codesize = cur.unpack(_QUANT_HEAD, f"the quantized {what} header")
    if not (qnorm <= 1 and 0 <= rows <= _I32_MAX and 1 <= cols <= _I32_MAX and codesize >= 0):
        cur.fail(f"bad quantized {what} header (qnorm {qnorm}, rows {rows}, cols {cols}, "
                 f"codesize {codesize})")
    if codesize != 0 if rows == 0 else (codesize % rows or not 1 <= codesize // rows <= cols):
        cur.fail(f"quantized {what}: codesize {codesize} is not rows ({rows}) x 1..cols ({cols})")
    codes = cur.array(np.uint8, codesize, f"the {what} codes")
    dim, dsub, nsubq, centroids = _read_pq(cur, what)
    if dim != cols or (rows * nsubq != codesize):
        cur.fail(f"quantized {what}: {rows} x {cols} with {nsubq} codes a row does not fit "
                 f"a quantizer of dim {dim} and {codesize} codes")
    norm_codes = norm_centroids = None
    if qnorm:
        norm_codes = cur.array(np.uint8, rows, f"the {what} norm codes")
        ndim, ndsub, _, norm_centroids = _read_pq(cur, f"{what} norms")
        if (ndim, ndsub) != (1, 1):
            cur.fail(f"quantized {what}: the norm quantizer has dim {ndim}, dsub {ndsub}, not 1, 1")
    return QuantizedMatrix(centroids, codes.reshape(rows, nsubq), dim, dsub, norm_codes,
                           norm_centroids)


def _read_pq(cur, what):
    dim, nsubq, dsub, lastdsub = cur.unpack(_PQ_HEAD, f"the {what} quantizer")
    if not (1 <= dsub <= dim and nsubq == -(-dim // dsub)
            and lastdsub == dim - (nsubq - 1) * dsub):
        cur.fail(f"bad {what} quantizer (dim {dim}, nsubq {nsubq}, dsub {dsub}, "
                 f"lastdsub {lastdsub})")
    centroids = cur.array("<f4", dim * FASTTEXT_KSUB, f"the {what} centroids")
    return dim, dsub, nsubq, centroids


# -- consistency (reading and writing) ---------------------------------------------------------

def _problem(ft) -> str | None:
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
    problem = _pruneidx_problem(ft, bucket)
    if problem:
        return problem
    if ft.pruneidx_size >= 0 and not ft.quantized:
        return "a pruned dictionary needs a quantized input matrix (fastText refuses it dense)"
    if isinstance(ft.output_matrix, QuantizedMatrix) and not ft.quantized:
        return "a quantized output matrix needs a quantized input matrix"
    n_ngram_rows = bucket if ft.pruneidx_size < 0 else ft.pruneidx_size
    n_out = nlabels if args["model"] == "sup" else nwords
    for what, matrix, rows in (("input", ft.input_matrix, nwords + n_ngram_rows),
                               ("output", ft.output_matrix, n_out)):
        problem = _matrix_problem(matrix, what)
        if problem:
            return problem
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


# -- writing -----------------------------------------------------------------------------------

def write_fasttext(path, ft: FastTextFile):
    """Write ``ft`` to ``path`` (atomically) in fastText's layout: dense matrices give a
    ``.bin``, quantized ones a ``.ftz``; fastText 0.9.x loads either.

    Raises
    ------
    ArgumentError
        When ``ft`` is not something fastText can load (the message says what).
    """
    problem = _problem(ft)
    if problem:
        raise ArgumentError(f"cannot write a fastText model: {problem}")
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
