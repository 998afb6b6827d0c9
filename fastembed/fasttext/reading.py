"""Reading fastText's ``.bin`` and ``.ftz`` files (:func:`read_fasttext`).

Every file is untrusted: only a regular file is opened (``O_NONBLOCK``, so a FIFO cannot
block the open); every count and size is checked against the bytes left in the file before
anything is allocated for it; enums, flags, the order of the dictionary and every shape are
checked against each other. Any problem is one :class:`~fastembed.errors.ModelFileError`
whose one-line message names it.
"""

from __future__ import annotations

import os
import stat

import numpy as np

from fastembed.errors import ModelFileError
from fastembed.fasttext.layout import (
    _ARGS,
    _DICT_HEAD,
    _ENTRY_TAIL,
    _HEAD,
    _I32_MAX,
    _MATRIX_HEAD,
    _PQ_HEAD,
    _QUANT_HEAD,
    _READABLE_VERSIONS,
    ARG_NAMES,
    FASTTEXT_MAGIC,
    LABEL,
    LOSS_NAMES,
    MODEL_NAMES,
    WORD,
    FastTextFile,
    problem,
)
from fastembed.quantize import FASTTEXT_KSUB, QuantizedMatrix

__all__ = ["is_fasttext_file", "read_fasttext"]

_CHUNK = 1 << 20  # bytes read at a time while parsing the dictionary


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
    why = problem(ft)
    if why:
        cur.fail(f"inconsistent fastText model: {why}")
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


def is_fasttext_file(path) -> bool:
    """True if ``path`` is a regular file starting with fastText's magic number (nothing else is
    read: :func:`read_fasttext` checks the rest)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the read
            return False
        with open(path, "rb") as f:
            head = f.read(4)
    except (OSError, TypeError, ValueError):
        return False
    return len(head) == 4 and int.from_bytes(head, "little", signed=True) == FASTTEXT_MAGIC
