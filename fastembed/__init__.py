"""fastembed: Numba-accelerated sparse-gradient embedding tables and a fastText-style classifier.

Layers, each importable on its own:

* ``fastembed.kernels``  -- pure Numba kernels for embedding lookups and sparse row-wise updates.
* ``fastembed.text``     -- a fastText-format corpus to a dictionary and CSR bags of ids.
* ``fastembed.model``    -- the classifier, its training loop and its numerical kernels.
* ``fastembed.settings`` -- every training setting, declared once (standard library only).
* ``fastembed.errors``   -- the errors a user can cause.
* ``fastembed.cli``      -- the ``fastembed`` command.

The names below load lazily, so ``import fastembed`` (and ``fastembed --help``) stays cheap
until a model is trained or loaded.
"""

from fastembed._version import __version__
from fastembed.errors import ArgumentError, CorpusError, FastembedError, ModelFileError, TrainingDiverged
from fastembed.settings import TrainArgs

__all__ = ["ArgumentError", "CorpusError", "FastembedError", "Model", "ModelFileError", "TrainArgs",
           "TrainingDiverged", "WordVectors", "__version__", "load_model", "train_supervised",
           "train_unsupervised"]


def load_model(path):
    """Load a model saved with :meth:`Model.save` or :meth:`WordVectors.save`, or a fastText
    ``.bin``/``.ftz``: a classifier (predicting as fastText) or skipgram/cbow word vectors."""
    from fastembed.model import Model
    from fastembed.wordvec import WordVectors, is_word_vector_file

    if is_word_vector_file(path):
        return WordVectors.load(path)
    try:
        return Model.load(path)
    except ModelFileError:
        # Only a file that is no fastembed model asks whether it is fastText's: a .fe model never
        # imports fastembed.fasttext (7 ms of CPU, measured in the closing note of issue 12).
        from fastembed.fasttext.reading import is_fasttext_file

        if not is_fasttext_file(path):
            raise
    from fastembed.fasttext.model import FastTextModel

    return FastTextModel.load(path)


def __getattr__(name):
    if name in ("Model", "train_supervised"):
        import fastembed.model

        return getattr(fastembed.model, name)
    if name in ("WordVectors", "train_unsupervised"):
        import fastembed.wordvec

        return getattr(fastembed.wordvec, name)
    raise AttributeError(f"module 'fastembed' has no attribute {name!r}")
