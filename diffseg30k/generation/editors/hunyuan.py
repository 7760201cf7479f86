"""HunyuanDiT 1.1: diffusers has no HunyuanDiT inpainting pipeline, so ``HunyuanDiTPipeline``
inpaints by masked latent blending (bilingual BERT + mT5 text encoders, DiT backbone)."""

from __future__ import annotations

from typing import Any

from diffseg30k.generation.component_spec import ComponentSpec
from diffseg30k.generation.editors import tiny
from diffseg30k.generation.editors.common import BlendedLatentEditor
from diffseg30k.generation.editors.registry import EDITORS


@EDITORS.register
class HunyuanEditor(BlendedLatentEditor):
    name = "hunyuan"
    component = ComponentSpec("hunyuan", "vae", 4, "bilinear", seed=24)
    pipeline_class_name = "HunyuanDiTPipeline"
    steps = 50
    guidance_scale = 5.0

    def build_tiny(self, seed: int) -> Any:
        from diffusers import DDPMScheduler, HunyuanDiT2DModel

        hidden = tiny.TEXT_HIDDEN
        tiny.seeded(seed + 3)
        transformer = tiny.frozen(HunyuanDiT2DModel(
            sample_size=8, num_layers=2, patch_size=2, attention_head_dim=8, num_attention_heads=3,
            in_channels=4, cross_attention_dim=hidden, cross_attention_dim_t5=hidden,
            pooled_projection_dim=16, hidden_size=24, text_len=77, text_len_t5=256,
            activation_fn="gelu-approximate"))
        return self.pipeline_class(
            vae=tiny.vae(seed, levels=4, width=8), text_encoder=tiny.bert_model(seed + 1, hidden),
            tokenizer=tiny.bert_tokenizer(), text_encoder_2=tiny.t5_encoder(seed + 2, hidden),
            tokenizer_2=tiny.t5_tokenizer(), transformer=transformer,
            scheduler=DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.03,
                                    steps_offset=1, clip_sample=False),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False)

    def call_kwargs(self, request: Any) -> dict[str, Any]:
        return {"use_resolution_binning": False}
