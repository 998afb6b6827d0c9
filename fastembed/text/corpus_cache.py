"""Where an out-of-core corpus is encoded: a temporary directory, or a cache reused across runs.

:func:`load_corpus` is what training calls. Without ``cache_dir`` the files are written to a
fresh temporary directory that is deleted as soon as they are mapped (the mappings keep them
alive until the corpus is garbage collected, even if the process dies). With ``cache_dir`` they
are kept in ``cache_dir/corpus-<key>/``, ``<key>`` a hash of the file's real path and of every
setting that changes the encoding (and of the line limit and the format version); the entry's
``meta.json`` records the file's identity (size, mtime in ns, inode, device). A second run on
the same file and settings maps the entry and skips both passes; an entry whose identity no
longer matches is stale and rebuilt in place.

Cache files are untrusted input, like model files: ``meta.json`` is size-limited and
type-checked, the dictionary is loaded with ``allow_pickle=False`` and rebuilt through its
validating constructor, every file's size must match its recorded length, and every array is
checked (offsets start at 0, never decrease, end at the array they index; each line has a
label; rows and labels are in range; token counts are not negative) before a kernel sees it.
A corrupt entry is reported with a warning and rebuilt. An entry is written in a temporary
directory beside it and renamed into place, so a crash never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
import zipfile

import numpy as np

from .dictionary import Dictionary
from .out_of_core import ARRAYS, encode_to_files, map_corpus
from .reader import max_line_bytes

__all__ = ["CacheWarning", "load_corpus"]

_FORMAT = 1
_META = "meta.json"
_DICTIONARY = "dictionary.npz"
_MAX_META_BYTES = 1 << 16
_CHECK_ITEMS = 8 << 20  # elements per piece of the validation pass


class CacheWarning(UserWarning):
    """A corpus cache entry was corrupt (and is rebuilt), or could not be stored."""


def _identity(path):
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "device": st.st_dev}


def load_corpus(path, cache_dir=None, threads=0, **settings):
    """``(Dictionary, MappedCorpus)`` of the corpus file ``path``, encoded out of core.

    ``settings`` are :func:`~fastembed.text.out_of_core.encode_to_files`'s keywords; ``threads``
    (at most this many read the file; 0: every usable core) is not one of the cache entry's
    settings, since the encoding does not depend on it.
    """
    path = os.fspath(path)
    identity = _identity(path)  # FileNotFoundError names the file
    if cache_dir is None:
        work = tempfile.mkdtemp(prefix="fastembed-corpus-")
        try:
            d, counts, n_skipped = encode_to_files(path, work, threads=threads, **settings)
            return d, map_corpus(work, counts, n_skipped)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    key_settings = dict(sorted(settings.items()), max_line_bytes=max_line_bytes(), format=_FORMAT)
    key = json.dumps({"path": os.path.realpath(path), "settings": key_settings}, sort_keys=True)
    entry = os.path.join(os.fspath(cache_dir), "corpus-" + hashlib.sha256(key.encode()).hexdigest()[:24])
    meta = _read_meta(entry)
    if meta is not None and meta.get("identity") == identity and meta.get("settings") == key_settings:
        try:
            return _open_entry(entry, meta)
        except (ValueError, KeyError, TypeError, OSError, zipfile.BadZipFile) as exc:
            warnings.warn(f"corpus cache {entry} is corrupt ({exc}); rebuilding it", CacheWarning,
                          stacklevel=3)
    os.makedirs(cache_dir, exist_ok=True)
    work = tempfile.mkdtemp(dir=cache_dir, prefix=".building-")
    try:
        d, counts, n_skipped = encode_to_files(path, work, threads=threads, **settings)
        corpus = map_corpus(work, counts, n_skipped)
        if _identity(path) != identity:
            warnings.warn(f"{path} changed while it was read: its encoding is not cached", CacheWarning,
                          stacklevel=3)
            return d, corpus
        np.savez(os.path.join(work, _DICTIONARY), **d.to_arrays())
        meta = {"format": _FORMAT, "path": os.path.realpath(path), "identity": identity,
                "settings": key_settings, "counts": counts, "n_skipped": n_skipped, "n_rows": d.n_rows,
                "nlabels": d.nlabels}
        with open(os.path.join(work, _META), "w") as f:
            json.dump(meta, f)
        _replace_dir(work, entry)
        return d, corpus
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _replace_dir(new, entry):
    """Move the directory ``new`` to ``entry``, replacing a stale one; a lost race keeps theirs."""
    if os.path.exists(entry):
        old = tempfile.mkdtemp(dir=os.path.dirname(entry), prefix=".stale-")
        try:
            os.replace(entry, os.path.join(old, "entry"))
        except OSError:
            pass
        shutil.rmtree(old, ignore_errors=True)
    try:
        os.rename(new, entry)
    except OSError as exc:  # another run stored it first; ours is still mapped and is removed
        warnings.warn(f"corpus cache {entry} was not stored ({exc})", CacheWarning, stacklevel=4)


def _read_meta(entry):
    """The entry's meta.json as a dict, or None when there is none or it is unreadable."""
    try:
        with open(os.path.join(entry, _META), "rb") as f:
            raw = f.read(_MAX_META_BYTES + 1)
        meta = json.loads(raw) if len(raw) <= _MAX_META_BYTES else None
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == _FORMAT else None


def _open_entry(entry, meta):
    """Load and check a cache entry (untrusted), then map it."""
    counts = meta["counts"]
    if not isinstance(counts, dict) or set(counts) != set(ARRAYS) or not all(
            type(v) is int and v >= 0 for v in counts.values()):
        raise ValueError("bad array lengths in meta.json")
    n_skipped = meta["n_skipped"]
    if type(n_skipped) is not int or n_skipped < 0:
        raise ValueError("bad n_skipped in meta.json")
    with np.load(os.path.join(entry, _DICTIONARY), allow_pickle=False) as arrays:
        d = Dictionary.from_arrays({k: arrays[k] for k in arrays.files})
    settings = meta["settings"]
    for k in ("word_ngrams", "minn", "maxn", "min_count", "min_count_label"):
        if k in settings and getattr(d, k) != settings[k]:
            raise ValueError(f"the dictionary's {k} is not the cached setting's")
    corpus = map_corpus(entry, counts, n_skipped)
    _check_arrays(entry, counts, d)
    return d, corpus


def _pieces(path, dtype, n):
    with open(path, "rb") as f:
        for start in range(0, n, _CHECK_ITEMS):
            piece = np.fromfile(f, dtype=dtype, count=min(_CHECK_ITEMS, n - start))
            if piece.size != min(_CHECK_ITEMS, n - start):
                raise ValueError(f"{path}: truncated")
            yield piece


def _check_offsets(path, n, end, strict):
    """Offsets start at 0, increase (strictly: each line has an item), and end at ``end``."""
    prev = None
    for piece in _pieces(path, np.int64, n):
        if prev is None and piece[0] != 0:
            raise ValueError(f"{path}: does not start at 0")
        steps = np.diff(piece, prepend=piece[:1] if prev is None else [prev])[0 if prev is not None else 1:]
        if steps.size and steps.min() < (1 if strict else 0):
            raise ValueError(f"{path}: offsets decrease" + (" or repeat" if strict else ""))
        prev = piece[-1]
    if prev != end:
        raise ValueError(f"{path}: ends at {prev}, expected {end}")


def _check_range(path, dtype, n, high):
    for piece in _pieces(path, dtype, n):
        if piece.min() < 0 or piece.max() >= high:
            raise ValueError(f"{path}: values outside [0, {high})")


def _check_arrays(entry, counts, d):
    n_lines = counts["ntokens"]
    if counts["offsets"] != n_lines + 1 or counts["label_offsets"] != n_lines + 1:
        raise ValueError("offsets and ntokens disagree")
    p = {name: os.path.join(entry, name) for name in ARRAYS}
    _check_offsets(p["offsets"], n_lines + 1, counts["indices"], strict=False)
    _check_offsets(p["label_offsets"], n_lines + 1, counts["label_indices"], strict=True)
    _check_range(p["indices"], np.int32, counts["indices"], d.n_rows)
    _check_range(p["label_indices"], np.int32, counts["label_indices"], d.nlabels)
    _check_range(p["ntokens"], np.int32, n_lines, 2**31 - 1)
