"""GLIDE's text encoder: a CLIP-style pre-norm transformer over BPE tokens, without attention mask;
padded positions get a learned padding embedding instead (``xf_padding``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from diffseg30k.generation.glide.layers import LayerNorm32


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection laid out per head as [q_h, k_h, v_h]."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, width * 3)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length, width = x.shape
        ch = width // self.heads
        q, k, v = self.qkv(x).view(b, length, self.heads, 3 * ch).transpose(1, 2).split(ch, dim=-1)
        h = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, length, width)
        return self.proj(h)


class TransformerLayer(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1 = LayerNorm32(width)
        self.attention = SelfAttention(width, heads)
        self.norm2 = LayerNorm32(width)
        self.fc1 = nn.Linear(width, width * 4)
        self.fc2 = nn.Linear(width * 4, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class TextEncoder(nn.Module):
    """Encodes ``tokens`` (B, text_ctx) into per-token features (B, text_ctx, width) and a pooled
    vector from the last position, projected to the UNet's embedding width."""

    def __init__(self, n_vocab: int, text_ctx: int, width: int, layers: int, heads: int, emb_channels: int,
                 final_ln: bool = True, padding: bool = True) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(n_vocab, width)
        self.position_embedding = nn.Parameter(torch.randn(text_ctx, width) * 0.01)
        self.padding_embedding = nn.Parameter(torch.randn(text_ctx, width) * 0.01) if padding else None
        self.layers = nn.ModuleList(TransformerLayer(width, heads) for _ in range(layers))
        self.final_norm = LayerNorm32(width) if final_ln else None
        self.projection = nn.Linear(width, emb_channels)

    def forward(self, tokens: torch.Tensor,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(features, pooled)``; ``mask`` is True at real (not padding) tokens."""
        x = self.token_embedding(tokens.long()) + self.position_embedding[None]
        if self.padding_embedding is not None:
            if mask is None:
                raise ValueError("this text encoder uses padding embeddings: pass the token mask")
            x = torch.where(mask[..., None].bool(), x, self.padding_embedding[None])
        x = x.to(self.projection.weight.dtype)
        for layer in self.layers:
            x = layer(x)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x, self.projection(x[:, -1])
