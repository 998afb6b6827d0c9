"""The classifier: arguments, training, the trained model and its numerical kernels."""

from fastembed.model.args import ArgumentError, TrainArgs
from fastembed.model.model import Model
from fastembed.model.train import TrainingDiverged, train_supervised

__all__ = ["ArgumentError", "Model", "TrainArgs", "TrainingDiverged", "train_supervised"]
