"""Input stems shared by the detectors: ``diffseg_stem`` in a detector's config picks one.

``srm``: the three fixed SRM high-pass residual filters of Zhou et al. (CVPR 2018, "Learning Rich
Features for Image Manipulation Detection"), applied to each colour channel at full resolution,
followed by a small learned full-resolution block (3x3 conv, ReLU, 1x1 conv) added to the RGB input,
3 channels out (so any backbone, pretrained or not, takes its output). The ReLU turns residuals into
local energy, which survives the backbone's strided downsampling. Editor traces are high-frequency; a
backbone's first strided convolution would otherwise average most of them away.
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
STEMS = ("none", "srm")


class SRMStem(nn.Module):
    """RGB + f([RGB, 9 SRM residuals]) at full resolution; f = 3x3 conv, ReLU, 1x1 conv to 3 channels."""

    def __init__(self, channels: int = 3, gain: float = 4.0, hidden: int = 16):
        super().__init__()
        kernels = torch.tensor(SRM_KERNELS, dtype=torch.float32) / torch.tensor(SRM_NORMS).view(3, 1, 1)
        # depthwise: every input channel through each of the three kernels -> 3 * channels maps
        self.register_buffer("srm", kernels.repeat(channels, 1, 1).unsqueeze(1))
        self.channels = channels
        self.gain = gain  # residuals are ~10x smaller than normalised pixels
        self.mix = nn.Sequential(nn.Conv2d(channels * 4, hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(hidden, channels, 1))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        residuals = F.conv2d(pixel_values, self.srm.to(pixel_values.dtype), padding=2, groups=self.channels)
        mixed = self.mix(torch.cat([pixel_values, self.gain * residuals], dim=1))
        return pixel_values + mixed


def build_stem(name: str | None) -> nn.Module:
    """The stem named by a detector config's ``diffseg_stem`` (None / 'none': the identity)."""
    if name in (None, "none"):
        return nn.Identity()
    if name == "srm":
        return SRMStem()
    raise ValueError(f"unknown input stem {name!r}; expected one of {STEMS}")
