"""Files: atomic writes.

An output is written to a temporary file beside its destination and renamed over it only when
complete, so an interrupted or failed run never leaves a half-written file or destroys the
previous one.
"""

import contextlib
import os
import tempfile

__all__ = ["atomic_output"]


@contextlib.contextmanager
def atomic_output(path, mode="wb"):
    """Open a temporary file beside ``path``; on success, fsync it and rename it over ``path``.

    On any error, or an interrupt, the temporary file is removed and ``path`` is untouched,
    so a failed run never destroys an existing file.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
