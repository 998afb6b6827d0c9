"""The model file format (``.fe``).

A model file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays, loaded with
``allow_pickle=False``): every array of the model, plus ``__meta__``, a JSON document held as
bytes that names the format, its version and the settings. Nothing in it is pickled.
"""

import json
import os
import zipfile

import numpy as np

from fastembed.errors import ModelFileError
from fastembed.files import atomic_output

FORMAT_NAME = "fastembed-model"
FORMAT_VERSION = 1
_META_KEY = "__meta__"


def save_arrays(path, arrays, meta):
    """Write ``arrays`` (name -> ndarray) and ``meta`` (JSON-able dict) atomically to ``path``."""
    document = dict(meta, format=FORMAT_NAME, version=FORMAT_VERSION)
    payload = dict(arrays)
    payload[_META_KEY] = np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8)
    with atomic_output(path) as f:
        np.savez(f, **payload)


def load_arrays(path):
    """Read a model file; returns ``(arrays, meta)``.

    Raises
    ------
    ModelFileError
        With a one-line reason, for anything but a complete fastembed model file of a
        version this code reads.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such model file")
    if os.path.isdir(path):
        raise ModelFileError(f"{path}: is a directory, not a model file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a fastembed model file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if _META_KEY not in archive.files:
                raise ModelFileError(f"{path}: not a fastembed model file (no metadata)")
            meta = json.loads(archive[_META_KEY].tobytes().decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
                raise ModelFileError(f"{path}: not a fastembed model file")
            if meta.get("version") != FORMAT_VERSION:
                raise ModelFileError(
                    f"{path}: model format version {meta.get('version')} is not supported by "
                    f"this fastembed (reads version {FORMAT_VERSION})")
            arrays = {name: archive[name] for name in archive.files if name != _META_KEY}
    except ModelFileError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: corrupt or truncated model file ({exc})") from None
    return arrays, meta
