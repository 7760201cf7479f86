"""FCN-8s (Long et al., CVPR 2015) over transformers' ResNet: class scores at stride 32, fused with
scores from the stride-16 and stride-8 features (the "skip" architecture), logits at stride 8."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig

from diffseg30k.models.common import ConvNormAct
from diffseg30k.models.registry import DETECTORS, DetectorSpec, register_auto
from diffseg30k.models.resnet_backbone import (
    ResNetSegmentationConfigMixin,
    ResNetSegmentationModel,
    resnet_detector_builder,
)


class FCN8sConfig(ResNetSegmentationConfigMixin, PretrainedConfig):
    """Configuration of :class:`FCN8sForSemanticSegmentation`."""

    model_type = "diffseg-fcn8s"

    def __init__(self, backbone_config: dict | None = None, head_channels: int = 512,
                 dropout: float = 0.1, semantic_loss_ignore_index: int = 255, **kwargs):
        if backbone_config is not None and not isinstance(backbone_config, dict):
            backbone_config = backbone_config.to_dict()
        self.backbone_config = backbone_config
        self.head_channels = head_channels
        self.dropout = dropout
        self.semantic_loss_ignore_index = semantic_loss_ignore_index
        super().__init__(**kwargs)


class FCN8sForSemanticSegmentation(ResNetSegmentationModel):
    """Scores at strides 32, 16 and 8 summed coarse-to-fine after bilinear 2x upsampling."""

    config_class = FCN8sConfig

    def __init__(self, config: FCN8sConfig):
        super().__init__(config, output_stride=32)
        sizes = config.resnet_config().hidden_sizes
        self.head = nn.Sequential(ConvNormAct(sizes[3], config.head_channels, 3), nn.Dropout(config.dropout))
        self.classifier = nn.Conv2d(config.head_channels, config.num_labels, 1)
        self.score16 = nn.Conv2d(sizes[2], config.num_labels, 1)
        self.score8 = nn.Conv2d(sizes[1], config.num_labels, 1)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if module is getattr(self, "score16", None) or module is getattr(self, "score8", None):
            nn.init.zeros_(module.weight)  # skips start at zero, as in the original FCN-8s
            nn.init.zeros_(module.bias)

    def decode(self, features: tuple[torch.Tensor, ...]) -> torch.Tensor:
        scores = self.classifier(self.head(features[3]))
        for skip, score in ((features[2], self.score16), (features[1], self.score8)):
            scores = F.interpolate(scores, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            scores = scores + score(skip)
        return scores


register_auto(FCN8sConfig, FCN8sForSemanticSegmentation)

_TINY = dict(head_channels=32)
_COMMON = dict(takes_stem=True, family="fcn8s", optimizer="sgd", backbone_prefixes=("backbone.",),
               display="FCN-8s", abbreviation="FCN")
DETECTORS.register(DetectorSpec(
    "fcn8s-r50", description="FCN-8s (stride 8/16/32 skips) on ResNet-50",
    build=resnet_detector_builder(FCN8sForSemanticSegmentation, FCN8sConfig, _TINY, False),
    pretrained="microsoft/resnet-50", benchmark=("paper",), **_COMMON))
DETECTORS.register(DetectorSpec(
    "fcn8s-tiny", description="tiny random-init FCN-8s for CPU and tests",
    build=resnet_detector_builder(FCN8sForSemanticSegmentation, FCN8sConfig, _TINY, True),
    pretrained=None, tiny=True, benchmark=("quick",), **_COMMON))
