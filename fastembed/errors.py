"""fastembed's errors: every failure a user can cause, each with a one-line message.

The command line prints ``fastembed: error: <message>`` for these (and for ``OSError``) and
lets anything else show its traceback: an ``IndexError`` from a bug is a bug, not a user error.
Each class also derives from the built-in exception a Python caller would expect, so that
``except ValueError`` keeps working.
"""

__all__ = [
    "ArgumentError",
    "CorpusError",
    "FastembedError",
    "ModelFileError",
    "TrainingDiverged",
]


class FastembedError(Exception):
    """Base of the errors a user's input or settings cause; the message is one line."""


class ArgumentError(FastembedError, ValueError):
    """A setting or argument is of the wrong type or out of range; the message names it."""


class CorpusError(FastembedError, ValueError):
    """A corpus cannot be used (empty, no labelled line, a line too long, corrupt compression)."""


class ModelFileError(FastembedError, ValueError):
    """A model file is missing, truncated, corrupt, foreign, inconsistent or of an unknown version."""


class TrainingDiverged(FastembedError, ArithmeticError):
    """The training loss became NaN or infinite; the message names the learning rate."""
