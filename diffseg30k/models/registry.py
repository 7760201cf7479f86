"""The detector registry: one entry per trainable detector, built by name.

Adding a detector = one module with its ``PreTrainedModel`` (registered with the Auto classes) and
one :class:`DetectorSpec` below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedModel

from diffseg30k.models.common import diffseg_config_kwargs


@dataclass(frozen=True)
class DetectorSpec:
    """A registry entry. ``optimizer`` picks the paper preset ('adamw' for transformers, 'sgd' CNNs)."""

    name: str
    family: str
    description: str
    build: Callable[[dict, str | None], PreTrainedModel]
    pretrained: str | None
    optimizer: str
    tiny: bool = False


def _segformer(variant: str) -> Callable[[dict, str | None], PreTrainedModel]:
    def build(extra: dict, pretrained: str | None) -> PreTrainedModel:
        from diffseg30k.models.segformer import build_segformer

        return build_segformer(variant, extra, pretrained)
    return build


def _resnet_head(family: str, tiny: bool) -> Callable[[dict, str | None], PreTrainedModel]:
    def build(extra: dict, pretrained: str | None) -> PreTrainedModel:
        from diffseg30k.models import deeplabv3plus, fcn8s
        from diffseg30k.models.resnet_backbone import RESNET50, RESNET_TINY, load_pretrained_resnet

        resnet = load_pretrained_resnet(pretrained) if pretrained else None
        backbone = resnet.config.to_dict() if resnet is not None else dict(RESNET_TINY if tiny else RESNET50)
        if family == "deeplabv3plus":
            sizes = dict(aspp_channels=32, low_level_channels=16, decoder_channels=32) if tiny else {}
            model = deeplabv3plus.DeepLabV3PlusForSemanticSegmentation(
                deeplabv3plus.DeepLabV3PlusConfig(backbone_config=backbone, **sizes, **extra))
        else:
            sizes = dict(head_channels=32) if tiny else {}
            model = fcn8s.FCN8sForSemanticSegmentation(fcn8s.FCN8sConfig(backbone_config=backbone, **sizes,
                                                                         **extra))
        if resnet is not None:
            model.load_backbone_weights(resnet)
        return model
    return build


_SPECS = [
    DetectorSpec("segformer-tiny", "segformer", "tiny random-init SegFormer for CPU and tests",
                 _segformer("tiny"), None, "adamw", tiny=True),
    *[DetectorSpec(f"segformer-{v}", "segformer", f"SegFormer-{v.upper()} (encoder nvidia/mit-{v})",
                   _segformer(v), f"nvidia/mit-{v}", "adamw") for v in ("b0", "b1", "b2", "b3", "b4", "b5")],
    DetectorSpec("deeplabv3plus-r50", "deeplabv3plus", "DeepLabV3+ (ASPP, OS16) on ResNet-50",
                 _resnet_head("deeplabv3plus", False), "microsoft/resnet-50", "sgd"),
    DetectorSpec("deeplabv3plus-tiny", "deeplabv3plus", "tiny random-init DeepLabV3+ for CPU and tests",
                 _resnet_head("deeplabv3plus", True), None, "sgd", tiny=True),
    DetectorSpec("fcn8s-r50", "fcn8s", "FCN-8s (stride 8/16/32 skips) on ResNet-50",
                 _resnet_head("fcn8s", False), "microsoft/resnet-50", "sgd"),
    DetectorSpec("fcn8s-tiny", "fcn8s", "tiny random-init FCN-8s for CPU and tests",
                 _resnet_head("fcn8s", True), None, "sgd", tiny=True),
]
REGISTRY: dict[str, DetectorSpec] = {spec.name: spec for spec in _SPECS}


def available_models() -> list[str]:
    """Names accepted by :func:`build_model` and ``diffseg30k train --model``."""
    return list(REGISTRY)


def get_spec(name: str) -> DetectorSpec:
    """The registry entry of ``name``; a clear error listing the names otherwise."""
    if name not in REGISTRY:
        raise KeyError(f"unknown detector {name!r}; available: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def build_model(name: str, task: str = "semantic", id2label: dict[int, str] | None = None,
                from_scratch: bool = False, crop_size: int = 512,
                pretrained: str | None = None) -> PreTrainedModel:
    """A detector ready to train. Pretrained backbone weights (Hub id, or ``pretrained`` -- a Hub id
    or local folder -- overriding it) load unless ``from_scratch``; tiny models are always random."""
    spec = get_spec(name)
    extra = diffseg_config_kwargs(task, id2label, crop_size, name)
    weights = None if from_scratch or spec.tiny else (pretrained or spec.pretrained)
    if weights:
        from diffseg30k.checkpoint import check_pretrained

        check_pretrained(weights)  # offline / missing folder: said at once, not as a missing-file error
    return spec.build(extra, weights)


def load_model(path: str | Path, revision: str | None = None) -> PreTrainedModel:
    """Load a saved detector (``config.json`` + ``model.safetensors``); never unpickles anything."""
    from transformers import AutoModelForSemanticSegmentation

    import diffseg30k.models.deeplabv3plus  # noqa: F401  (registers the Auto classes)
    import diffseg30k.models.fcn8s  # noqa: F401

    return AutoModelForSemanticSegmentation.from_pretrained(
        str(path), revision=revision, use_safetensors=True, trust_remote_code=False)
