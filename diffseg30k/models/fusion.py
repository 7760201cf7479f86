"""Cross-modal fusion between two feature streams (CMX, Zhang et al. 2023, as used by TruFor) and the
confidence-weighted pooling of TruFor's detection head.

Per encoder stage, :class:`FeatureRectify` lets each stream correct the other with channel- and
pixel-wise weights computed from both, and :class:`FeatureFusion` merges the rectified pair (a
cross attention over channel contexts, then a convolutional channel embedding) into the features
the decoder sees. Module and parameter names follow the published TruFor/CMX checkpoints, so the
converter in :mod:`diffseg30k.models.trufor_weights` is a renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelWeights(nn.Module):
    """(avg, max)-pooled descriptors of both streams -> one sigmoid weight per channel and stream."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(4 * dim, 4 * dim), nn.ReLU(inplace=True),
                                 nn.Linear(4 * dim, 2 * dim), nn.Sigmoid())

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        both = torch.cat((first, second), dim=1)
        pooled = torch.cat((both.mean(dim=(2, 3)), both.amax(dim=(2, 3))), dim=1)
        return self.mlp(pooled).view(-1, 2, self.dim, 1, 1).transpose(0, 1)  # (2, B, C, 1, 1)


class SpatialWeights(nn.Module):
    """Both streams -> one sigmoid weight per pixel and stream."""

    def __init__(self, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv2d(2 * dim, dim, 1), nn.ReLU(inplace=True), nn.Conv2d(dim, 2, 1),
                                 nn.Sigmoid())

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat((first, second), dim=1)).unsqueeze(2).transpose(0, 1)  # (2, B, 1, H, W)


class FeatureRectify(nn.Module):
    """CMX's feature rectification: each stream plus the other's features, re-weighted by both."""

    def __init__(self, dim: int, channel_share: float = 0.5, spatial_share: float = 0.5):
        super().__init__()
        self.channel_share, self.spatial_share = channel_share, spatial_share
        self.channel_weights = ChannelWeights(dim)
        self.spatial_weights = SpatialWeights(dim)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        channel, spatial = self.channel_weights(first, second), self.spatial_weights(first, second)
        out_first = first + (self.channel_share * channel[1] + self.spatial_share * spatial[1]) * second
        out_second = second + (self.channel_share * channel[0] + self.spatial_share * spatial[0]) * first
        return out_first, out_second


class ChannelContextAttention(nn.Module):
    """Efficient cross attention: each stream's queries read the other's (C x C) key-value context."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"fusion width {dim} is not divisible by {num_heads} heads")
        self.num_heads, self.scale = num_heads, (dim // num_heads) ** -0.5
        self.kv1 = nn.Linear(dim, 2 * dim, bias=False)
        self.kv2 = nn.Linear(dim, 2 * dim, bias=False)

    def _heads(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, length, dim = tokens.shape
        return tokens.view(batch, length, self.num_heads, dim // self.num_heads).transpose(1, 2)

    def _context(self, tokens: torch.Tensor, kv: nn.Linear) -> torch.Tensor:
        key, value = kv(tokens).chunk(2, dim=-1)
        return ((self._heads(key).transpose(-2, -1) @ self._heads(value)) * self.scale).softmax(dim=-2)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, length, dim = first.shape
        out_first = self._heads(first) @ self._context(second, self.kv2)
        out_second = self._heads(second) @ self._context(first, self.kv1)
        return (out_first.transpose(1, 2).reshape(batch, length, dim),
                out_second.transpose(1, 2).reshape(batch, length, dim))


class CrossPath(nn.Module):
    """Half of each stream's projection goes through the cross attention, half stays its own."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.channel_proj1, self.channel_proj2 = nn.Linear(dim, 2 * dim), nn.Linear(dim, 2 * dim)
        self.cross_attn = ChannelContextAttention(dim, num_heads)
        self.end_proj1, self.end_proj2 = nn.Linear(2 * dim, dim), nn.Linear(2 * dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        own1, shared1 = F.relu(self.channel_proj1(first)).chunk(2, dim=-1)
        own2, shared2 = F.relu(self.channel_proj2(second)).chunk(2, dim=-1)
        cross1, cross2 = self.cross_attn(shared1, shared2)
        return (self.norm1(first + self.end_proj1(torch.cat((own1, cross1), dim=-1))),
                self.norm2(second + self.end_proj2(torch.cat((own2, cross2), dim=-1))))


class ChannelEmbed(nn.Module):
    """(B, N, 2C) tokens -> (B, C, H, W): a residual 1x1 plus a 1x1 / depth-wise 3x3 / 1x1 path."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.residual = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.channel_embed = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1), nn.Conv2d(out_channels, out_channels, 3, padding=1,
                                                               groups=out_channels),
            nn.ReLU(inplace=True), nn.Conv2d(out_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        grid = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, height, width)
        return self.norm(self.residual(grid) + self.channel_embed(grid))


class FeatureFusion(nn.Module):
    """CMX's feature fusion module: two (B, C, H, W) streams -> one (B, C, H, W) map."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.cross = CrossPath(dim, num_heads)
        self.channel_emb = ChannelEmbed(2 * dim, dim)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        height, width = first.shape[-2:]
        first, second = self.cross(first.flatten(2).transpose(1, 2), second.flatten(2).transpose(1, 2))
        return self.channel_emb(torch.cat((first, second), dim=-1), height, width)


def weighted_statistics(values: torch.Tensor, log_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Soft min, soft max, mean and mean square of each channel of ``values`` (B, C, H, W) under the
    pixel weights ``softmax(log_weights)`` (uniform when ``None``) -> (B, 4C)."""
    flat = values.flatten(2)
    if log_weights is None:
        log_weights = torch.zeros_like(flat[:, :1])
    log_w = F.log_softmax(log_weights.flatten(2), dim=-1)
    weights = log_w.exp()
    return torch.cat((-logsumexp(log_w - flat), logsumexp(log_w + flat),
                      (weights * flat).sum(-1), (weights * flat * flat).sum(-1)), dim=1)


def logsumexp(values: torch.Tensor, dim: int = -1, keepdim: bool = False) -> torch.Tensor:
    """``torch.logsumexp`` from max/exp/sum/log: the same numbers, but an ONNX export that OpenVINO
    reads right (the exporter's ReduceLogSumExp loses the rank, or converts to wrong values)."""
    peak = values.amax(dim=dim, keepdim=True)
    out = peak + (values - peak).exp().sum(dim=dim, keepdim=True).log()
    return out if keepdim else out.squeeze(dim)
