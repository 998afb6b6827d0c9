"""Word vectors: fastText's skipgram and cbow with character n-grams (``train_unsupervised``).

* :mod:`.corpus`   -- raw text to vocabulary, token stream and subword rows;
* :mod:`.kernels`  -- the Numba training kernels (negative sampling, subsampling);
* :mod:`.training` -- :func:`train_unsupervised`, on the shared worker loop;
* :mod:`.vectors`  -- :class:`WordVectors`: look-ups, neighbours, analogies, files.

``train_unsupervised`` loads lazily: :func:`fastembed.load_model` asks this package whether a
file holds word vectors, and loading a classifier to predict then imports no training module.
"""

from fastembed.wordvec.vectors import WordVectors, is_word_vector_file

__all__ = ["WordVectors", "is_word_vector_file", "train_unsupervised"]


def __getattr__(name):
    if name == "train_unsupervised":
        from fastembed.wordvec.training import train_unsupervised

        return train_unsupervised
    raise AttributeError(f"module 'fastembed.wordvec' has no attribute {name!r}")
