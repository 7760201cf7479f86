"""Kandinsky 2.2 inpainting (``KandinskyV22InpaintCombinedPipeline``: prior + inpainting decoder)."""

from __future__ import annotations

from typing import Any

from diffseg30k.generation.component_spec import ComponentSpec
from diffseg30k.generation.editors import tiny
from diffseg30k.generation.editors.common import DiffusersEditor
from diffseg30k.generation.editors.registry import EDITORS


@EDITORS.register
class KandinskyEditor(DiffusersEditor):
    name = "kandinsky"
    component = ComponentSpec("kandinsky", "vq", 4, "nearest", seed=27)
    pipeline_class_name = "KandinskyV22InpaintCombinedPipeline"
    steps = 50
    guidance_scale = 4.0

    def build_tiny(self, seed: int) -> Any:
        from diffusers import DDPMScheduler, PriorTransformer, UnCLIPScheduler, VQModel
        from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

        hidden = tiny.TEXT_HIDDEN
        tiny.seeded(seed + 3)
        prior = PriorTransformer(num_attention_heads=2, attention_head_dim=12, embedding_dim=hidden,
                                 num_layers=1)
        prior.clip_std.data.fill_(1.0)
        tiny.seeded(seed + 4)
        image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=hidden, image_size=32, patch_size=8, projection_dim=hidden, intermediate_size=37,
            num_attention_heads=4, num_hidden_layers=2, num_channels=3))
        tiny.seeded(seed + 5)
        movq = VQModel(block_out_channels=[32, 32, 64], in_channels=3,
                       down_block_types=["DownEncoderBlock2D"] * 2 + ["AttnDownEncoderBlock2D"],
                       up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
                       out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
                       norm_type="spatial", num_vq_embeddings=12, vq_embed_dim=4)
        decoder = tiny.unet(seed + 6, in_channels=9, cross_attention_dim=hidden, out_channels=8,
                            addition_embed_type="image", encoder_hid_dim=hidden,
                            encoder_hid_dim_type="image_proj", resnet_time_scale_shift="scale_shift",
                            down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
                            up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
                            mid_block_type="UNetMidBlock2DSimpleCrossAttn", attention_head_dim=4)
        processor = CLIPImageProcessor(crop_size=32, size=32, do_center_crop=True, do_normalize=True,
                                       do_resize=True, image_mean=[0.48145466, 0.4578275, 0.40821073],
                                       image_std=[0.26862954, 0.26130258, 0.27577711], resample=3)
        return self.pipeline_class(
            unet=decoder, movq=tiny.frozen(movq),
            scheduler=DDPMScheduler(beta_schedule="linear", beta_start=0.00085, beta_end=0.012,
                                    clip_sample=False, steps_offset=1, prediction_type="epsilon"),
            prior_prior=tiny.frozen(prior), prior_image_encoder=tiny.frozen(image_encoder),
            prior_text_encoder=tiny.clip_text_model(seed + 1, with_projection=True),
            prior_tokenizer=tiny.clip_tokenizer(), prior_image_processor=processor,
            prior_scheduler=UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="sample",
                                            num_train_timesteps=1000, clip_sample=True,
                                            clip_sample_range=10.0))

    def call_kwargs(self, request: Any) -> dict[str, Any]:
        return {"prior_num_inference_steps": 25 if self.profile == "paper" else 2}
