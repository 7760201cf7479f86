"""Trained tiny generator components of the mini profile: one trace per editor family.

Each mini editor passes its edited region through a small *trained* generator component of its
family: a diffusers :class:`~diffusers.AutoencoderKL` round trip (latent channels 4 for the
SD2/SDXL/Kolors/HunyuanDiT-like families, 16 for SD3.5/FLUX-like), a :class:`~diffusers.VQModel`
(MoVQ-like) for Kandinsky, and a GLIDE-like pixel-space path for GLIDE (4x down, then a
:class:`~diffusers.UNet2DModel` upsampler, like GLIDE's 64 -> 256 px stage).

The autoencoders share one trained trunk (encoder + decoder body, one per latent width); each family
has its own decoder *tail*: the upsampling operator (transposed convolution, pixel shuffle, nearest
+ conv, bilinear + conv -- the classic source of generator fingerprints), the last decoder block and
the output convolution, fine-tuned from its own seed (L1, then L1 + a patch-GAN term, so each tail
paints its own high-frequency texture). With a seed, the latent carries a seeded sampler-residual
stand-in (``ComponentSpec.latent_noise``) before decoding. Weights ship as safetensors package data
(``diffseg30k/generation/weights/``), made by :mod:`diffseg30k.generation.train_mini_components`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from diffseg30k.generation.component_spec import WEIGHTS_DIR, ComponentSpec

CHANNELS = (16, 32)
UPSAMPLERS = ("transposed", "pixelshuffle", "nearest", "bilinear")
#: Parameter-name prefixes of an AutoencoderKL decoder that form a family's tail.
TAIL_PREFIXES = ("decoder.up_blocks.0.upsamplers.", "decoder.up_blocks.1.", "decoder.conv_norm_out.",
                 "decoder.conv_out.")


class PixelShuffleUpsample(nn.Module):
    """Sub-pixel convolution: conv to 4x channels, then ``PixelShuffle(2)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, hidden: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        return self.shuffle(self.conv(hidden))


class BilinearUpsample(nn.Module):
    """Bilinear 2x interpolation followed by a 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, hidden: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        up = nn.functional.interpolate(hidden, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.conv(up)


def make_upsampler(kind: str, channels: int) -> nn.Module:
    """The 2x upsampling operator of a decoder tail (diffusers' ``Upsample2D`` where it has one)."""
    from diffusers.models.upsampling import Upsample2D

    if kind == "transposed":
        return Upsample2D(channels, use_conv_transpose=True, out_channels=channels)
    if kind == "nearest":
        return Upsample2D(channels, use_conv=True, out_channels=channels)
    if kind == "pixelshuffle":
        return PixelShuffleUpsample(channels)
    if kind == "bilinear":
        return BilinearUpsample(channels)
    raise ValueError(f"unknown upsampler {kind!r}; expected one of {UPSAMPLERS}")


def build_autoencoder(latent_channels: int, upsampler: str = "nearest"):
    """A 2-level AutoencoderKL (2x down) whose decoder upsamples with ``upsampler``."""
    from diffusers import AutoencoderKL

    model = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=latent_channels,
                          block_out_channels=CHANNELS, layers_per_block=1, norm_num_groups=8,
                          down_block_types=["DownEncoderBlock2D"] * 2,
                          up_block_types=["UpDecoderBlock2D"] * 2,
                          mid_block_add_attention=False, sample_size=128, force_upcast=False)
    model.decoder.up_blocks[0].upsamplers[0] = make_upsampler(upsampler, CHANNELS[-1])
    return model


def build_vq():
    """The Kandinsky family's MoVQ-like VQModel (2x down, 256 codes of 4 channels)."""
    from diffusers import VQModel

    return VQModel(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=CHANNELS,
                   layers_per_block=1, norm_num_groups=8, down_block_types=["DownEncoderBlock2D"] * 2,
                   up_block_types=["UpDecoderBlock2D"] * 2, num_vq_embeddings=256, vq_embed_dim=4,
                   mid_block_add_attention=False, sample_size=128)


def build_glide_upsampler():
    """GLIDE's pixel-space upsampler stand-in: a small UNet2DModel predicting the residual of a 4x
    bicubic upsampling (one deterministic step at timestep 0)."""
    from diffusers import UNet2DModel

    return UNet2DModel(sample_size=128, in_channels=3, out_channels=3, block_out_channels=(16, 32),
                       layers_per_block=1, down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8)


def tail_keys(state: dict[str, torch.Tensor]) -> list[str]:
    return [k for k in state if k.startswith(TAIL_PREFIXES)]


# ---------------------------------------------------------------------------------------- runtime
def to_tensor(image: Image.Image) -> torch.Tensor:
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(pixels).permute(2, 0, 1)[None]


def to_image(tensor: torch.Tensor) -> Image.Image:
    pixels = ((tensor[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(pixels, "RGB")


class FamilyComponent(nn.Module):
    """One family's trained component: ``forward`` maps pixels in [-1, 1] to its re-synthesis."""

    def __init__(self, spec: ComponentSpec) -> None:
        super().__init__()
        self.spec = spec
        if spec.kind == "vae":
            self.model = build_autoencoder(spec.latent_channels, spec.upsampler)
        elif spec.kind == "vq":
            self.model = build_vq()
        elif spec.kind == "glide":
            self.model = build_glide_upsampler()
        else:
            raise ValueError(f"{spec.family}: unknown component kind {spec.kind!r}")

    def perturb(self, latent: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """``latent`` plus the sampler-residual stand-in (``spec.latent_noise`` x its per-channel std);
        unchanged without a ``generator`` (training, or a component with no residual)."""
        if generator is None or not self.spec.latent_noise:
            return latent
        noise = torch.randn(latent.shape, generator=generator, dtype=latent.dtype)
        return latent + self.spec.latent_noise * latent.std(dim=(-2, -1), keepdim=True) * noise

    def forward(self, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The re-synthesis of ``pixels``; with ``generator``, the latent (GLIDE: the 4x-down image)
        carries the seeded sampler residual before it is decoded."""
        if self.spec.kind == "vae":
            latent = self.model.encode(pixels).latent_dist.mode()
            return self.model.decode(self.perturb(latent, generator)).sample
        if self.spec.kind == "vq":  # the residual lands before quantisation: it can switch codes
            return self.model.decode(self.perturb(self.model.encode(pixels).latents, generator)).sample
        side = pixels.shape[-2:]
        low = self.perturb(nn.functional.interpolate(pixels, scale_factor=0.25, mode="area"), generator)
        up = nn.functional.interpolate(low, size=side, mode="bicubic", align_corners=False)
        return up + self.model(up, 0).sample

    def resynthesize(self, image: Image.Image, seed: int | None = None) -> Image.Image:
        """The image passed through the component (sides padded to a multiple of 8 and cropped back);
        ``seed`` draws the sampler residual (none without one)."""
        width, height = image.size
        pad_w, pad_h = (-width) % 8, (-height) % 8
        tensor = to_tensor(image)
        if pad_w or pad_h:
            tensor = nn.functional.pad(tensor, (0, pad_w, 0, pad_h), mode="reflect")
        generator = None if seed is None else torch.Generator().manual_seed(int(seed) % 2**63)
        with torch.inference_mode():
            out = self(tensor, generator)[..., :height, :width]
        return to_image(out)


def weights_path(family: str, folder: Path | None = None) -> Path:
    return (folder or WEIGHTS_DIR) / f"{family}.safetensors"


def trunk_path(latent_channels: int, folder: Path | None = None) -> Path:
    return (folder or WEIGHTS_DIR) / f"trunk-latent{latent_channels}.safetensors"


def load_component(spec: ComponentSpec, folder: Path | None = None) -> FamilyComponent:
    """The family's component with its trained weights (trunk + tail for autoencoders)."""
    from safetensors.torch import load_file

    component = FamilyComponent(spec)
    own = weights_path(spec.family, folder)
    if not own.is_file():
        raise FileNotFoundError(f"{own}: trained weights of the mini {spec.family} component are missing; "
                                "make them with `python -m diffseg30k.generation.train_mini_components`")
    state = {k: v.float() for k, v in load_file(str(own)).items()}
    if spec.kind == "vae":
        trunk = {k: v.float() for k, v in load_file(str(trunk_path(spec.latent_channels, folder))).items()}
        state = {**{k: v for k, v in trunk.items() if not k.startswith(TAIL_PREFIXES)}, **state}
    component.model.load_state_dict(state, strict=True)
    component.eval().requires_grad_(False)
    return component


@lru_cache(maxsize=16)
def cached_component(spec: ComponentSpec) -> FamilyComponent:
    return load_component(spec)
