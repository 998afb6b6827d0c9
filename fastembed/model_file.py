"""The model file format (``.fe``), and reading one as the untrusted input it is.

A model file is a zip of ``.npy`` arrays, as ``numpy.savez`` writes it: every array of the
model, plus ``__meta__``, a JSON document held as bytes that names the format, its version and
the settings. Nothing in it is pickled.

Reading never trusts the file. :func:`load_arrays` opens only a regular file (a FIFO or
``/dev/zero`` would be read forever), checks the member list against a schema (the exact
names, no duplicate, nothing else), parses and checks the metadata first, and reads each
member only after its size, ``.npy`` header, dtype (exact, little-endian, never object) and
shape have been checked against the metadata. Members must be stored uncompressed, as
``numpy.savez`` writes them, so every member is at most the size of the file: loading is
O(file size), and its peak memory the arrays plus one read buffer. The schema (name, dtype,
shape as a function of the metadata, value checks) is declared by the caller, one line per
member: see :mod:`fastembed.model.file_schema`.
"""

import contextlib
import io
import json
import math
import os
import stat
import struct
import tokenize
import warnings
import zipfile
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from fastembed.errors import ModelFileError
from fastembed.files import atomic_output

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "META_KEY", "Member", "load_arrays", "save_arrays",
           "short_repr", "short_text"]

FORMAT_NAME = "fastembed-model"
FORMAT_VERSION = 1  # the version a schema writes and reads unless it names its own
META_KEY = "__meta__"
MAX_META_BYTES = 1 << 20  # the metadata is ~1 KB: settings, dictionary sizes, training stats
_MAX_NPY_HEADER = 4096  # numpy.save writes 128 bytes for these arrays
_READ_CHUNK = 16 << 20  # a member is read in pieces of this size straight into its array
_MAX_CENTRAL_DIRECTORY = 64 << 10  # a model's ~14 members take ~1.5 KB of zip directory
_ENCRYPTED = 0x41  # zip flag bits: encrypted, strongly encrypted
# What zipfile and numpy's .npy header parser raise on malformed input (found by fuzzing).
_PARSE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
                 TypeError, SyntaxError, tokenize.TokenError, struct.error, NotImplementedError,
                 RuntimeError, OverflowError, RecursionError)


@dataclass(frozen=True)
class Member:
    """One array of a model file.

    Attributes
    ----------
    name : str
        Without the ``.npy`` of its zip member.
    dtype : str
        Its exact dtype, as ``numpy.dtype.str`` spells it: ``"<f4"``, ``"|u1"``.
    shape : callable
        ``shape(dims) -> tuple of int``, from the checked metadata in ``dims``.
    binds : str, optional
        A size the metadata does not hold (e.g. the number of n-gram rows): this member's
        first dimension sets ``dims.<binds>``, which later members' shapes may use. It is
        bounded by the file size.
    present : callable, optional
        ``present(dims) -> bool``: whether the file holds this member (default: always).
    check : callable, optional
        ``check(name, array, dims)`` raises :class:`ModelFileError` for a bad value.
    """

    name: str
    dtype: str
    shape: Callable
    binds: Optional[str] = None
    present: Callable = lambda dims: True
    check: Optional[Callable] = None


def save_arrays(path, arrays, meta, version=FORMAT_VERSION):
    """Write ``arrays`` (name -> ndarray) and ``meta`` (JSON-able dict) atomically to ``path``,
    as format ``version``."""
    document = dict(meta, format=FORMAT_NAME, version=version)
    payload = dict(arrays)
    payload[META_KEY] = np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8)
    with atomic_output(path) as f:
        np.savez(f, **payload)


def load_arrays(path, parse_meta, members, check_arrays=None, versions=(FORMAT_VERSION,)):
    """Read and check a model file; returns ``(arrays, dims)``.

    Parameters
    ----------
    path : str or PathLike
    parse_meta : callable
        ``parse_meta(meta) -> SimpleNamespace`` of sizes and settings (``dims``), from the
        metadata document (a dict whose format and version are already checked); raises
        :class:`ModelFileError` naming the bad field.
    members : sequence of Member
        Every member the file holds besides ``__meta__``, in reading order.
    check_arrays : callable, optional
        ``check_arrays(arrays, dims)``: checks across members, once all are read.
    versions : tuple of int, or None
        The format versions the schema reads (``parse_meta`` sees ``meta["version"]``); None:
        any, for a ``parse_meta`` that only looks at the file's kind to choose its reader.

    Raises
    ------
    ModelFileError
        With a one-line reason, for anything but a complete fastembed model file of a
        version this code reads, consistent with itself.
    """
    path = os.fspath(path)
    with _open_regular_file(path) as f:
        size = os.fstat(f.fileno()).st_size
        try:
            return _read_archive(f, size, parse_meta, members, check_arrays, versions)
        except ModelFileError as exc:
            raise ModelFileError(f"{path}: {exc}") from None


@contextlib.contextmanager
def _parse_errors():
    """What zipfile or numpy's ``.npy`` header parser raise on malformed input, as one error."""
    try:
        yield
    except ModelFileError:
        raise
    except _PARSE_ERRORS as exc:
        raise ModelFileError(f"corrupt or truncated model file ({_one_line(exc)})") from None


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


def short_text(text, limit=200):
    """``text`` cut to ``limit`` characters, for messages about untrusted values."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def short_repr(value, limit=80):
    return short_text(repr(value), limit)


def _open_regular_file(path):
    """Open ``path`` for reading only if it is a regular file (never blocks on a FIFO)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ModelFileError(f"{path}: is a directory, not a model file")
        if not stat.S_ISREG(mode):
            raise ModelFileError(
                f"{path}: not a regular file (a pipe, device or socket); a model file must be a "
                f"regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_archive(f, size, parse_meta, members, check_arrays, versions):
    # zipfile parses the whole central directory into Python objects (~1 KB per entry, each
    # entry at least 46 bytes): bound it first, from the end record (zipfile's own parser).
    with _parse_errors():
        end = zipfile._EndRecData(f)
    if end is None:
        raise ModelFileError("not a fastembed model file (not an .npz archive)")
    if end[zipfile._ECD_SIZE] > _MAX_CENTRAL_DIRECTORY:
        raise ModelFileError(f"its zip directory of {end[zipfile._ECD_SIZE]} bytes lists more "
                             f"members than a model file holds")
    f.seek(0)
    with _parse_errors():
        zf = zipfile.ZipFile(f)
    with zf:
        infos = {}
        for info in zf.infolist():
            if info.filename in infos:
                raise ModelFileError(f"duplicate member {info.filename}")
            infos[info.filename] = info
        if META_KEY + ".npy" not in infos:
            raise ModelFileError("not a fastembed model file (no metadata)")
        raw = _read_member(zf, infos[META_KEY + ".npy"], size, "|u1", None, MAX_META_BYTES)
        dims = parse_meta(_check_format(_parse_json(raw), versions))
        wanted = [m for m in members if m.present(dims)]
        expected = {m.name + ".npy" for m in wanted} | {META_KEY + ".npy"}
        extra = sorted(set(infos) - expected)
        if extra:
            raise ModelFileError(f"unexpected member {extra[0]}")
        missing = sorted(expected - set(infos))
        if missing:
            raise ModelFileError(f"missing member {missing[0]}")
        arrays = {}
        for m in wanted:
            info = infos[m.name + ".npy"]
            if m.binds is None:
                array = _read_member(zf, info, size, m.dtype, tuple(m.shape(dims)))
            else:
                array = _read_member(zf, info, size, m.dtype, None, size)
                setattr(dims, m.binds, array.shape[0])
                _check_shape(info.filename, array.shape, tuple(m.shape(dims)))
            if m.check is not None:
                m.check(m.name, array, dims)
            arrays[m.name] = array
    if check_arrays is not None:
        check_arrays(arrays, dims)
    return arrays, dims


def _check_format(meta, versions):
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError("not a fastembed model file")
    if versions is None:
        return meta
    version = meta.get("version")
    if type(version) is not int or version not in versions:
        raise ModelFileError(
            f"model format version {short_repr(version)} is not supported by this fastembed (reads "
            f"version {' and '.join(map(str, versions))})")
    return meta


def _parse_json(raw):
    """The metadata document: strict JSON (no NaN, no infinity, no duplicate key)."""
    def refuse_constant(name):
        raise ModelFileError(f"metadata holds {name}")

    def finite_float(text):
        value = float(text)
        if not math.isfinite(value):
            raise ModelFileError(f"metadata holds the number {text}, out of range")
        return value

    def unique_keys(pairs):
        document = {}
        for key, value in pairs:
            if key in document:
                raise ModelFileError(f"metadata holds the key {key!r} twice")
            document[key] = value
        return document

    try:
        return json.loads(raw.tobytes().decode("utf-8"), parse_constant=refuse_constant,
                          parse_float=finite_float, object_pairs_hook=unique_keys)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"metadata is not valid JSON ({_one_line(exc)})") from None


def _check_shape(member, shape, expected):
    if shape != expected:
        raise ModelFileError(f"{member} has shape {shape}, expected {expected}")


def _read_member(zf, info, archive_size, dtype, shape, max_bytes=None):
    """Read one ``.npy`` member after checking its size, header, dtype and shape.

    ``shape`` is the expected shape, or None for a 1-D array of at most ``max_bytes`` bytes
    (a member that binds a size).
    """
    member = info.filename
    if info.flag_bits & _ENCRYPTED:
        raise ModelFileError(f"{member} is encrypted")
    if info.compress_type != zipfile.ZIP_STORED:
        raise ModelFileError(f"{member} is compressed; model files store their arrays as they are")
    if info.compress_size != info.file_size or info.file_size > archive_size:
        raise ModelFileError(f"{member} declares {info.file_size} bytes, more than the file holds")
    itemsize = np.dtype(dtype).itemsize
    if shape is not None:
        nbytes = math.prod(shape) * itemsize
        if not nbytes < info.file_size <= nbytes + _MAX_NPY_HEADER:
            raise ModelFileError(f"{member} holds {info.file_size} bytes; its shape {shape} "
                                 f"from the metadata needs {nbytes} plus a header")
    elif info.file_size > max_bytes + _MAX_NPY_HEADER:
        raise ModelFileError(f"{member} holds {info.file_size} bytes, more than {max_bytes}")
    with _parse_errors(), zf.open(info) as f:
        head = f.read(min(info.file_size, _MAX_NPY_HEADER))
        header = io.BytesIO(head)
        version = np.lib.format.read_magic(header)
        if version not in ((1, 0), (2, 0)):
            raise ModelFileError(f"{member}: .npy format version {version} is not supported")
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy warns before it re-parses an odd header
            found_shape, fortran, found_dtype = read_header(header, max_header_size=_MAX_NPY_HEADER)
        if found_dtype.str != dtype or found_dtype.hasobject:
            raise ModelFileError(f"{member} has dtype {found_dtype.str}, expected {dtype}")
        if fortran and len(found_shape) > 1:
            raise ModelFileError(f"{member} is in Fortran order, expected C order")
        if shape is None:
            if len(found_shape) != 1 or found_shape[0] < 0:
                raise ModelFileError(f"{member} has shape {found_shape}, expected 1-D")
            shape = found_shape
        _check_shape(member, found_shape, shape)
        start = header.tell()
        nbytes = math.prod(shape) * itemsize
        if start + nbytes != info.file_size:
            raise ModelFileError(f"{member} holds {info.file_size - start} bytes of data, its "
                                 f"shape {shape} needs {nbytes}")
        array = np.empty(shape, dtype=dtype)
        flat = array.reshape(-1).view(np.uint8)
        have = head[start:]
        flat[:len(have)] = np.frombuffer(have, dtype=np.uint8)
        pos = len(have)
        while pos < nbytes:
            k = f.readinto(memoryview(flat)[pos:pos + _READ_CHUNK])
            if not k:
                raise ModelFileError(f"{member} is truncated")
            pos += k
        if f.read(1):  # also reaches the end of the member, where zipfile checks its CRC
            raise ModelFileError(f"{member} is longer than its header says")
    return array

