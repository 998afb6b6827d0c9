"""The classifier: training (:mod:`.training`), the trained :class:`Model` (:mod:`.classifier`),
and their Numba kernels (:mod:`.forward`, :mod:`.train_step`, :mod:`.rng`)."""

from fastembed.model.classifier import Model
from fastembed.model.training import train_supervised

__all__ = ["Model", "train_supervised"]
