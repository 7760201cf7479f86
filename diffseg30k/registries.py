"""Every registry of the toolkit, by the name ``diffseg30k list`` uses (imported on demand)."""

from __future__ import annotations

from diffseg30k.registry import Registry

__all__ = ["registries"]


def registries() -> dict[str, Registry]:
    """``{"detectors": DETECTORS, "classifiers": ..., "editors": ..., "distortions": ..., ...}``."""
    from diffseg30k.data.distortions import DISTORTION_KINDS
    from diffseg30k.experiments.steps import STEPS
    from diffseg30k.experiments.tables import TABLES
    from diffseg30k.generation.editors.registry import EDITORS
    from diffseg30k.models.classifiers import CLASSIFIERS
    from diffseg30k.models.registry import DETECTORS

    return {"detectors": DETECTORS, "classifiers": CLASSIFIERS, "editors": EDITORS,
            "distortions": DISTORTION_KINDS, "steps": STEPS, "tables": TABLES}
