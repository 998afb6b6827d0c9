"""The classifier: training (:mod:`.training`), the trained :class:`Model` (:mod:`.classifier`),
and their Numba kernels (:mod:`.forward`, :mod:`.line_predict`, :mod:`.train_step`, :mod:`.rng`).

``train_supervised`` loads lazily: loading a model to predict imports no training kernel.
"""

from fastembed.model.classifier import Model

__all__ = ["Model", "train_supervised"]


def __getattr__(name):
    if name == "train_supervised":
        from fastembed.model.training import train_supervised

        return train_supervised
    raise AttributeError(f"module 'fastembed.model' has no attribute {name!r}")
