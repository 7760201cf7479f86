"""Model options of GLIDE's inpainting models (Nichol et al. 2021) as named presets.

The values follow the released ``base_inpaint.pt`` and ``upsample_inpaint.pt`` checkpoints
(openai/glide-text2im ``model_and_diffusion_defaults`` with ``inpaint=True``); the tiny presets keep
the same architecture at a size that runs in a unit test.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

#: Channel multipliers the original code picks from the image size when none is given.
_DEFAULT_CHANNEL_MULT = {256: (1, 1, 2, 2, 4, 4), 128: (1, 1, 2, 3, 4), 64: (1, 2, 3, 4)}


@dataclass(frozen=True)
class GlideConfig:
    """Architecture and diffusion options of one GLIDE model.

    ``attention_resolutions`` are feature-map sides (as in the original options, e.g. 32,16,8 on a
    64-px model); ``super_res`` adds the low-resolution image to the inputs; inpainting models always
    add the masked known image and the mask (``1`` = known pixel).
    """

    image_size: int = 64
    model_channels: int = 192
    num_res_blocks: int = 3
    channel_mult: tuple[int, ...] = ()
    attention_resolutions: tuple[int, ...] = (32, 16, 8)
    num_head_channels: int = 64
    norm_groups: int = 32
    use_scale_shift_norm: bool = True
    resblock_updown: bool = True
    text_ctx: int = 128
    xf_width: int = 512
    xf_layers: int = 16
    xf_heads: int = 8
    xf_final_ln: bool = True
    xf_padding: bool = True
    n_vocab: int = 50257
    super_res: bool = False
    diffusion_steps: int = 1000
    noise_schedule: str = "squaredcos_cap_v2"
    #: Sampling steps (the original ``timestep_respacing``: a count, "fast27" or "ddimN").
    sampling_steps: str = "100"

    @property
    def mult(self) -> tuple[int, ...]:
        """Channel multipliers per level (the original defaults when none were given)."""
        if self.channel_mult:
            return tuple(self.channel_mult)
        try:
            return _DEFAULT_CHANNEL_MULT[self.image_size]
        except KeyError:
            raise ValueError(f"no default channel_mult for image size {self.image_size}; give one") from None

    @property
    def attention_downsampling(self) -> tuple[int, ...]:
        """Downsampling factors at which the UNet has attention (image_size // resolution)."""
        return tuple(self.image_size // r for r in self.attention_resolutions)

    @property
    def in_channels(self) -> int:
        """Noisy image + masked known image + mask (+ upsampled low-res image)."""
        return 3 + 3 + 1 + (3 if self.super_res else 0)

    @property
    def out_channels(self) -> int:
        """Predicted noise (3) and the learned variance interpolation (3)."""
        return 6

    def with_options(self, **changes: Any) -> GlideConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["channel_mult"] = list(self.mult)
        data["attention_resolutions"] = list(self.attention_resolutions)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GlideConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("channel_mult", "attention_resolutions"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


#: The 64-px text-conditional inpainting model (``base_inpaint.pt``), sampled with 100 steps.
BASE_INPAINT = GlideConfig()
#: The 64 -> 256 px inpainting upsampler (``upsample_inpaint.pt``), sampled with 27 steps.
UPSAMPLE_INPAINT = GlideConfig(image_size=256, num_res_blocks=2, noise_schedule="linear", super_res=True,
                               sampling_steps="fast27")

#: Tiny random configurations (tests and ``--profile mini``): same layout, a few thousand times smaller.
TINY_BASE_INPAINT = GlideConfig(image_size=16, model_channels=32, num_res_blocks=1, channel_mult=(1, 2),
                                attention_resolutions=(8,), num_head_channels=16, norm_groups=8,
                                text_ctx=16, xf_width=32, xf_layers=2, xf_heads=4, n_vocab=300,
                                diffusion_steps=50, sampling_steps="4")
TINY_UPSAMPLE_INPAINT = TINY_BASE_INPAINT.with_options(image_size=64, channel_mult=(1, 1, 2),
                                                       attention_resolutions=(16,), super_res=True,
                                                       noise_schedule="linear", sampling_steps="3")

PRESETS: dict[str, GlideConfig] = {
    "base-inpaint": BASE_INPAINT,
    "upsample-inpaint": UPSAMPLE_INPAINT,
    "tiny-base-inpaint": TINY_BASE_INPAINT,
    "tiny-upsample-inpaint": TINY_UPSAMPLE_INPAINT,
}


def get_config(name: str) -> GlideConfig:
    """The preset called ``name`` (see :data:`PRESETS`)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown GLIDE preset {name!r}; known: {', '.join(PRESETS)}") from None
