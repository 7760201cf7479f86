"""The detector registry: one :class:`DetectorSpec` per trainable detector, built by name.

Adding a detector = one module in ``diffseg30k/models/`` holding its ``PreTrainedModel`` (registered
with the Auto classes) and ``DETECTORS.register(DetectorSpec(...))``; the registry imports every
module of the package on its first lookup, so training, the CLI and the benchmark find it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedModel

from diffseg30k.models.common import diffseg_config_kwargs
from diffseg30k.registry import Registry, RegistryError

__all__ = ["DETECTORS", "DetectorSpec", "RegistryError", "available_models", "build_model", "family_models",
           "get_spec", "load_model"]


@dataclass(frozen=True)
class DetectorSpec:
    """A registry entry: everything training, the CLI and the benchmark report need of a detector.

    ``optimizer`` picks the paper preset ('adamw' for transformers, 'sgd' CNNs);
    ``backbone_prefixes`` name the parameters trained at the base learning rate (the rest, the
    heads, at ``lr * head_lr_mult``); ``display`` is the family's name in reports and figures,
    ``abbreviation`` its Fig. 6 column prefix; ``benchmark`` names the benchmark configurations
    ('quick', 'paper') in which this entry stands for its family (``benchmark --families``).
    """

    name: str
    family: str
    description: str
    build: Callable[[dict, str | None], PreTrainedModel]
    pretrained: str | None
    optimizer: str
    tiny: bool = False
    backbone_prefixes: tuple[str, ...] = ("backbone.",)
    display: str = ""
    abbreviation: str = ""
    #: Whether ``build_model(stem=...)`` can put an input stem (:mod:`diffseg30k.models.stem`) first
    #: (every family here does; a detector that cannot says False).
    takes_stem: bool = True
    benchmark: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        return self.display or self.family

    @property
    def short_name(self) -> str:
        return self.abbreviation or self.family[:3].upper()


def _describe(spec: DetectorSpec) -> str:
    return f"{spec.family:<14} {spec.pretrained or 'random init':<22} {spec.description}"


#: Every detector; entries register in their own module of ``diffseg30k.models``.
DETECTORS: Registry[DetectorSpec] = Registry("detector", package="diffseg30k.models", describe=_describe)
#: Backwards-compatible name (a mapping-like view: ``name in REGISTRY``, ``REGISTRY[name]``).
REGISTRY = DETECTORS


def available_models() -> list[str]:
    """Names accepted by :func:`build_model` and ``diffseg30k train --model``."""
    return DETECTORS.names()


def get_spec(name: str) -> DetectorSpec:
    """The registry entry of ``name``; a :class:`RegistryError` suggesting near names otherwise."""
    return DETECTORS.get(name)


def spec_of_family(family: str) -> DetectorSpec | None:
    """The first registered spec of ``family`` (display names of report rows), or None."""
    return next((s for s in DETECTORS.values() if s.family == family), None)


def family_models(config: str) -> dict[str, str]:
    """Family -> registry name of the entry standing for it in benchmark configuration ``config``
    (the specs' ``benchmark`` field), in registration order; two entries of a family raise."""
    table: dict[str, str] = {}
    for spec in DETECTORS.values():
        if config in spec.benchmark:
            if spec.family in table:
                raise ValueError(f"family {spec.family!r} has two {config!r} benchmark entries: "
                                 f"{table[spec.family]} and {spec.name}")
            table[spec.family] = spec.name
    return table


def build_model(name: str, task: str = "semantic", id2label: dict[int, str] | None = None,
                from_scratch: bool = False, crop_size: int = 512,
                pretrained: str | None = None, stem: str | None = None) -> PreTrainedModel:
    """A detector ready to train. Pretrained backbone weights (Hub id, or ``pretrained`` -- a Hub id
    or local folder -- overriding it) load unless ``from_scratch``; tiny models are always random.
    ``stem`` ('srm', 'bayar') puts a full-resolution high-pass input stem (:mod:`diffseg30k.models.stem`)
    before the encoder (every registered family takes one; config ``diffseg_stem``)."""
    spec = get_spec(name)
    if stem not in (None, "none") and not spec.takes_stem:
        raise ValueError(f"detector {name!r} takes no input stem (stem={stem!r})")
    extra = diffseg_config_kwargs(task, id2label, crop_size, name, stem)
    weights = None if from_scratch or spec.tiny else (pretrained or spec.pretrained)
    if weights:
        from diffseg30k.checkpoint import check_pretrained

        check_pretrained(weights)  # offline / missing folder: said at once, not as a missing-file error
    return spec.build(extra, weights)


def load_model(path: str | Path, revision: str | None = None) -> PreTrainedModel:
    """Load a saved detector (``config.json`` + ``model.safetensors``); never unpickles anything.

    Every detector module is imported first (the registry's package scan), so the Auto classes know
    each family's config type in any process.
    """
    from transformers import AutoModelForSemanticSegmentation

    DETECTORS.names()  # imports every detector module: registers their Auto classes
    return AutoModelForSemanticSegmentation.from_pretrained(
        str(path), revision=revision, use_safetensors=True, trust_remote_code=False)


def register_auto(config_class: type, model_class: type) -> None:
    """Register a detector's config and model with transformers' ``AutoConfig`` and
    ``AutoModelForSemanticSegmentation`` (idempotent), so ``from_pretrained`` finds them by model_type."""
    from transformers import AutoConfig, AutoModelForSemanticSegmentation

    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModelForSemanticSegmentation.register(config_class, model_class, exist_ok=True)
