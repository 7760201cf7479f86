"""Training detectors with Accelerate (see :func:`diffseg30k.training.loop.train`)."""

from diffseg30k.lazy import lazy_exports

#: The public API (imported on first use: ``diffseg30k train --help`` needs no torch).
__all__, __getattr__ = lazy_exports(__name__, {
    "PRESETS": "diffseg30k.training.config",
    "TrainConfig": "diffseg30k.training.config",
    "TrainingDiverged": "diffseg30k.training.loop",
    "train": "diffseg30k.training.loop",
})
