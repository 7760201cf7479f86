"""transformers' ResNet as a dense-prediction backbone: multi-scale features and dilation.

``ResNetConfig`` has no dilation option, so :func:`dilate_last_stage` rewrites the last stage's
convolutions in place (stride 2 -> 1, later 3x3 convolutions dilated by 2), exactly what
torchvision's ``replace_stride_with_dilation`` does, giving output stride 16. The rewrite only
changes strides and dilations, never parameter shapes, so ImageNet weights load unchanged.
Weights are loaded through the concrete :class:`ResNetModel` (``AutoBackbone.from_pretrained`` on a
local folder fails in transformers 5.x).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel, ResNetConfig, ResNetModel
from transformers.modeling_outputs import SemanticSegmenterOutput

from diffseg30k.models.common import segmentation_loss

#: ResNet-50 (He et al. 2016) as in ``microsoft/resnet-50``.
RESNET50 = dict(embedding_size=64, hidden_sizes=[256, 512, 1024, 2048], depths=[3, 4, 6, 3],
                layer_type="bottleneck", downsample_in_first_stage=False)
#: A few-thousand-parameter ResNet for CPU tests and the quick preset.
RESNET_TINY = dict(embedding_size=16, hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 1, 1],
                   layer_type="basic", downsample_in_first_stage=False)


def dilate_last_stage(resnet: ResNetModel, dilation: int = 2) -> None:
    """Turn the last stage's stride-2 into dilation (output stride 32 -> 16), in place."""
    stage = resnet.encoder.stages[-1]
    for index, layer in enumerate(stage.layers):
        for conv in (m for m in layer.modules() if isinstance(m, nn.Conv2d)):
            if conv.stride != (1, 1):
                conv.stride = (1, 1)
            if index > 0 and conv.kernel_size == (3, 3):
                conv.dilation = (dilation, dilation)
                conv.padding = (dilation, dilation)


def build_resnet(config: ResNetConfig, output_stride: int = 32) -> ResNetModel:
    """A randomly initialised ResNet body with the requested output stride (32 or 16)."""
    if output_stride not in (16, 32):
        raise ValueError(f"output_stride must be 16 or 32, got {output_stride}")
    resnet = ResNetModel(config)
    if output_stride == 16:
        dilate_last_stage(resnet)
    return resnet


def resnet_features(resnet: ResNetModel, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The outputs of the four stages (strides 4, 8, 16, 32 -- or 16 when dilated)."""
    hidden = resnet.embedder(pixel_values)
    features = []
    for stage in resnet.encoder.stages:
        hidden = stage(hidden)
        features.append(hidden)
    return tuple(features)


def load_pretrained_resnet(repo_id: str, revision: str | None = None) -> ResNetModel:
    """ImageNet ResNet weights (safetensors only) from the Hub or a local folder."""
    try:
        return ResNetModel.from_pretrained(repo_id, revision=revision, use_safetensors=True)
    except (OSError, ValueError) as err:
        raise OSError(f"cannot load backbone weights {repo_id!r} (safetensors only): {err}. "
                      "Pass from_scratch=True (--from-scratch) to train without them.") from err


def resnet_detector_builder(model_class: type, config_class: type, tiny_sizes: dict, tiny: bool):
    """A :class:`~diffseg30k.models.registry.DetectorSpec` ``build``: a ResNet-50 (or tiny) body under
    ``model_class``'s head, with ImageNet weights copied in when ``pretrained`` names them."""

    def build(extra: dict, pretrained: str | None) -> PreTrainedModel:
        resnet = load_pretrained_resnet(pretrained) if pretrained else None
        backbone = resnet.config.to_dict() if resnet is not None else dict(RESNET_TINY if tiny else RESNET50)
        model = model_class(config_class(backbone_config=backbone, **(tiny_sizes if tiny else {}), **extra))
        if resnet is not None:
            model.load_backbone_weights(resnet)
        return model
    return build


class ResNetSegmentationConfigMixin:
    """Helpers for configs that carry a ``backbone_config`` (a ResNetConfig or its dict)."""

    def resnet_config(self) -> ResNetConfig:
        backbone = self.backbone_config
        if isinstance(backbone, ResNetConfig):
            return backbone
        backbone = dict(backbone or RESNET50)
        backbone.pop("model_type", None)
        backbone.pop("transformers_version", None)
        return ResNetConfig(**backbone)


class ResNetSegmentationModel(PreTrainedModel):
    """Base of the CNN detectors: a ResNet body (``self.backbone``) plus a head (``decode``).

    Subclasses set ``config_class``, build their head in ``__init__`` after calling
    ``super().__init__(config, output_stride)``, and implement ``decode(features) -> logits``.
    """

    main_input_name = "pixel_values"
    base_model_prefix = "backbone"
    input_modalities = ("image",)

    def __init__(self, config, output_stride: int = 32):
        super().__init__(config)
        self.backbone = build_resnet(config.resnet_config(), output_stride=output_stride)

    def _init_weights(self, module: nn.Module) -> None:
        if module is getattr(self, "classifier", None):  # mmsegmentation's conv_seg init
            nn.init.normal_(module.weight, std=0.01)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            if module.running_mean is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)

    def load_backbone_weights(self, resnet: ResNetModel) -> None:
        """Copy ImageNet weights into the body (shapes are unchanged by dilation)."""
        self.backbone.load_state_dict(resnet.state_dict(), strict=True)

    def decode(self, features: tuple[torch.Tensor, ...]) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                return_dict: bool | None = None, **kwargs) -> SemanticSegmenterOutput | tuple:
        logits = self.decode(resnet_features(self.backbone, pixel_values))
        loss = segmentation_loss(logits, labels, self.config.semantic_loss_ignore_index) \
            if labels is not None else None
        if return_dict is False:
            return (loss, logits) if loss is not None else (logits,)
        return SemanticSegmenterOutput(loss=loss, logits=logits)
