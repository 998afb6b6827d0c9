"""fastembed.text: a fastText-format corpus to a dictionary and CSR bags of input rows.

>>> from fastembed.text import build_corpus
>>> d, enc = build_corpus("train.txt", word_ngrams=2)         # doctest: +SKIP
>>> enc.indices[enc.offsets[0]:enc.offsets[1]]                # rows of line 0  # doctest: +SKIP

See :mod:`fastembed.text.dictionary` for the exact semantics (fastText's
``Dictionary``), and :mod:`fastembed.text.scan` for the Numba kernels.
Skipped lines are reported with ``warnings.warn(..., SkippedLinesWarning)``.
"""

from fastembed import _numba_startup

_numba_startup.prepare()  # before any kernel compiles or loads: see that module

from .dictionary import (
    EOS,
    CorpusError,
    Dictionary,
    EncodedCorpus,
    SkippedLinesWarning,
    build_corpus,
    fnv1a_hash,
)
from .io import read_bytes

__all__ = [
    "EOS",
    "CorpusError",
    "Dictionary",
    "EncodedCorpus",
    "SkippedLinesWarning",
    "build_corpus",
    "fnv1a_hash",
    "read_bytes",
]
