"""A Mesorch-like frequency detector (Zhu et al., AAAI 2025): MiT encoders on DCT high- and
low-frequency views of the image, mixed per scale.

The image is split by an orthonormal 8x8 block DCT whose blocks sit on the JPEG grid (rows and
columns ``0, 8, 16, ...`` of the input: the inference policy pads only at the bottom/right and
``--augment trufor`` aligns training crops to the grid, so the blocks are JPEG's own blocks). The
coefficients with ``u + v < low_band`` rebuild the low-frequency image, the rest the high-frequency
one (their sum is the image). Two MiT encoders read ``[RGB, high]`` and ``[RGB, low]``; the
log-magnitudes of the 192 block coefficients -- where JPEG quantisation lives -- join the high
branch at stride 8. At every stage a per-pixel softmax gate mixes the two branches, and a SegFormer
all-MLP head decodes the mixed pyramid. An input stem (``diffseg_stem``, :mod:`diffseg30k.models.stem`)
replaces the RGB channels both branches read; the DCT reads the image unchanged (the JPEG grid's own
pixels).
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SemanticSegmenterOutput

from diffseg30k.models.common import segmentation_loss
from diffseg30k.models.mit_streams import encoder_config, load_mit_weights, mit_sizes, run_stage
from diffseg30k.models.registry import DETECTORS, DetectorSpec, register_auto
from diffseg30k.models.segformer import ReorderedSegformerDecodeHead
from diffseg30k.models.stem import build_stem

BLOCK = 8


def dct_matrix(size: int = BLOCK) -> torch.Tensor:
    """The orthonormal 1-D DCT-II matrix (float64), rows ``u``, columns ``x``: ``coeffs = D @ signal``."""
    n = torch.arange(size, dtype=torch.float64)
    scale = torch.full((size,), math.sqrt(2.0 / size), dtype=torch.float64)
    scale[0] = math.sqrt(1.0 / size)
    return scale[:, None] * torch.cos(math.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * size))


def dct_basis(size: int = BLOCK) -> torch.Tensor:
    """The orthonormal 2-D DCT-II basis as (size*size, 1, size, size) filters, index ``u * size + v``:
    a stride-``size`` convolution with them is the block DCT (exact, and exportable to ONNX)."""
    one_d = dct_matrix(size)
    return torch.einsum("ux,vy->uvxy", one_d, one_d).reshape(size * size, 1, size, size).float()


class BlockDCT(nn.Module):
    """Block DCT of every channel on the 8x8 grid anchored at the top-left pixel, and the band split."""

    def __init__(self, low_band: int):
        super().__init__()
        self.low_band = low_band
        self._constants: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def constants(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(basis, low-band mask) on ``like``'s device and dtype (plain tensors, not buffers: a model
        materialised by ``from_pretrained`` would leave non-persistent buffers uninitialised)."""
        key = (like.device, like.dtype)
        if key not in self._constants:
            u, v = torch.meshgrid(torch.arange(BLOCK), torch.arange(BLOCK), indexing="ij")
            mask = ((u + v) < self.low_band).flatten().view(1, -1, 1, 1)
            self._constants[key] = (dct_basis().to(like), mask.to(like))
        return self._constants[key]

    def coefficients(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W), H and W multiples of 8 -> (B, C * 64, H / 8, W / 8)."""
        batch, channels, height, width = pixels.shape
        coeffs = F.conv2d(pixels.reshape(batch * channels, 1, height, width), self.constants(pixels)[0],
                          stride=BLOCK)
        return coeffs.reshape(batch, channels * BLOCK * BLOCK, height // BLOCK, width // BLOCK)

    def bands(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(low-frequency image, high-frequency image, coefficients) of a (B, C, H, W) batch."""
        batch, channels, height, width = pixels.shape
        coeffs = self.coefficients(pixels)
        per_channel = coeffs.reshape(batch * channels, BLOCK * BLOCK, height // BLOCK, width // BLOCK)
        basis, low_mask = self.constants(pixels)
        low = F.conv_transpose2d(per_channel * low_mask, basis, stride=BLOCK)
        low = low.reshape(batch, channels, height, width)
        return low, pixels - low, coeffs


class DctFrequencyConfig(PretrainedConfig):
    """Configuration of :class:`DctFrequencyForSemanticSegmentation`."""

    model_type = "diffseg-dct-frequency"

    def __init__(self, encoder: dict | None = None, low_band: int = 4, classifier_dropout_prob: float = 0.1,
                 semantic_loss_ignore_index: int = 255, **kwargs):
        self.encoder = dict(encoder or mit_sizes("b2"))
        self.low_band = low_band
        self.classifier_dropout_prob = classifier_dropout_prob
        self.semantic_loss_ignore_index = semantic_loss_ignore_index
        super().__init__(**kwargs)


class ScaleGate(nn.Module):
    """Per-pixel softmax weights over the two branches from their concatenation."""

    def __init__(self, dim: int):
        super().__init__()
        self.gate = nn.Conv2d(2 * dim, 2, 1)

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        weights = self.gate(torch.cat((high, low), dim=1)).softmax(dim=1)
        return weights[:, :1] * high + weights[:, 1:] * low


class DctFrequencyForSemanticSegmentation(PreTrainedModel):
    """High- and low-frequency MiT branches, JPEG-block coefficients at stride 8, gated mixing."""

    config_class = DctFrequencyConfig
    main_input_name = "pixel_values"
    base_model_prefix = "high_encoder"
    input_modalities = ("image",)

    def __init__(self, config: DctFrequencyConfig):
        super().__init__(config)
        from transformers import SegformerModel

        mit = encoder_config(config.encoder, num_channels=6, num_labels=config.num_labels)
        mit.classifier_dropout_prob = config.classifier_dropout_prob
        self.dct = BlockDCT(config.low_band)
        self.stem = build_stem(getattr(config, "diffseg_stem", None))
        self.high_encoder = SegformerModel(mit)
        self.low_encoder = SegformerModel(encoder_config(config.encoder, num_channels=6))
        self.coefficient_proj = nn.Sequential(nn.Conv2d(3 * BLOCK * BLOCK, mit.hidden_sizes[1], 1),
                                              nn.BatchNorm2d(mit.hidden_sizes[1]))
        self.gates = nn.ModuleList(ScaleGate(size) for size in mit.hidden_sizes)
        self.decode_head = ReorderedSegformerDecodeHead(mit)
        self.post_init()
        nn.init.zeros_(self.coefficient_proj[1].weight)  # the coefficient path starts switched off

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
            nn.init.normal_(module.weight, std=(2.0 / fan_out) ** 0.5)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm | nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            if isinstance(module, nn.BatchNorm2d) and module.running_mean is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)

    def mixed_features(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """The four gated stage maps of a (B, 3, H, W) batch, H and W multiples of 8."""
        low, high, coeffs = self.dct.bands(pixel_values)
        rgb = self.stem(pixel_values)
        high_hidden, low_hidden = torch.cat((rgb, high), dim=1), torch.cat((rgb, low), dim=1)
        features = []
        for index, gate in enumerate(self.gates):
            high_hidden = run_stage(self.high_encoder, index, high_hidden)
            low_hidden = run_stage(self.low_encoder, index, low_hidden)
            if index == 1:
                high_hidden = high_hidden + self.coefficient_proj(torch.log1p(coeffs.abs()))
            features.append(gate(high_hidden, low_hidden))
        return features

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                return_dict: bool | None = None, **kwargs) -> SemanticSegmenterOutput | tuple:
        height, width = pixel_values.shape[-2:]
        # bottom/right padding keeps the grid anchored; integer shape arithmetic only (no math.ceil, no
        # branch on sizes), so the ONNX tracer records it for every input size, not the example's
        padded = F.pad(pixel_values, (0, (-width) % BLOCK, 0, (-height) % BLOCK))
        logits = self.decode_head(self.mixed_features(padded))
        logits = logits[..., :(height + 3) // 4, :(width + 3) // 4]
        loss = segmentation_loss(logits, labels, self.config.semantic_loss_ignore_index) \
            if labels is not None else None
        if return_dict is False:
            return (loss, logits) if loss is not None else (logits,)
        return SemanticSegmenterOutput(loss=loss, logits=logits)


def build_dct_frequency(variant: str, extra: dict, pretrained: str | None = None
                        ) -> DctFrequencyForSemanticSegmentation:
    """A DCT-frequency detector with MiT-``variant`` branches; ``pretrained`` (MiT encoder, Hub id or
    folder) initialises both (their extra input channels start at zero)."""
    model = DctFrequencyForSemanticSegmentation(DctFrequencyConfig(encoder=mit_sizes(variant), **extra))
    if pretrained is not None:
        load_mit_weights([model.high_encoder, model.low_encoder], pretrained)
    return model



#: Registry entries (see :mod:`diffseg30k.models.registry`).
# Both branches start from ImageNet MiT weights: they train at the backbone learning rate.
_COMMON = dict(family="dctfreq", optimizer="adamw", backbone_prefixes=("high_encoder.", "low_encoder."),
               display="DCT-frequency", abbreviation="DCT")
DETECTORS.register(DetectorSpec("dctfreq-tiny", description="tiny random-init DCT high/low-frequency model",
                                build=partial(build_dct_frequency, "tiny"), pretrained=None, tiny=True,
                                benchmark=("quick",),
                                **_COMMON))
DETECTORS.register(DetectorSpec(
    "dctfreq-b2", description="Mesorch-like: MiT-B2 on 8x8 block-DCT high/low bands, mixed per scale",
    build=partial(build_dct_frequency, "b2"), pretrained="nvidia/mit-b2", benchmark=("paper",), **_COMMON))

register_auto(DctFrequencyConfig, DctFrequencyForSemanticSegmentation)
