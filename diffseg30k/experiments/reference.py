"""What every paper table shares: metric key lists, the generator hold-outs, reported training times.

The paper's numbers (Ci et al. 2025, validation set, 512x512 training) live with their table, one
module each under :mod:`diffseg30k.experiments.tables` (``tables.tab2.PAPER`` ...); ``TAB2`` ...
``TAB8`` here still name them. Keys follow the metric's output names.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HOLDOUTS", "HOLDOUT_NAMES", "IMAGE_KEYS", "SEG_KEYS", "TRAINING_HOURS_4090", "holdout_key", "seg"]

SEG_KEYS = ("binary_accuracy", "binary_miou", "binary_bf1", "semantic_accuracy", "semantic_miou",
            "semantic_bf1")
IMAGE_KEYS = ("image_accuracy", "image_ap")


def seg(*values: float) -> dict[str, float]:
    """A row of the six pixel metrics, in :data:`SEG_KEYS` order."""
    return dict(zip(SEG_KEYS, values))


#: The three 6->2 generator hold-outs of Tab. 4/6 (label names), with the paper's row names.
HOLDOUTS: tuple[tuple[str, str], ...] = (("flux", "hunyuan"), ("sd2", "sd35"), ("glide", "kolors"))
HOLDOUT_NAMES = {("flux", "hunyuan"): "Flux_Hunyuan", ("sd2", "sd35"): "SD2_SD3.5",
                 ("glide", "kolors"): "Glide_Kolors"}

#: Training times the paper reports (hours on one NVIDIA RTX 4090, 512x512, semantic task).
TRAINING_HOURS_4090 = {"fcn8s": 8.0, "segformer": 6.0, "deeplabv3plus": 3.0}


def holdout_key(pair: tuple[str, str] | list[str]) -> str:
    """The key of a generator hold-out pair, e.g. ``flux+hunyuan``."""
    return "+".join(pair)


def __getattr__(name: str) -> Any:
    """``TAB2`` ... : the paper numbers of the registered table of that name."""
    if name.startswith("TAB") and name[3:].isdigit():
        from diffseg30k.experiments.tables import TABLES

        if name.lower() in TABLES:
            return TABLES.get(name.lower()).paper
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
