"""SegFormer (Xie et al., NeurIPS 2021) detectors: transformers' ``SegformerForSemanticSegmentation``.

Encoder sizes follow the MiT-B0..B5 configurations; with pretrained weights the encoder comes from
``nvidia/mit-bX`` (safetensors only) and the all-MLP decode head starts from random weights. With an
input stem (``stem="srm"``/``"bayar"``, :mod:`diffseg30k.models.stem`) the detector is
:class:`StemSegformerForSemanticSegmentation`: the same model with the stem before the first patch
embedding, under its own ``model_type`` so the Auto classes rebuild the stem on loading; without one
it stays transformers' own class (checkpoints unchanged).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    SegformerConfig,
    SegformerForSemanticSegmentation,
)
from transformers.modeling_outputs import SemanticSegmenterOutput
from transformers.models.segformer.modeling_segformer import SegformerDecodeHead

from diffseg30k.models.registry import DETECTORS, DetectorSpec, register_auto
from diffseg30k.models.stem import build_stem

_WIDE = [64, 128, 320, 512]
#: (hidden_sizes, depths, decoder_hidden_size) of MiT-B0..B5.
MIT_VARIANTS: dict[str, tuple[list[int], list[int], int]] = {
    "b0": ([32, 64, 160, 256], [2, 2, 2, 2], 256),
    "b1": (_WIDE, [2, 2, 2, 2], 256),
    "b2": (_WIDE, [3, 4, 6, 3], 768),
    "b3": (_WIDE, [3, 4, 18, 3], 768),
    "b4": (_WIDE, [3, 8, 27, 3], 768),
    "b5": (_WIDE, [3, 6, 40, 3], 768),
}


class StemSegformerConfig(SegformerConfig):
    """``SegformerConfig`` of a SegFormer with an input stem (``diffseg_stem``)."""

    model_type = "diffseg-segformer-stem"


class StemSegformerForSemanticSegmentation(SegformerForSemanticSegmentation):
    """``SegformerForSemanticSegmentation`` with the config's input stem before the MiT encoder."""

    config_class = StemSegformerConfig

    def __init__(self, config: StemSegformerConfig):
        super().__init__(config)
        self.stem = build_stem(getattr(config, "diffseg_stem", None))
        self.stem.apply(self._init_weights)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, **kwargs):
        return super().forward(pixel_values=self.stem(pixel_values), labels=labels, **kwargs)


def has_stem(extra: dict) -> bool:
    """Whether detector config entries ``extra`` ask for an input stem."""
    return extra.get("diffseg_stem") not in (None, "none")


def segformer_config(variant: str, extra: dict) -> SegformerConfig:
    """The config of MiT-``variant`` ('b0'..'b5' or 'tiny') with the detector entries ``extra`` (a
    :class:`StemSegformerConfig` when they name an input stem)."""
    kind = StemSegformerConfig if has_stem(extra) else SegformerConfig
    if variant == "tiny":
        return kind(hidden_sizes=[16, 32, 64, 96], depths=[1, 1, 1, 1],
                    num_attention_heads=[1, 1, 2, 2], decoder_hidden_size=64, **extra)
    hidden_sizes, depths, decoder = MIT_VARIANTS[variant]
    return kind(hidden_sizes=hidden_sizes, depths=depths, decoder_hidden_size=decoder,
                num_attention_heads=[1, 2, 5, 8], **extra)


def build_segformer(variant: str, extra: dict, pretrained: str | None = None,
                    revision: str | None = None) -> SegformerForSemanticSegmentation:
    """A SegFormer detector; ``pretrained`` (a Hub id or folder) supplies the encoder weights.

    Its decode head computes in the cheaper order of :class:`ReorderedSegformerDecodeHead` (same
    parameters and state-dict keys, same function)."""
    config = segformer_config(variant, extra)
    stemmed = has_stem(extra)
    model_class = StemSegformerForSemanticSegmentation if stemmed else SegformerForSemanticSegmentation
    if pretrained is None:
        return reorder_decode_head(model_class(config))
    try:
        plain = SegformerForSemanticSegmentation.from_pretrained(
            pretrained, config=segformer_config(variant, {**extra, "diffseg_stem": "none"}),
            revision=revision, use_safetensors=True)
    except (OSError, ValueError) as err:
        raise OSError(f"cannot load encoder weights {pretrained!r} (safetensors only): {err}. "
                      "Pass from_scratch=True (--from-scratch) to train without them.") from err
    if not stemmed:
        return reorder_decode_head(plain)
    model = model_class(config)
    model.load_state_dict(plain.state_dict(), strict=False)  # all but the (new, random) stem
    return reorder_decode_head(model)


class ReorderedSegformerDecodeHead(SegformerDecodeHead):
    """``SegformerDecodeHead`` with the same parameters and outputs, in a cheaper order (training too).

    The original projects stage ``i`` to ``D`` channels, upsamples to stride 4, concatenates and
    applies the 1x1 ``linear_fuse`` (4D -> D) at stride 4. Projection and fuse slice are linear and
    bilinear upsampling commutes with per-pixel linear maps, so here each stage gets one 1x1
    convolution with weight ``fuse_i @ proj_i`` at its own resolution and the D-channel results are
    upsampled and summed; BatchNorm (batch statistics in training), ReLU, dropout and classifier
    follow as before. Gradients flow to the original parameters.
    """

    def forward(self, encoder_hidden_states, **kwargs) -> torch.Tensor:
        if any(hidden.ndim != 4 for hidden in encoder_hidden_states):
            return super().forward(encoder_hidden_states, **kwargs)
        stages, dim = len(self.linear_projections), self.linear_fuse.out_channels
        fuse = self.linear_fuse.weight[:, :, 0, 0]
        size = encoder_hidden_states[0].shape[2:]
        out = None
        for index, (hidden, mlp) in enumerate(zip(encoder_hidden_states, self.linear_projections)):
            block = fuse[:, (stages - 1 - index) * dim:(stages - index) * dim]  # concat order is reversed
            weight = (block @ mlp.proj.weight).to(hidden.dtype)[:, :, None, None]
            part = F.conv2d(hidden, weight, (block @ mlp.proj.bias).to(hidden.dtype))
            if part.shape[2:] != size:
                part = F.interpolate(part, size=size, mode="bilinear", align_corners=False)
            out = part if out is None else out + part
        return self.classifier(self.dropout(self.activation(self.batch_norm(out))))


def reorder_decode_head(model: SegformerForSemanticSegmentation) -> SegformerForSemanticSegmentation:
    """Give ``model`` a :class:`ReorderedSegformerDecodeHead` holding the same weights (in place)."""
    head = ReorderedSegformerDecodeHead(model.config)
    head.load_state_dict(model.decode_head.state_dict())
    model.decode_head = head.to(next(model.decode_head.parameters()).device)
    return model


class FusedSegformerDecodeHead(nn.Module):
    """Inference-only rewrite of ``SegformerDecodeHead`` with the same outputs, ~2-3x less work.

    The head projects each stage to ``D`` channels, upsamples to stride 4, concatenates and applies a
    1x1 ``linear_fuse`` (4D -> D), BatchNorm, ReLU and the classifier. Projection, fuse slice and the
    (eval-mode) BatchNorm are all affine per pixel and bilinear upsampling commutes with per-pixel
    affine maps, so each stage is folded into one 1x1 convolution applied at the stage's own resolution
    and only the D-channel results are upsampled and summed: the 4D x D fuse at stride 4 (most of
    SegFormer's FLOPs at 512^2 and above) disappears.
    """

    def __init__(self, head: nn.Module):
        super().__init__()
        dim = head.linear_fuse.out_channels
        stages = len(head.linear_projections)
        fuse = head.linear_fuse.weight.detach().double()[:, :, 0, 0]
        bn = head.batch_norm
        scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
        bias = bn.bias.detach().double() - bn.running_mean.double() * scale
        self.projections = nn.ModuleList()
        for index, mlp in enumerate(head.linear_projections):
            block = fuse[:, (stages - 1 - index) * dim:(stages - index) * dim]  # concat order is reversed
            weight = scale[:, None] * (block @ mlp.proj.weight.detach().double())
            bias = bias + scale * (block @ mlp.proj.bias.detach().double())
            conv = nn.Conv2d(weight.shape[1], dim, 1, bias=False)
            conv.weight.data = weight[:, :, None, None].to(head.linear_fuse.weight.dtype)
            self.projections.append(conv)
        self.register_buffer("bias", bias.to(head.linear_fuse.weight.dtype).view(1, dim, 1, 1))
        self.classifier = head.classifier

    def forward(self, encoder_hidden_states, **kwargs) -> torch.Tensor:
        size = encoder_hidden_states[0].shape[2:]
        out = self.projections[0](encoder_hidden_states[0])
        for hidden, conv in zip(encoder_hidden_states[1:], self.projections[1:]):
            out = out + F.interpolate(conv(hidden), size=size, mode="bilinear", align_corners=False)
        return self.classifier(torch.relu(out + self.bias))


class FusedSegformerForInference(nn.Module):
    """A SegFormer detector for inference: the model's own encoder (shared, not copied) followed by
    a :class:`FusedSegformerDecodeHead` (after its input stem, if any); the original model is left
    untouched."""

    def __init__(self, model: SegformerForSemanticSegmentation):
        super().__init__()
        self.stem = getattr(model, "stem", nn.Identity())
        self.segformer = model.segformer
        self.decode_head = FusedSegformerDecodeHead(model.decode_head)
        self.config = model.config

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> SemanticSegmenterOutput:
        hidden_states = self.segformer(self.stem(pixel_values), output_hidden_states=True).hidden_states
        return SemanticSegmenterOutput(logits=self.decode_head(hidden_states))


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """The fused inference twin of a SegFormer detector (eval mode); other models unchanged."""
    if isinstance(model, SegformerForSemanticSegmentation):
        return FusedSegformerForInference(model.eval()).eval()
    return model



_COMMON = dict(family="segformer", optimizer="adamw", backbone_prefixes=("segformer.",), display="SegFormer",
               abbreviation="SEG")
DETECTORS.register(DetectorSpec("segformer-tiny", description="tiny random-init SegFormer for CPU and tests",
                                build=partial(build_segformer, "tiny"), pretrained=None, tiny=True,
                                benchmark=("quick",),
                                **_COMMON))
for _variant in MIT_VARIANTS:
    DETECTORS.register(DetectorSpec(
        f"segformer-{_variant}", description=f"SegFormer-{_variant.upper()} (encoder nvidia/mit-{_variant})",
        build=partial(build_segformer, _variant), pretrained=f"nvidia/mit-{_variant}",
        benchmark=("paper",) if _variant == "b2" else (), **_COMMON))

register_auto(StemSegformerConfig, StemSegformerForSemanticSegmentation)
