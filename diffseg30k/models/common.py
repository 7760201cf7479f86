"""Pieces every detector family shares: preprocessing defaults, the config fields, the loss, the output."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import SemanticSegmenterOutput

from diffseg30k.labels import BINARY_ID2LABEL, ID2LABEL, IGNORE_INDEX, TASKS

#: Outputs beyond ``logits`` that inference (torch and exported runtimes) passes on when a model gives them.
EXTRA_OUTPUTS = ("confidence", "integrity")


@dataclass
class ForensicSegmenterOutput(SemanticSegmenterOutput):
    """``SemanticSegmenterOutput`` plus TruFor's outputs: ``confidence`` (B, 1, H/4, W/4) logits of the
    reliability map and ``integrity`` (B,) logits of "this image is edited" (None where a model has none)."""

    confidence: torch.FloatTensor | None = None
    integrity: torch.FloatTensor | None = None


#: ImageNet statistics, the normalisation of every backbone in the registry.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_id2label(task: str) -> dict[int, str]:
    """The label set of ``task``: 9 classes for 'semantic', background/edited for 'binary'."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    return dict(ID2LABEL if task == "semantic" else BINARY_ID2LABEL)


def diffseg_config_kwargs(task: str, id2label: dict[int, str] | None, crop_size: int,
                          model_name: str, stem: str | None = None) -> dict:
    """Config entries stored in every detector's ``config.json`` (labels, task, preprocessing, the
    input stem of :mod:`diffseg30k.models.stem`)."""
    id2label = {int(k): str(v) for k, v in (id2label or default_id2label(task)).items()}
    return {
        "id2label": id2label,
        "label2id": {v: k for k, v in id2label.items()},
        "diffseg_task": task,
        "diffseg_model": model_name,
        "image_mean": list(IMAGENET_MEAN),
        "image_std": list(IMAGENET_STD),
        "crop_size": int(crop_size),
        "semantic_loss_ignore_index": IGNORE_INDEX,
        "diffseg_stem": stem or "none",
    }


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor,
                      ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Pixel cross-entropy with logits upsampled (bilinear) to the label size, as SegFormer does."""
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    return F.cross_entropy(logits.float(), labels.long(), ignore_index=ignore_index)


def balanced_segmentation_loss(logits: torch.Tensor, labels: torch.Tensor,
                               ignore_index: int = IGNORE_INDEX, power: float = 1.0) -> torch.Tensor:
    """Class-balanced pixel cross-entropy: each class present in the batch is weighted by its inverse
    pixel frequency to the ``power`` (1: every class weighs the same in total, so small edited regions
    are not drowned by background; 0.5: square-root weighting, a milder push that trades fewer false
    alarms on background for less recall of the rare classes)."""
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    labels = labels.long()
    valid = labels[labels != ignore_index]
    counts = torch.bincount(valid, minlength=logits.shape[1]).float()
    weights = torch.where(counts > 0, counts.clamp(min=1.0).pow(-power), torch.zeros_like(counts))
    return F.cross_entropy(logits.float(), labels, weight=weights, ignore_index=ignore_index)


def sqrt_balanced_segmentation_loss(logits: torch.Tensor, labels: torch.Tensor,
                                    ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """:func:`balanced_segmentation_loss` with square-root inverse-frequency weights."""
    return balanced_segmentation_loss(logits, labels, ignore_index, power=0.5)


#: Keyed by :data:`diffseg30k.training.config.LOSS_NAMES`.
LOSSES = {"ce": segmentation_loss, "balanced": balanced_segmentation_loss,
          "sqrt-balanced": sqrt_balanced_segmentation_loss}


class ConvNormAct(nn.Sequential):
    """conv (no bias) -> BatchNorm -> ReLU; ``dilation`` keeps the spatial size for odd kernels."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1):
        padding = dilation * (kernel_size // 2)
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation,
                      bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
