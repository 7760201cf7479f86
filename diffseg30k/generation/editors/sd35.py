"""Stable Diffusion 3.5 Medium inpainting (``StableDiffusion3InpaintPipeline``)."""

from __future__ import annotations

from typing import Any

from diffseg30k.generation.component_spec import ComponentSpec
from diffseg30k.generation.editors import tiny
from diffseg30k.generation.editors.common import DiffusersEditor
from diffseg30k.generation.editors.registry import EDITORS


@EDITORS.register
class SD35Editor(DiffusersEditor):
    name = "sd35"
    component = ComponentSpec("sd35", "vae", 16, "pixelshuffle", seed=25)
    pipeline_class_name = "StableDiffusion3InpaintPipeline"
    steps = 40
    guidance_scale = 7.0
    paper_dtype = "bfloat16"

    def build_tiny(self, seed: int) -> Any:
        from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel

        hidden = tiny.TEXT_HIDDEN
        tiny.seeded(seed + 3)
        transformer = tiny.frozen(SD3Transformer2DModel(
            sample_size=32, patch_size=2, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=8,
            num_attention_heads=4, joint_attention_dim=hidden, caption_projection_dim=32,
            pooled_projection_dim=2 * hidden, pos_embed_max_size=64))
        return self.pipeline_class(
            vae=tiny.vae(seed, levels=2, latent_channels=16, use_quant_conv=False, use_post_quant_conv=False,
                         shift_factor=0.06, scaling_factor=1.5),
            text_encoder=tiny.clip_text_model(seed + 1, with_projection=True),
            text_encoder_2=tiny.clip_text_model(seed + 2, with_projection=True),
            text_encoder_3=tiny.t5_encoder(seed + 4), tokenizer=tiny.clip_tokenizer(),
            tokenizer_2=tiny.clip_tokenizer(), tokenizer_3=tiny.t5_tokenizer(), transformer=transformer,
            scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))

    def call_kwargs(self, request: Any) -> dict[str, Any]:
        return {"strength": 1.0, "max_sequence_length": 256 if self.profile == "paper" else 77}
