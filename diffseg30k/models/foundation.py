"""Foundation-feature localiser: a frozen transformers ViT (DINOv2 or CLIP) and a light patch head.

The backbone is a concrete transformers class (``Dinov2Model`` / ``CLIPVisionModel``, loaded by Hub id
or folder with ``use_safetensors=True``; ``AutoBackbone`` is not used) and stays frozen (eval mode, no
gradients). Patch tokens of a few intermediate layers are concatenated and projected by a 1x1
convolution; a two-convolution RGB stem at stride 4 restores the detail a 14-pixel patch grid lacks;
a 3x3 convolution and a 1x1 classifier give logits at stride 4 -- only the head trains.

Resolution: nothing is resized. Inputs are padded (bottom/right) to the patch size; in evaluation an
image larger than ``window_size`` is covered by overlapping windows (stride ``window_size -
window_overlap``) at native resolution whose logits are averaged, so the ViT always sees the scale it
was trained on (the UniversalFakeDetect / DINOv2-localiser recipe).

An input stem (``diffseg_stem``, :mod:`diffseg30k.models.stem`) goes before the trainable RGB detail
branch: the frozen ViT sees the image unchanged (under ``no_grad`` a stem before it would not learn).
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    CLIPVisionConfig,
    CLIPVisionModel,
    Dinov2Config,
    Dinov2Model,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import SemanticSegmenterOutput

from diffseg30k.models.common import ConvNormAct, segmentation_loss
from diffseg30k.models.inference import _starts
from diffseg30k.models.registry import DETECTORS, DetectorSpec, register_auto
from diffseg30k.models.stem import build_stem

#: backbone ``model_type`` -> (config class, model class); CLIP checkpoints hold ``clip`` configs.
BACKBONES = {"dinov2": (Dinov2Config, Dinov2Model), "clip_vision_model": (CLIPVisionConfig, CLIPVisionModel),
             "clip": (CLIPVisionConfig, CLIPVisionModel)}
#: CLIP's own normalisation (DINOv2 uses ImageNet's, the project default).
CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
TINY_DINOV2 = dict(model_type="dinov2", hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                   mlp_ratio=2, patch_size=8, image_size=64)


class FoundationConfig(PretrainedConfig):
    """Configuration of :class:`FoundationForSemanticSegmentation`; ``backbone_config`` is the ViT's
    config dict (its ``model_type`` picks the class). ``window_size`` must be a multiple of 4 and of the
    patch size: 532 = 38 DINOv2 patches (DINOv2 trains at 518), so a 512^2 image is one window."""

    model_type = "diffseg-foundation"

    def __init__(self, backbone_config: dict | None = None, feature_layers: list[int] | None = None,
                 head_channels: int = 256, detail_channels: int = 32, window_size: int = 532,
                 window_overlap: int = 112, freeze_backbone: bool = True,
                 semantic_loss_ignore_index: int = 255, **kwargs):
        if backbone_config is not None and not isinstance(backbone_config, dict):
            backbone_config = backbone_config.to_dict()
        self.backbone_config = dict(backbone_config or {"model_type": "dinov2"})
        layers = self.backbone_config.get("num_hidden_layers", 12)
        self.feature_layers = list(feature_layers or sorted({max(1, layers * k // 4) for k in (1, 2, 3, 4)}))
        self.head_channels, self.detail_channels = head_channels, detail_channels
        self.window_size, self.window_overlap = window_size, window_overlap
        self.freeze_backbone = freeze_backbone
        self.semantic_loss_ignore_index = semantic_loss_ignore_index
        super().__init__(**kwargs)

    def vit_config(self) -> PretrainedConfig:
        values = dict(self.backbone_config)
        kind = values.pop("model_type", "dinov2")
        if kind not in BACKBONES:
            raise ValueError(f"backbone model_type {kind!r} is not supported; "
                             f"expected one of {tuple(BACKBONES)}")
        values.pop("transformers_version", None)
        return BACKBONES[kind][0](**values)


def build_vit(config: PretrainedConfig) -> nn.Module:
    """A randomly initialised ViT of ``config`` (DINOv2 or CLIP vision)."""
    return BACKBONES[config.model_type][1](config)


class FoundationForSemanticSegmentation(PreTrainedModel):
    """Frozen ViT features of ``feature_layers`` + RGB detail stem -> logits at stride 4."""

    config_class = FoundationConfig
    main_input_name = "pixel_values"
    base_model_prefix = "backbone"
    input_modalities = ("image",)

    def __init__(self, config: FoundationConfig):
        super().__init__(config)
        vit = config.vit_config()
        self.backbone = build_vit(vit)
        self.patch_size = vit.patch_size
        unit = 4 * self.patch_size // math.gcd(4, self.patch_size)
        size, overlap = config.window_size, config.window_overlap
        if size % unit or overlap % 4 or overlap >= size:
            raise ValueError(f"window_size must be a multiple of {unit} and window_overlap a multiple of 4 "
                             f"below it, got {config.window_size}/{config.window_overlap}")
        width, head = vit.hidden_size, config.head_channels
        self.project = nn.Sequential(nn.Conv2d(width * len(config.feature_layers), head, 1, bias=False),
                                     nn.BatchNorm2d(head), nn.ReLU(inplace=True))
        detail = config.detail_channels
        self.stem = build_stem(getattr(config, "diffseg_stem", None))
        self.detail = nn.Sequential(nn.Conv2d(3, detail, 3, 2, 1, bias=False), nn.BatchNorm2d(detail),
                                    nn.ReLU(inplace=True), nn.Conv2d(detail, detail, 3, 2, 1, bias=False),
                                    nn.BatchNorm2d(detail), nn.ReLU(inplace=True))
        self.fuse = ConvNormAct(head + detail, head, 3)
        self.classifier = nn.Conv2d(head, config.num_labels, 1)
        self.post_init()
        if config.freeze_backbone:
            self.backbone.requires_grad_(False)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            if module.running_mean is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)

    def train(self, mode: bool = True) -> FoundationForSemanticSegmentation:
        super().train(mode)
        if self.config.freeze_backbone:
            self.backbone.eval()  # frozen: no dropout, no drop-path, whatever the loop asks
        return self

    def patch_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Concatenated patch tokens of ``feature_layers``, (B, L * D, H / p, W / p); H, W multiples of p."""
        grid_h, grid_w = pixel_values.shape[-2] // self.patch_size, pixel_values.shape[-1] // self.patch_size
        kwargs = {"interpolate_pos_encoding": True} if isinstance(self.backbone, CLIPVisionModel) else {}
        frozen = self.config.freeze_backbone
        with torch.no_grad() if frozen else torch.enable_grad():
            outputs = self.backbone(pixel_values=pixel_values, output_hidden_states=True, **kwargs)
            hidden = outputs.hidden_states
            tokens = [hidden[i][:, -grid_h * grid_w:] for i in self.config.feature_layers]
        stacked = torch.cat(tokens, dim=-1)
        return stacked.transpose(1, 2).reshape(stacked.shape[0], -1, grid_h, grid_w)

    def window_logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Logits at stride 4 (ceil(H / 4), ceil(W / 4)) of one window of any size."""
        height, width = pixel_values.shape[-2:]
        pad_h, pad_w = (-height) % self.patch_size, (-width) % self.patch_size
        padded = F.pad(pixel_values, (0, pad_w, 0, pad_h)) if pad_h or pad_w else pixel_values
        size = (math.ceil(height / 4), math.ceil(width / 4))
        grid = self.project(self.patch_features(padded))
        grid = F.interpolate(grid, size=(math.ceil(padded.shape[-2] / 4), math.ceil(padded.shape[-1] / 4)),
                             mode="bilinear", align_corners=False)[..., :size[0], :size[1]]
        detail = self.detail(self.stem(pixel_values))
        return self.classifier(self.fuse(torch.cat((grid, detail), dim=1)))

    def sliding_logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Window-averaged logits at stride 4 for an image larger than ``window_size``."""
        height, width = pixel_values.shape[-2:]
        padded = F.pad(pixel_values, (0, (-width) % 4, 0, (-height) % 4))
        tile, stride = self.config.window_size, self.config.window_size - self.config.window_overlap
        out = counts = None
        for top in _starts(padded.shape[-2], tile, stride):
            for left in _starts(padded.shape[-1], tile, stride):
                logits = self.window_logits(padded[..., top:top + tile, left:left + tile])
                if out is None:
                    out = logits.new_zeros((*logits.shape[:2], padded.shape[-2] // 4, padded.shape[-1] // 4))
                    counts = logits.new_zeros((1, 1, *out.shape[-2:]))
                rows = slice(top // 4, top // 4 + logits.shape[-2])
                cols = slice(left // 4, left // 4 + logits.shape[-1])
                out[..., rows, cols] += logits
                counts[..., rows, cols] += 1
        return (out / counts)[..., :math.ceil(height / 4), :math.ceil(width / 4)]

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                return_dict: bool | None = None, **kwargs) -> SemanticSegmenterOutput | tuple:
        if not self.training and max(pixel_values.shape[-2:]) > self.config.window_size:
            logits = self.sliding_logits(pixel_values)
        else:
            logits = self.window_logits(pixel_values)
        loss = segmentation_loss(logits, labels, self.config.semantic_loss_ignore_index) \
            if labels is not None else None
        if return_dict is False:
            return (loss, logits) if loss is not None else (logits,)
        return SemanticSegmenterOutput(loss=loss, logits=logits)


def load_vit(repo_id: str, revision: str | None = None) -> nn.Module:
    """A pretrained DINOv2 / CLIP vision tower by Hub id or folder (safetensors only, no remote code)."""
    try:
        kind = AutoConfig.from_pretrained(repo_id, revision=revision).model_type
        if kind not in BACKBONES:
            raise ValueError(f"model_type {kind!r} is not a supported backbone ({', '.join(BACKBONES)})")
        return BACKBONES[kind][1].from_pretrained(repo_id, revision=revision, use_safetensors=True)
    except (OSError, ValueError) as err:
        raise OSError(f"cannot load backbone weights {repo_id!r} (safetensors only): {err}. "
                      "Pass from_scratch=True (--from-scratch) to train without them.") from err


def build_foundation(backbone: dict, extra: dict, pretrained: str | None = None, **sizes
                     ) -> FoundationForSemanticSegmentation:
    """A localiser over the ViT ``backbone`` (config dict); ``pretrained`` loads its weights."""
    vit = load_vit(pretrained) if pretrained else None
    backbone_config = vit.config.to_dict() if vit is not None else dict(backbone)
    if backbone_config.get("model_type", "").startswith("clip"):
        extra = {**extra, "image_mean": CLIP_MEAN, "image_std": CLIP_STD}
    config = FoundationConfig(backbone_config=backbone_config, **sizes, **extra)
    model = FoundationForSemanticSegmentation(config)
    if vit is not None:
        model.backbone.load_state_dict(vit.state_dict())
    return model



_DINOV2_BASE = dict(model_type="dinov2", hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    patch_size=14, image_size=518)
_CLIP_B16 = dict(model_type="clip_vision_model", hidden_size=768, intermediate_size=3072,
                 num_hidden_layers=12, num_attention_heads=12, patch_size=16, image_size=224,
                 projection_dim=512)

# The ViT ("backbone.") is frozen; only the head trains, at lr * head_lr_mult.
_COMMON = dict(family="foundation", optimizer="adamw", backbone_prefixes=("backbone.",),
               display="Foundation (frozen ViT)", abbreviation="FND")
DETECTORS.register(DetectorSpec(
    "foundation-tiny", description="tiny random frozen ViT (DINOv2 config) + patch head, for CPU and tests",
    build=partial(build_foundation, TINY_DINOV2, head_channels=32, detail_channels=16, window_size=128,
                  window_overlap=32),
    pretrained=None, tiny=True, benchmark=("quick",), **_COMMON))
DETECTORS.register(DetectorSpec(
    "foundation-dinov2-b", description="frozen DINOv2-B/14 (facebook/dinov2-base) + light patch head, "
                                       "sliding windows",
    build=partial(build_foundation, _DINOV2_BASE), pretrained="facebook/dinov2-base", benchmark=("paper",),
    **_COMMON))
DETECTORS.register(DetectorSpec(
    "foundation-clip-b16", description="frozen CLIP ViT-B/16 vision tower (openai/clip-vit-base-patch16) "
                                       "+ patch head",
    build=partial(build_foundation, _CLIP_B16, window_size=512, window_overlap=128),
    pretrained="openai/clip-vit-base-patch16", **_COMMON))

register_auto(FoundationConfig, FoundationForSemanticSegmentation)
