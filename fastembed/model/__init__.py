"""The classifier: arguments, training, the trained model and its numerical kernels.

Names load lazily, so that ``fastembed.model.args`` (plain Python) can be read, for the
command line's help, without importing Numba.
"""

__all__ = ["ArgumentError", "Model", "TrainArgs", "TrainingDiverged", "train_supervised"]

_HOMES = {
    "ArgumentError": "fastembed.model.args",
    "TrainArgs": "fastembed.model.args",
    "Model": "fastembed.model.model",
    "TrainingDiverged": "fastembed.model.train",
    "train_supervised": "fastembed.model.train",
}


def __getattr__(name):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'fastembed.model' has no attribute {name!r}")
