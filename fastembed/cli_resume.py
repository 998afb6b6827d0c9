"""The command that resumes an interrupted ``fastembed train``: what Ctrl-C prints when the run's
checkpoint holds its last complete epoch (so that the user need not rebuild the command)."""

import os
import shlex

from fastembed.settings import DEFAULT_MAX_LINE_BYTES

__all__ = ["file_identity", "resume_command"]


def file_identity(path):
    """What tells whether ``path`` was replaced: (inode, size, mtime), or None if absent."""
    try:
        st = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def resume_command(corpus, output, checkpoint, given):
    """The ``fastembed train`` command that resumes from ``checkpoint``: the checkpoint holds
    every stored setting, so only the run's own options (``given``: (option, value) pairs) are
    repeated."""
    from fastembed.text.reader import max_line_bytes

    words = ["fastembed", "train"] + ([os.fspath(corpus)] if corpus is not None else [])
    words += ["--resume", os.fspath(checkpoint), "--checkpoint", os.fspath(checkpoint),
              "-o", os.fspath(output)]
    for option, value in given:  # (option, value): a flag when the value is a bool
        if value is None or value is False:
            continue
        words += [option] if value is True else [option, os.fspath(value) if isinstance(
            value, os.PathLike) else str(value)]
    if max_line_bytes() != DEFAULT_MAX_LINE_BYTES:
        words += ["--max-line-bytes", str(max_line_bytes())]
    return shlex.join(words)
