"""The classifier: arguments, training, the trained model and its numerical kernels."""

from fastembed import _numba_startup

_numba_startup.prepare()  # before any kernel compiles or loads: see that module

from fastembed.model.args import ArgumentError, TrainArgs
from fastembed.model.model import Model
from fastembed.model.train import TrainingDiverged, train_supervised

__all__ = ["ArgumentError", "Model", "TrainArgs", "TrainingDiverged", "train_supervised"]
