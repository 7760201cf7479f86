"""DiffSeg30k: localized AI-edit detection as semantic segmentation, the Hugging Face way.

Heavy dependencies load lazily: ``import diffseg30k`` is cheap, and the public names below are
imported from their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_benchmark": "diffseg30k.data.load",
    "DiffSegMetric": "diffseg30k.metrics",
    "Detector": "diffseg30k.detector",
    "DetectionResult": "diffseg30k.detector",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'diffseg30k' has no attribute {name!r}")
