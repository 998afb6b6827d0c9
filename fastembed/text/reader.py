"""Reading a corpus into one ``uint8`` array, without decoding it, lines bounded in length.

Every source is checked against a maximum line length (:func:`max_line_bytes`, 8 MiB unless
:func:`line_limit` says otherwise) while it is read, so that one endless line (``/dev/zero``,
a gzip bomb, a file without newlines) ends with a :class:`CorpusError` naming the line as soon
as the limit is passed, instead of filling memory.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import gzip
import os
import stat
import zlib
from collections.abc import Iterable

import numpy as np

from fastembed.errors import ArgumentError, CorpusError
from fastembed.settings import DEFAULT_MAX_LINE_BYTES, MAX_LINE_BYTES_LIMIT

__all__ = ["LineLengthCheck", "gzip_errors", "line_limit", "max_line_bytes", "read_bytes",
           "read_line_chunks", "source_name", "text_bytes"]

_GZIP_MAGIC = b"\x1f\x8b"
_NEWLINE = 10
_READ_CHUNK = 16 << 20  # bytes per read() of a file: the line check runs between reads
_CHECK_CHUNK = 1 << 20  # bytes per NumPy pass of the check: bounds its index array to 8 MiB
_GZIP_MAX_RATIO = 1100  # deflate expands at most 1032:1; the ISIZE hint is capped by this

_max_line_bytes = contextvars.ContextVar("fastembed_max_line_bytes", default=DEFAULT_MAX_LINE_BYTES)


def max_line_bytes() -> int:
    """The longest line (in bytes, without its newline) a corpus may hold here and now."""
    return _max_line_bytes.get()


def check_line_limit(limit) -> int:
    """``limit`` as an int, or :class:`ArgumentError` unless it is in [1, MAX_LINE_BYTES_LIMIT]."""
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or not (
            1 <= limit <= MAX_LINE_BYTES_LIMIT):
        raise ArgumentError(
            f"max_line_bytes must be an integer between 1 and {MAX_LINE_BYTES_LIMIT}, got {limit!r}")
    return int(limit)


@contextlib.contextmanager
def line_limit(limit):
    """Within the block, lines of up to ``limit`` bytes are accepted (in this thread or task).

    >>> with line_limit(64 << 20):           # doctest: +SKIP
    ...     model = train_supervised("wiki_articles_one_per_line.txt")
    """
    token = _max_line_bytes.set(check_line_limit(limit))
    try:
        yield
    finally:
        _max_line_bytes.reset(token)


def source_name(source) -> str:
    """A short name of ``source`` for messages: the path, or ``<bytes>`` / ``<lines>``."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if isinstance(source, np.ndarray):
        return "<array>"
    return "<lines>"


class LineLengthCheck:
    """Checks the line lengths of a text fed to it in consecutive pieces.

    :meth:`feed` raises :class:`CorpusError` as soon as a line exceeds ``limit`` bytes, even
    before the line ends, so memory stays bounded on an endless line.
    """

    def __init__(self, name, limit=None):
        self.name = name
        self.limit = max_line_bytes() if limit is None else check_line_limit(limit)
        self.lines = 0  # newlines seen
        self.run = 0  # bytes since the last newline

    def feed(self, data):
        """Check the next piece (a ``uint8`` array or bytes-like)."""
        data = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
        for start in range(0, data.size, _CHECK_CHUNK):
            piece = data[start:start + _CHECK_CHUNK]
            newlines = np.flatnonzero(piece == _NEWLINE)
            if newlines.size == 0:
                self.run += piece.size
                self._check(self.run, 0)
                continue
            self._check(self.run + int(newlines[0]), 0)
            if newlines.size > 1:
                too_long = np.flatnonzero(np.diff(newlines) - 1 > self.limit)
                if too_long.size:  # the line that ends at newlines[j + 1]
                    j = int(too_long[0])
                    self._check(int(newlines[j + 1] - newlines[j] - 1), j + 1)
            self.lines += newlines.size
            self.run = piece.size - int(newlines[-1]) - 1
            self._check(self.run, 0)

    def _check(self, length, newlines_before):
        if length > self.limit:
            line = self.lines + newlines_before + 1
            raise CorpusError(
                f"{self.name}: line {line} is longer than {self.limit} bytes (raise the limit "
                f"with --max-line-bytes, or fastembed.text.line_limit in Python)")


@contextlib.contextmanager
def gzip_errors(name):
    """Turn the failures of a corrupt or truncated gzip stream into one :class:`CorpusError`.

    Python reports a truncated stream as ``EOFError`` (which click would take for Ctrl-D),
    corrupt data as ``zlib.error`` and a bad header or CRC as ``gzip.BadGzipFile``.
    """
    try:
        yield
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise CorpusError(f"{name}: corrupt or truncated gzip file ({exc})") from None


def _read_stream(f, size_hint, check):
    """Read ``f`` to its end into one array (grown by doubling past ``size_hint``)."""
    buf = np.empty(max(size_hint, 0) + 1, dtype=np.uint8)  # +1: EOF is seen without a regrow
    n = 0
    while True:
        if n == buf.size:
            grown = np.empty(2 * buf.size, dtype=np.uint8)
            grown[:n] = buf[:n]
            buf = grown
        k = f.readinto(memoryview(buf)[n:n + _READ_CHUNK])
        if not k:
            break
        check.feed(buf[n:n + k])
        n += k
    return buf[:n]


def _open_corpus(f, path):
    """``(stat, is_gzip)`` of an open corpus file; IsADirectoryError for a directory."""
    st = os.fstat(f.fileno())
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "corpus path is a directory", path)
    return st, f.peek(2)[:2] == _GZIP_MAGIC


def _gzip_size_hint(f, st) -> int:
    """The text size of the regular gzip file open as ``f`` (at offset 0), from its trailer.

    ISIZE (the last 4 bytes) is the uncompressed size mod 2**32 of the last member: exact for
    ordinary files; a hint only, capped by what deflate can expand to.
    """
    isize = 0
    if st.st_size >= 4:
        f.seek(-4, os.SEEK_END)
        isize = int.from_bytes(f.read(4), "little")
        f.seek(0)
    return min(isize, _GZIP_MAX_RATIO * st.st_size)


def text_bytes(path) -> int:
    """About how many bytes of text the regular corpus file ``path`` holds once decompressed.

    A plain file's size; for a gzip file the larger of its trailer's size hint and its
    compressed size (a hint that wrapped past 4 GiB can only be that small if the text
    compresses more than 16:1 at that size).
    """
    with open(path, "rb") as f:
        st, is_gzip = _open_corpus(f, path)
        return max(_gzip_size_hint(f, st), st.st_size) if is_gzip else st.st_size


def _read_path(path: str, limit) -> np.ndarray:
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "corpus file not found", path)
    with open(path, "rb") as f:
        st, is_gzip = _open_corpus(f, path)
        regular = stat.S_ISREG(st.st_mode)
        check = LineLengthCheck(path, limit)
        if not is_gzip:
            return _read_stream(f, st.st_size if regular else _READ_CHUNK, check)
        hint = _gzip_size_hint(f, st) if regular else _READ_CHUNK
        with gzip_errors(path), gzip.GzipFile(fileobj=f, mode="rb") as g:
            return _read_stream(g, hint, check)


def read_line_chunks(path, chunk_bytes=_READ_CHUNK, max_line_bytes=None):
    """Yield the bytes of a plain or gzip corpus file in pieces of about ``chunk_bytes``.

    Every piece but the last ends with a newline; the last one holds what follows the last
    newline (possibly nothing), so pieces can be scanned one by one. Line lengths are checked
    as in :func:`read_bytes`. Memory: one piece and one partial line.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "corpus file not found", path)
    check = LineLengthCheck(path, max_line_bytes)
    with open(path, "rb") as f:
        _, is_gzip = _open_corpus(f, path)
        with gzip_errors(path), (gzip.GzipFile(fileobj=f, mode="rb") if is_gzip
                                 else contextlib.nullcontext(f)) as stream:
            tail = b""
            while True:
                block = stream.read(chunk_bytes)
                if not block:
                    break
                check.feed(block)
                cut = block.rfind(b"\n") + 1
                if cut == 0:  # no line ends here: the line goes on (bounded by the check)
                    tail += block
                    continue
                piece = np.frombuffer(tail + block[:cut], dtype=np.uint8) if tail else \
                    np.frombuffer(block, dtype=np.uint8, count=cut)
                tail = block[cut:]
                yield piece
            yield np.frombuffer(tail, dtype=np.uint8)


def read_bytes(source, max_line_bytes=None) -> np.ndarray:
    """Return the bytes of a corpus as a 1-D ``uint8`` array.

    Parameters
    ----------
    source : str | os.PathLike | bytes | bytearray | memoryview | np.ndarray | Iterable[str | bytes]
        * a path (``str`` or ``PathLike``) to a plain or gzip file (gzip is
          recognised by its magic bytes, whatever the name); pipes and other
          non-regular files work too.  A plain file is read straight into one
          array; a gzip file is decompressed straight into one array.
        * ``bytes``-like or a ``uint8`` array: wrapped without copy (read-only).
        * any other iterable of lines (``str`` encoded as UTF-8 with
          ``errors="surrogateescape"``, or ``bytes``): every line gets a
          ``"\\n"`` appended, so each is one line of the corpus (a line that
          itself contains ``"\\n"`` becomes several lines).
    max_line_bytes : int, optional
        The longest line accepted, in bytes without its newline; by default
        :func:`max_line_bytes` (8 MiB, or what :func:`line_limit` set).

    Returns
    -------
    np.ndarray
        ``uint8[n_bytes]``, C-contiguous.  Nothing is decoded: invalid UTF-8
        is kept as it is.

    Raises
    ------
    FileNotFoundError
        ``source`` is a path that does not exist (the message names it).
    CorpusError
        A line is longer than the limit (the message names it), or a gzip file
        is corrupt or truncated.
    TypeError
        ``source`` is none of the above.
    """
    if isinstance(source, (str, os.PathLike)):
        return _read_path(os.fspath(source), max_line_bytes)
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8:
            raise TypeError(f"read_bytes: array source must be uint8, got {source.dtype}")
        data = np.ascontiguousarray(source).reshape(-1)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = np.frombuffer(source, dtype=np.uint8)
    elif isinstance(source, Iterable):
        parts: list[bytes] = []
        for line in source:
            if isinstance(line, str):
                parts.append(line.encode("utf-8", "surrogateescape"))
            elif isinstance(line, (bytes, bytearray, memoryview)):
                parts.append(bytes(line))
            else:
                raise TypeError(f"read_bytes: lines must be str or bytes, got {type(line).__name__}")
            parts.append(b"\n")
        data = np.frombuffer(b"".join(parts), dtype=np.uint8)
    else:
        raise TypeError(f"read_bytes: unsupported source type {type(source).__name__}")
    LineLengthCheck(source_name(source), max_line_bytes).feed(data)
    return data
