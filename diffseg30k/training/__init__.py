"""Training detectors with Accelerate (see :func:`diffseg30k.training.loop.train`)."""

from diffseg30k.training.config import PRESETS, TrainConfig
from diffseg30k.training.loop import TrainingDiverged, train

__all__ = ["PRESETS", "TrainConfig", "TrainingDiverged", "train"]
