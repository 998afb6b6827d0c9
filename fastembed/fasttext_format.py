"""Kept for imports written before :mod:`fastembed.fasttext`: the same names."""

from fastembed.fasttext import (ARG_NAMES, FASTTEXT_MAGIC, FASTTEXT_VERSION, LABEL, LOSS_NAMES, MODEL_NAMES,
                                WORD, FastTextFile, read_fasttext, write_fasttext)

__all__ = ["ARG_NAMES", "FASTTEXT_MAGIC", "FASTTEXT_VERSION", "LABEL", "LOSS_NAMES", "MODEL_NAMES", "WORD",
           "FastTextFile", "read_fasttext", "write_fasttext"]
