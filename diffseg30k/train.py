"""Train a detector: ``from diffseg30k.train import TrainConfig, train`` (see :mod:`diffseg30k.training`)."""

from diffseg30k.training import PRESETS, TrainConfig, TrainingDiverged, train

__all__ = ["PRESETS", "TrainConfig", "TrainingDiverged", "train"]
