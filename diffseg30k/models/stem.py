"""Input stems shared by every detector family: ``diffseg_stem`` in a detector's config picks one.

``srm``: the three fixed SRM high-pass residual filters of Zhou et al. (CVPR 2018, "Learning Rich
Features for Image Manipulation Detection"), applied to each colour channel at full resolution,
followed by a small learned full-resolution block (3x3 conv, ReLU, 1x1 conv) added to the RGB input,
3 channels out (so any backbone, pretrained or not, takes its output). The ReLU turns residuals into
local energy, which survives the backbone's strided downsampling. Editor traces are high-frequency; a
backbone's first strided convolution would otherwise average most of them away.
``bayar``: Bayar & Stamm's constrained convolution (IEEE TIFS 2018, "Constrained Convolutional Neural
Networks: A New Approach Towards General Purpose Image Manipulation Detection"): three learned 5x5
prediction-error filters per colour channel whose centre weight is -1 and whose other weights sum to
1 (the constraint is a projection applied in every forward pass, so it holds throughout training),
followed by the same learned block added to the RGB input.

Both keep three channels at full resolution, so each family puts its stem in front of the encoder's
first patch embedding (the RGB stream of a multi-stream model, the trainable detail branch of the
frozen foundation localiser: see each family's module).
The fixed filters are a buffer saved with the weights (a non-persistent buffer is left uninitialised
by ``from_pretrained``'s meta-device loading); ``config.diffseg_stem`` rebuilds the stem on loading.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: The three 5x5 SRM kernels (normalised by 4, 12 and 2 as in the original paper).
SRM_KERNELS = (
    [[0, 0, 0, 0, 0], [0, -1, 2, -1, 0], [0, 2, -4, 2, 0], [0, -1, 2, -1, 0], [0, 0, 0, 0, 0]],
    [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]],
    [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, -2, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
)
SRM_NORMS = (4.0, 12.0, 2.0)
STEMS = ("none", "srm", "bayar")


class ResidualMix(nn.Module):
    """RGB + f([RGB, gain * residuals]); f = 3x3 conv, ReLU, 1x1 conv to the RGB channels."""

    def __init__(self, channels: int, residuals: int, gain: float = 4.0, hidden: int = 16):
        super().__init__()
        self.gain = gain  # residuals are ~10x smaller than normalised pixels
        self.mix = nn.Sequential(nn.Conv2d(channels + residuals, hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(hidden, channels, 1))

    def combine(self, pixel_values: torch.Tensor, residuals: torch.Tensor) -> torch.Tensor:
        return pixel_values + self.mix(torch.cat([pixel_values, self.gain * residuals], dim=1))


class SRMStem(ResidualMix):
    """RGB + f([RGB, 9 SRM residuals]) at full resolution (the fixed SRM kernels, depthwise)."""

    def __init__(self, channels: int = 3, gain: float = 4.0, hidden: int = 16):
        super().__init__(channels, channels * 3, gain, hidden)
        kernels = torch.tensor(SRM_KERNELS, dtype=torch.float32) / torch.tensor(SRM_NORMS).view(3, 1, 1)
        # depthwise: every input channel through each of the three kernels -> 3 * channels maps
        self.register_buffer("srm", kernels.repeat(channels, 1, 1).unsqueeze(1))
        self.channels = channels

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        residuals = F.conv2d(pixel_values, self.srm.to(pixel_values.dtype), padding=2, groups=self.channels)
        return self.combine(pixel_values, residuals)


class BayarStem(ResidualMix):
    """RGB + f([RGB, Bayar residuals]): ``filters`` constrained 5x5 filters per colour channel."""

    def __init__(self, channels: int = 3, filters: int = 3, size: int = 5, gain: float = 4.0,
                 hidden: int = 16):
        super().__init__(channels, channels * filters, gain, hidden)
        self.channels = channels
        self.weight = nn.Parameter(torch.randn(channels * filters, 1, size, size) * 0.05)

    def constrained_weight(self) -> torch.Tensor:
        """The filters projected on Bayar's constraint: centre -1, the other weights sum to 1."""
        size = self.weight.shape[-1]
        centre = torch.zeros(size * size, dtype=self.weight.dtype, device=self.weight.device)
        centre[size * size // 2] = 1.0
        flat = self.weight.flatten(1) * (1 - centre)
        flat = flat + (1 - flat.sum(dim=1, keepdim=True)) / (size * size - 1) * (1 - centre)
        return (flat - centre).view_as(self.weight)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        weight = self.constrained_weight().to(pixel_values.dtype)
        residuals = F.conv2d(pixel_values, weight, padding=self.weight.shape[-1] // 2, groups=self.channels)
        return self.combine(pixel_values, residuals)


def build_stem(name: str | None) -> nn.Module:
    """The stem named by a detector config's ``diffseg_stem`` (None / 'none': the identity)."""
    if name in (None, "none"):
        return nn.Identity()
    if name == "srm":
        return SRMStem()
    if name == "bayar":
        return BayarStem()
    raise ValueError(f"unknown input stem {name!r}; expected one of {STEMS}")
