"""Stable Diffusion 2 inpainting (``StableDiffusionInpaintPipeline``, 9-channel UNet)."""

from __future__ import annotations

from typing import Any

from diffseg30k.generation.component_spec import ComponentSpec
from diffseg30k.generation.editors import tiny
from diffseg30k.generation.editors.common import DiffusersEditor
from diffseg30k.generation.editors.registry import EDITORS


@EDITORS.register
class SD2Editor(DiffusersEditor):
    name = "sd2"
    component = ComponentSpec("sd2", "vae", 4, "transposed", seed=21)
    pipeline_class_name = "StableDiffusionInpaintPipeline"
    steps = 50

    def build_tiny(self, seed: int) -> Any:
        from diffusers import DDIMScheduler

        return self.pipeline_class(
            vae=tiny.vae(seed, levels=3), text_encoder=tiny.clip_text_model(seed + 1),
            tokenizer=tiny.clip_tokenizer(),
            unet=tiny.unet(seed + 2, in_channels=9, cross_attention_dim=tiny.TEXT_HIDDEN),
            scheduler=DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                    clip_sample=False, set_alpha_to_one=False, steps_offset=1),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False)

    def pretrained_kwargs(self) -> dict[str, Any]:
        return {"safety_checker": None, "requires_safety_checker": False}
