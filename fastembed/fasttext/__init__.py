"""fastText's model files and models.

* :mod:`.layout` -- the ``.bin``/``.ftz`` layout, :class:`FastTextFile`, consistency rules;
* :mod:`.reading` / :mod:`.writing` -- :func:`read_fasttext` (untrusted input) and
  :func:`write_fasttext`;
* :mod:`.predict` -- fastText's exact forward pass (its line, its sigmoid table, its ``+ 1e-5``);
* :mod:`.model` -- :class:`FastTextModel`, a supervised fastText file behind fastembed's ``Model``
  surface, and :func:`to_fasttext`, a fastembed model as a fastText file.
"""

from fastembed.fasttext.layout import (
                                       ARG_NAMES,
                                       FASTTEXT_MAGIC,
                                       FASTTEXT_VERSION,
                                       LABEL,
                                       LOSS_NAMES,
                                       MODEL_NAMES,
                                       WORD,
                                       FastTextFile,
)
from fastembed.fasttext.reading import is_fasttext_file, read_fasttext
from fastembed.fasttext.writing import write_fasttext

__all__ = ["ARG_NAMES", "FASTTEXT_MAGIC", "FASTTEXT_VERSION", "LABEL", "LOSS_NAMES", "MODEL_NAMES", "WORD",
           "FastTextFile", "is_fasttext_file", "read_fasttext", "write_fasttext"]
