"""Building blocks of GLIDE's ADM-style UNet: normalisation, timestep embedding, residual and
attention blocks (attention over the feature map with the text tokens prepended as extra keys)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 whatever the activation dtype (fp16-safe), optional SiLU."""

    def __init__(self, groups: int, channels: int, silu: bool = False) -> None:
        super().__init__(groups, channels, eps=1e-5)
        self.silu = silu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.group_norm(x.float(), self.num_groups, self.weight.float(), self.bias.float(), self.eps)
        y = F.silu(y) if self.silu else y
        return y.to(x.dtype)


class LayerNorm32(nn.LayerNorm):
    """LayerNorm computed in float32 (the text transformer's norms)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps)
        return y.to(x.dtype)


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps: ``[cos, sin]`` halves, float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = timesteps.float()[:, None] * freqs.to(timesteps.device)[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding


class ResBlock(nn.Module):
    """Residual block with FiLM (scale-shift) conditioning on the timestep+text embedding; with
    ``resample`` = "down"/"up" it also halves/doubles the resolution (average pool / nearest)."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int | None = None, groups: int = 32,
                 scale_shift: bool = True, resample: str | None = None) -> None:
        super().__init__()
        out_channels = out_channels or channels
        self.scale_shift = scale_shift
        self.resample = resample
        self.norm1 = GroupNorm32(groups, channels, silu=True)
        self.conv1 = nn.Conv2d(channels, out_channels, 3, padding=1)
        self.emb_proj = nn.Linear(emb_channels, out_channels * (2 if scale_shift else 1))
        self.norm2 = GroupNorm32(groups, out_channels, silu=not scale_shift)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        if self.resample:
            h, x = self._resample(h), self._resample(x)
        h = self.conv1(h)
        emb_out = self.emb_proj(F.silu(emb)).to(h.dtype)[..., None, None]
        if self.scale_shift:
            scale, shift = emb_out.chunk(2, dim=1)
            h = F.silu(self.norm2(h) * (1 + scale) + shift)
        else:
            h = self.norm2(h + emb_out)
        return self.skip(x) + self.conv2(h)


class AttentionBlock(nn.Module):
    """Multi-head self-attention over the feature map; the projected text tokens are prepended to
    the keys and values, so every position also attends to the prompt (GLIDE's text conditioning).

    The fused ``qkv`` projection is laid out per head as ``[q_h, k_h, v_h]`` and ``text_kv`` as
    ``[k_h, v_h]``, matching the released weights.
    """

    def __init__(self, channels: int, head_channels: int, groups: int = 32,
                 text_channels: int | None = None) -> None:
        super().__init__()
        if channels % head_channels:
            raise ValueError(f"{channels} channels are not divisible into heads of {head_channels}")
        self.heads = channels // head_channels
        self.norm = GroupNorm32(groups, channels)
        self.qkv = nn.Linear(channels, channels * 3)
        self.text_kv = nn.Linear(text_channels, channels * 2) if text_channels else None
        self.proj_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        b, c, height, width = x.shape
        heads, ch = self.heads, c // self.heads
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        qkv = self.qkv(tokens).view(b, -1, heads, 3 * ch).transpose(1, 2)  # (B, heads, HW, 3ch)
        q, k, v = qkv.split(ch, dim=-1)
        if text is not None and self.text_kv is not None:
            kv = self.text_kv(text.to(tokens.dtype)).view(b, -1, heads, 2 * ch).transpose(1, 2)
            text_k, text_v = kv.split(ch, dim=-1)
            k, v = torch.cat([text_k, k], dim=2), torch.cat([text_v, v], dim=2)
        h = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(ch), as the original
        h = h.transpose(1, 2).reshape(b, -1, c)
        return x + self.proj_out(h).transpose(1, 2).reshape(b, c, height, width)
