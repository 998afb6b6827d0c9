"""fastembed.text: a fastText-format corpus to a dictionary and CSR bags of input rows.

>>> from fastembed.text import build_corpus
>>> d, enc = build_corpus("train.txt", word_ngrams=2)         # doctest: +SKIP
>>> enc.indices[enc.offsets[0]:enc.offsets[1]]                # rows of line 0  # doctest: +SKIP

See :mod:`fastembed.text.dictionary` for the exact semantics (fastText's
``Dictionary``), and :mod:`fastembed.text.scan` (pass 1), :mod:`fastembed.text.encode` (pass 2) and
:mod:`fastembed.text.hashing` for the Numba kernels.
Skipped lines are reported with ``warnings.warn(..., SkippedLinesWarning)``; a line longer
than 8 MiB is a ``CorpusError`` (see :func:`line_limit`).
"""

from .dictionary import EOS, CorpusError, Dictionary, fnv1a_hash
from .encoded import EncodedCorpus, SkippedLinesWarning
from .building import build_corpus
from .reader import line_limit, read_bytes

__all__ = [
    "EOS",
    "CorpusError",
    "Dictionary",
    "EncodedCorpus",
    "SkippedLinesWarning",
    "build_corpus",
    "fnv1a_hash",
    "line_limit",
    "read_bytes",
]
