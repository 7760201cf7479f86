"""FLUX.1 Fill (``FluxFillPipeline``: masked image and mask concatenated to the packed latents)."""

from __future__ import annotations

from typing import Any

from diffseg30k.generation.component_spec import ComponentSpec
from diffseg30k.generation.editors import tiny
from diffseg30k.generation.editors.common import DiffusersEditor
from diffseg30k.generation.editors.registry import EDITORS


@EDITORS.register
class FluxEditor(DiffusersEditor):
    name = "flux"
    component = ComponentSpec("flux", "vae", 16, "transposed", seed=26)
    pipeline_class_name = "FluxFillPipeline"
    steps = 50
    guidance_scale = 30.0
    paper_dtype = "bfloat16"

    def build_tiny(self, seed: int) -> Any:
        from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel

        latent, levels = 4, 2
        scale = 2 ** (levels - 1)
        tiny.seeded(seed + 3)
        transformer = tiny.frozen(FluxTransformer2DModel(
            patch_size=1, in_channels=2 * 4 * latent + 4 * scale * scale, out_channels=4 * latent,
            num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
            joint_attention_dim=tiny.TEXT_HIDDEN, pooled_projection_dim=tiny.TEXT_HIDDEN,
            guidance_embeds=True, axes_dims_rope=[4, 4, 8]))
        return self.pipeline_class(
            vae=tiny.vae(seed, levels=levels, latent_channels=latent, use_quant_conv=False,
                         use_post_quant_conv=False, shift_factor=0.1, scaling_factor=0.4),
            text_encoder=tiny.clip_text_model(seed + 1), text_encoder_2=tiny.t5_encoder(seed + 2),
            tokenizer=tiny.clip_tokenizer(), tokenizer_2=tiny.t5_tokenizer(), transformer=transformer,
            scheduler=FlowMatchEulerDiscreteScheduler())

    def call_kwargs(self, request: Any) -> dict[str, Any]:
        return {"max_sequence_length": 512 if self.profile == "paper" else 64}
