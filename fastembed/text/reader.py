"""Reading a corpus into one ``uint8`` array, without decoding it."""

from __future__ import annotations

import errno
import gzip
import os
from collections.abc import Iterable

import numpy as np

__all__ = ["read_bytes", "source_name"]

_GZIP_MAGIC = b"\x1f\x8b"


def source_name(source) -> str:
    """A short name of ``source`` for messages: the path, or ``<bytes>`` / ``<lines>``."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if isinstance(source, np.ndarray):
        return "<array>"
    return "<lines>"


def _read_gzip(path: str) -> np.ndarray:
    # ISIZE (last 4 bytes) is the uncompressed size mod 2**32 of the last
    # member: exact for ordinary files, so the text is decompressed straight
    # into one array; otherwise the array grows by doubling.
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        isize = 0
        if size >= 4:
            f.seek(-4, os.SEEK_END)
            isize = int.from_bytes(f.read(4), "little")
    cap = isize + 1
    buf = np.empty(cap, dtype=np.uint8)
    n = 0
    with gzip.open(path, "rb") as g:
        while True:
            if n == cap:
                cap *= 2
                new = np.empty(cap, dtype=np.uint8)
                new[:n] = buf[:n]
                buf = new
            k = g.readinto(memoryview(buf)[n:])
            if not k:
                break
            n += k
    return buf[:n]


def read_bytes(source) -> np.ndarray:
    """Return the bytes of a corpus as a 1-D ``uint8`` array.

    Parameters
    ----------
    source : str | os.PathLike | bytes | bytearray | memoryview | np.ndarray | Iterable[str | bytes]
        * a path (``str`` or ``PathLike``) to a plain or gzip file (gzip is
          recognised by its magic bytes, whatever the name).  A plain file is
          read with ``np.fromfile``: one allocation, no intermediate copy; a
          gzip file is decompressed straight into one array.
        * ``bytes``-like or a ``uint8`` array: wrapped without copy (read-only).
        * any other iterable of lines (``str`` encoded as UTF-8 with
          ``errors="surrogateescape"``, or ``bytes``): every line gets a
          ``"\\n"`` appended, so each is one line of the corpus (a line that
          itself contains ``"\\n"`` becomes several lines).

    Returns
    -------
    np.ndarray
        ``uint8[n_bytes]``, C-contiguous.  Nothing is decoded: invalid UTF-8
        is kept as it is.

    Raises
    ------
    FileNotFoundError
        ``source`` is a path that does not exist (the message names it).
    TypeError
        ``source`` is none of the above.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, "corpus file not found", path)
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "corpus path is a directory", path)
        with open(path, "rb") as f:
            magic = f.read(2)
        if magic == _GZIP_MAGIC:
            return _read_gzip(path)
        return np.fromfile(path, dtype=np.uint8)
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8:
            raise TypeError(f"read_bytes: array source must be uint8, got {source.dtype}")
        return np.ascontiguousarray(source).reshape(-1)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return np.frombuffer(source, dtype=np.uint8)
    if isinstance(source, Iterable):
        parts: list[bytes] = []
        for line in source:
            if isinstance(line, str):
                parts.append(line.encode("utf-8", "surrogateescape"))
            elif isinstance(line, (bytes, bytearray, memoryview)):
                parts.append(bytes(line))
            else:
                raise TypeError(f"read_bytes: lines must be str or bytes, got {type(line).__name__}")
            parts.append(b"\n")
        return np.frombuffer(b"".join(parts), dtype=np.uint8)
    raise TypeError(f"read_bytes: unsupported source type {type(source).__name__}")
