"""GLIDE's text-conditional inpainting UNet (the ADM architecture of Dhariwal & Nichol 2021).

Inputs are the noisy image, the known image times the known-pixel mask and the mask (and, for the
upsampler, the bilinearly upsampled low-resolution image); the output is the predicted noise and
the variance interpolation (6 channels). The text enters twice: the pooled text vector is added to
the timestep embedding, and every attention block also attends to the per-token text features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from diffseg30k.generation.glide.config import GlideConfig
from diffseg30k.generation.glide.layers import AttentionBlock, GroupNorm32, ResBlock, timestep_embedding
from diffseg30k.generation.glide.text import TextEncoder


class UNetStage(nn.Module):
    """One step of the encoder or decoder: a residual block, optional attention, optional resampling
    residual block (the decoder's up-sampling happens after the attention)."""

    def __init__(self, resnet: ResBlock, attention: AttentionBlock | None = None,
                 resample: ResBlock | None = None) -> None:
        super().__init__()
        self.resnet = resnet
        self.attention = attention
        self.resample = resample

    def forward(self, h: torch.Tensor, emb: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
        h = self.resnet(h, emb)
        if self.attention is not None:
            h = self.attention(h, text)
        if self.resample is not None:
            h = self.resample(h, emb)
        return h


class MiddleBlock(nn.Module):
    """Residual block, attention, residual block at the lowest resolution."""

    def __init__(self, resnet_1: ResBlock, attention: AttentionBlock, resnet_2: ResBlock) -> None:
        super().__init__()
        self.resnet_1, self.attention, self.resnet_2 = resnet_1, attention, resnet_2

    def forward(self, h: torch.Tensor, emb: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
        return self.resnet_2(self.attention(self.resnet_1(h, emb), text), emb)


class GlideUNet(nn.Module):
    """The inpainting (``super_res=False``) or upsampling-inpainting (``super_res=True``) model."""

    def __init__(self, config: GlideConfig) -> None:
        super().__init__()
        self.config = config
        mc, groups, mult = config.model_channels, config.norm_groups, config.mult
        emb_ch = mc * 4
        attention_ds = set(config.attention_downsampling)

        def resnet(cin: int, cout: int | None = None, resample: str | None = None) -> ResBlock:
            return ResBlock(cin, emb_ch, cout, groups, config.use_scale_shift_norm, resample)

        def attention(ch: int) -> AttentionBlock:
            return AttentionBlock(ch, config.num_head_channels, groups, config.xf_width or None)

        self.time_embed_1 = nn.Linear(mc, emb_ch)
        self.time_embed_2 = nn.Linear(emb_ch, emb_ch)
        self.text_encoder = TextEncoder(config.n_vocab, config.text_ctx, config.xf_width, config.xf_layers,
                                        config.xf_heads, emb_ch, config.xf_final_ln, config.xf_padding)
        ch = mult[0] * mc
        self.input_conv = nn.Conv2d(config.in_channels, ch, 3, padding=1)
        skip_channels, ds = [ch], 1
        self.encoder = nn.ModuleList()
        for level, m in enumerate(mult):
            for _ in range(config.num_res_blocks):
                block = resnet(ch, m * mc)
                ch = m * mc
                self.encoder.append(UNetStage(block, attention(ch) if ds in attention_ds else None))
                skip_channels.append(ch)
            if level != len(mult) - 1:
                self.encoder.append(UNetStage(self._updown(resnet, ch, "down")))
                skip_channels.append(ch)
                ds *= 2
        self.middle = MiddleBlock(resnet(ch), attention(ch), resnet(ch))
        self.decoder = nn.ModuleList()
        for level, m in reversed(list(enumerate(mult))):
            for i in range(config.num_res_blocks + 1):
                block = resnet(ch + skip_channels.pop(), m * mc)
                ch = m * mc
                attn = attention(ch) if ds in attention_ds else None
                up = None
                if level and i == config.num_res_blocks:
                    up = self._updown(resnet, ch, "up")
                    ds //= 2
                self.decoder.append(UNetStage(block, attn, up))
        self.output_norm = GroupNorm32(groups, ch, silu=True)
        self.output_conv = nn.Conv2d(ch, config.out_channels, 3, padding=1)

    def _updown(self, resnet, ch: int, direction: str) -> ResBlock:
        if not self.config.resblock_updown:
            raise NotImplementedError("GLIDE models resample with residual blocks (resblock_updown=True)")
        return resnet(ch, ch, direction)

    @property
    def dtype(self) -> torch.dtype:
        return self.input_conv.weight.dtype

    def encode_text(self, tokens: torch.Tensor,
                    mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token text features and the pooled text embedding (computed once per sampling run)."""
        return self.text_encoder(tokens, mask)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, inpaint_image: torch.Tensor,
                inpaint_mask: torch.Tensor, tokens: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, low_res: torch.Tensor | None = None,
                text: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Predict noise + variance for ``x`` (B, 3, H, W). ``inpaint_mask`` (B, 1, H, W) is 1 at known
        pixels. Pass ``tokens``/``mask`` or a precomputed ``text = encode_text(tokens, mask)``."""
        inputs = [x, inpaint_image * inpaint_mask, inpaint_mask]
        if self.config.super_res:
            if low_res is None:
                raise ValueError("the upsampler needs the low-resolution image (low_res)")
            inputs.append(F.interpolate(low_res, x.shape[-2:], mode="bilinear", align_corners=False))
        h = torch.cat(inputs, dim=1).to(self.dtype)
        emb = self.time_embed_2(F.silu(self.time_embed_1(
            timestep_embedding(timesteps, self.config.model_channels).to(self.dtype))))
        features, pooled = text if text is not None else self.encode_text(tokens, mask)
        emb = emb + pooled.to(emb.dtype)
        h = self.input_conv(h)
        skips = [h]
        for stage in self.encoder:
            h = stage(h, emb, features)
            skips.append(h)
        h = self.middle(h, emb, features)
        for stage in self.decoder:
            h = stage(torch.cat([h, skips.pop()], dim=1), emb, features)
        return self.output_conv(self.output_norm(h)).to(x.dtype)
