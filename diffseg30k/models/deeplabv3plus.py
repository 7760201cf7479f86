"""DeepLabV3+ (Chen et al., ECCV 2018) over transformers' ResNet: ASPP at output stride 16 and the
low-level decoder (stride-4 features reduced to 48 channels, two 3x3 convolutions)."""

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


class DeepLabV3PlusConfig(ResNetSegmentationConfigMixin, PretrainedConfig):
    """Configuration of :class:`DeepLabV3PlusForSemanticSegmentation`."""

    model_type = "diffseg-deeplabv3plus"

    def __init__(self, backbone_config: dict | None = None, aspp_channels: int = 256,
                 atrous_rates: tuple[int, ...] = (6, 12, 18), low_level_channels: int = 48,
                 decoder_channels: int = 256, output_stride: int = 16, dropout: float = 0.1,
                 semantic_loss_ignore_index: int = 255, **kwargs):
        if backbone_config is not None and not isinstance(backbone_config, dict):
            backbone_config = backbone_config.to_dict()
        self.backbone_config = backbone_config
        self.aspp_channels = aspp_channels
        self.atrous_rates = list(atrous_rates)
        self.low_level_channels = low_level_channels
        self.decoder_channels = decoder_channels
        self.output_stride = output_stride
        self.dropout = dropout
        self.semantic_loss_ignore_index = semantic_loss_ignore_index
        super().__init__(**kwargs)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, three dilated 3x3 and an image-pooling branch."""

    def __init__(self, in_channels: int, channels: int, rates: list[int], dropout: float):
        super().__init__()
        self.branches = nn.ModuleList([ConvNormAct(in_channels, channels, 1)]
                                      + [ConvNormAct(in_channels, channels, 3, dilation=r) for r in rates])
        # No BatchNorm on the pooled 1x1 map: it would fail for a batch of one during training.
        self.pooling = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, channels, 1),
                                     nn.ReLU(inplace=True))
        self.project = nn.Sequential(ConvNormAct(channels * (len(rates) + 2), channels, 1),
                                     nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.interpolate(self.pooling(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.project(torch.cat([branch(x) for branch in self.branches] + [pooled], dim=1))


class DeepLabV3PlusForSemanticSegmentation(ResNetSegmentationModel):
    """ResNet body at output stride 16, ASPP, and the stride-4 decoder; logits at stride 4."""

    config_class = DeepLabV3PlusConfig

    def __init__(self, config: DeepLabV3PlusConfig):
        super().__init__(config, output_stride=config.output_stride)
        sizes = config.resnet_config().hidden_sizes
        self.aspp = ASPP(sizes[-1], config.aspp_channels, config.atrous_rates, config.dropout)
        self.low_level = ConvNormAct(sizes[0], config.low_level_channels, 1)
        self.fuse = nn.Sequential(
            ConvNormAct(config.aspp_channels + config.low_level_channels, config.decoder_channels, 3),
            ConvNormAct(config.decoder_channels, config.decoder_channels, 3),
        )
        self.classifier = nn.Conv2d(config.decoder_channels, config.num_labels, 1)
        self.post_init()

    def decode(self, features: tuple[torch.Tensor, ...]) -> torch.Tensor:
        low = self.low_level(features[0])
        context = F.interpolate(self.aspp(features[-1]), size=low.shape[-2:], mode="bilinear",
                                align_corners=False)
        return self.classifier(self.fuse(torch.cat([context, low], dim=1)))


register_auto(DeepLabV3PlusConfig, DeepLabV3PlusForSemanticSegmentation)

_TINY = dict(aspp_channels=32, low_level_channels=16, decoder_channels=32)
_COMMON = dict(takes_stem=True, family="deeplabv3plus", optimizer="sgd", backbone_prefixes=("backbone.",),
               display="DeepLab v3+", abbreviation="DPL")
DETECTORS.register(DetectorSpec(
    "deeplabv3plus-r50", description="DeepLabV3+ (ASPP, OS16) on ResNet-50",
    build=resnet_detector_builder(DeepLabV3PlusForSemanticSegmentation, DeepLabV3PlusConfig, _TINY, False),
    pretrained="microsoft/resnet-50", benchmark=("paper",), **_COMMON))
DETECTORS.register(DetectorSpec(
    "deeplabv3plus-tiny", description="tiny random-init DeepLabV3+ for CPU and tests",
    build=resnet_detector_builder(DeepLabV3PlusForSemanticSegmentation, DeepLabV3PlusConfig, _TINY, True),
    pretrained=None, tiny=True, benchmark=("quick",), **_COMMON))
