"""Files: atomic writes, and outputs that never overwrite inputs.

An output is written to a temporary file beside its destination and renamed over it only when
complete, so an interrupted or failed run never leaves a half-written file or destroys the
previous one. The file gets the permissions any other tool would give it: those of the file it
replaces, or ``0666`` less the umask for a new one (``mkstemp`` alone would leave ``0600``).
"""

import contextlib
import os
import stat
import tempfile
import threading

from fastembed.errors import ArgumentError

__all__ = ["atomic_output", "check_output_is_not_an_input"]

_umask_lock = threading.Lock()


def current_umask():
    """The process's umask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:  # Linux >= 4.7
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    with _umask_lock:  # elsewhere: set and restore (other threads' files may see 0 meanwhile)
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _new_file_mode(path):
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        return stat.S_IMODE(st.st_mode)
    return 0o666 & ~current_umask()


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
        os.fchmod(fd, _new_file_mode(path))
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_output_is_not_an_input(output, inputs):
    """Raise :class:`ArgumentError` if ``output`` exists and is the same file as an input.

    Files are compared by device and inode (symbolic links followed), so another name, a
    hard link or a symlink to an input is caught too. Inputs that do not exist are skipped:
    reading them reports that.
    """
    try:
        out = os.stat(output)
    except (OSError, ValueError):
        return
    for name in inputs:
        if name is None:
            continue
        try:
            st = os.stat(name)
        except (OSError, ValueError):
            continue
        if (st.st_dev, st.st_ino) == (out.st_dev, out.st_ino):
            raise ArgumentError(
                f"output {os.fspath(output)} is the input {os.fspath(name)}; it would be "
                f"overwritten, so nothing was done")
