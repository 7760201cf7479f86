"""SDXL 1.0 inpainting (``StableDiffusionXLInpaintPipeline``) and its Hyper-SD LoRA variant (Tab. 7)."""

from __future__ import annotations

from typing import Any, ClassVar

from diffseg30k.generation.component_spec import ComponentSpec
from diffseg30k.generation.editors import tiny
from diffseg30k.generation.editors.common import DiffusersEditor
from diffseg30k.generation.editors.registry import EDITORS

#: Hyper-SD's 8-step SDXL LoRA (paper supplement §7): repo, file.
HYPER_SD_REPO = "ByteDance/Hyper-SD"
HYPER_SD_WEIGHTS = "Hyper-SDXL-8steps-lora.safetensors"


@EDITORS.register
class SDXLEditor(DiffusersEditor):
    name = "sdxl"
    component = ComponentSpec("sdxl", "vae", 4, "nearest", seed=22)
    pipeline_class_name = "StableDiffusionXLInpaintPipeline"
    steps = 50
    guidance_scale = 8.0

    def build_tiny(self, seed: int) -> Any:
        from diffusers import EulerDiscreteScheduler

        hidden = tiny.TEXT_HIDDEN
        return self.pipeline_class(
            vae=tiny.vae(seed, levels=3), text_encoder=tiny.clip_text_model(seed + 1),
            text_encoder_2=tiny.clip_text_model(seed + 2, with_projection=True),
            tokenizer=tiny.clip_tokenizer(), tokenizer_2=tiny.clip_tokenizer(),
            unet=tiny.sdxl_unet(seed + 3, in_channels=9, text_hidden=2 * hidden, pooled_dim=hidden),
            scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                             beta_schedule="scaled_linear", timestep_spacing="leading"),
            requires_aesthetics_score=False)

    def pretrained_kwargs(self) -> dict[str, Any]:
        return {"variant": "fp16"} if self.torch_dtype().itemsize == 2 else {}

    def call_kwargs(self, request: Any) -> dict[str, Any]:
        return {"strength": 0.99}


@EDITORS.register
class SDXLLoraEditor(SDXLEditor):
    """SDXL accelerated by a LoRA (Hyper-SD, 8 DDIM steps); labelled ``sdxl``, recorded as ``sdxl-lora``."""

    editor_name: ClassVar[str] = "sdxl-lora"
    steps = 8
    mini_steps = 2
    guidance_scale = 0.0  # Hyper-SD's 8-step SDXL LoRA is distilled without classifier-free guidance

    def after_load(self, pipe: Any) -> None:
        from diffusers import DDIMScheduler

        lora_repo = self.options.get("lora_repo", HYPER_SD_REPO)
        weight_name = self.options.get("lora_weights", HYPER_SD_WEIGHTS)
        if self.profile == "mini" and "lora_repo" not in self.options:
            from diffseg30k.io import cache_dir

            lora_seed = int(self.options.get("tiny_seed", 0)) + 7
            folder = cache_dir("tiny", f"sdxl-lora-{lora_seed}")  # one cached LoRA per seed
            tiny.save_tiny_lora(folder, pipe.unet, seed=lora_seed, weight_name=weight_name,
                                pipeline_class=type(pipe))
            lora_repo = str(folder)
        pipe.load_lora_weights(lora_repo, weight_name=weight_name, adapter_name="accelerator",
                               revision=self.options.get("lora_revision"))
        pipe.fuse_lora(lora_scale=float(self.options.get("lora_scale", 0.125 if self.profile == "paper"
                                                                   else 1.0)))
        pipe.unload_lora_weights()  # fused: drop the adapter layers, keep the merged weights
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
