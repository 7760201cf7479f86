"""Kolors: diffusers has no Kolors inpainting pipeline, so ``KolorsPipeline`` inpaints by masked
latent blending (ChatGLM text encoder, SDXL-style UNet)."""

from __future__ import annotations

from typing import Any

from diffseg30k.generation.component_spec import ComponentSpec
from diffseg30k.generation.editors import tiny
from diffseg30k.generation.editors.common import BlendedLatentEditor
from diffseg30k.generation.editors.registry import EDITORS


@EDITORS.register
class KolorsEditor(BlendedLatentEditor):
    name = "kolors"
    component = ComponentSpec("kolors", "vae", 4, "pixelshuffle", seed=23)
    pipeline_class_name = "KolorsPipeline"
    steps = 50
    guidance_scale = 6.5

    def build_tiny(self, seed: int) -> Any:
        from diffusers import EulerDiscreteScheduler

        hidden = tiny.TEXT_HIDDEN
        return self.pipeline_class(
            vae=tiny.vae(seed, levels=3, width=8), text_encoder=tiny.chatglm_model(seed + 1, hidden),
            tokenizer=tiny.chatglm_tokenizer(),
            unet=tiny.sdxl_unet(seed + 2, in_channels=4, text_hidden=hidden, pooled_dim=hidden),
            scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.014, steps_offset=1,
                                             beta_schedule="scaled_linear", timestep_spacing="leading"),
            force_zeros_for_empty_prompt=False)

    def pretrained_kwargs(self) -> dict[str, Any]:
        return {"variant": "fp16"} if self.torch_dtype().itemsize == 2 else {}

    def call_kwargs(self, request: Any) -> dict[str, Any]:
        return {"max_sequence_length": 256 if self.profile == "paper" else 64}
