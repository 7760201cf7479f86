"""Shared machinery of the diffusers-based editor adapters.

:class:`DiffusersEditor` loads a diffusers pipeline by Hub id (paper profile: safetensors only,
revision-pinnable) or builds it from tiny random components (mini profile), resizes the request to
the model's working size and calls the pipeline with a seeded generator. :class:`BlendedLatentEditor`
turns a text-to-image pipeline without an inpainting variant (Kolors, HunyuanDiT) into an inpainter
by masked latent blending in ``callback_on_step_end``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from diffseg30k.generation.editors.base import Editor, EditRequest


def _dtype_keyword() -> str:
    """``dtype`` on diffusers versions that renamed ``torch_dtype`` (it warns), else ``torch_dtype``."""
    from diffusers.utils import deprecation_utils

    return "dtype" if hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE") else "torch_dtype"


class DiffusersEditor(Editor):
    """An adapter around one diffusers pipeline class (named, so diffusers is imported lazily)."""

    pipeline_class_name: ClassVar[str]
    #: Working side in the mini profile (tiny models; the caller resizes the result back).
    mini_resolution: ClassVar[int] = 64
    steps: ClassVar[int] = 30
    mini_steps: ClassVar[int] = 3
    guidance_scale: ClassVar[float] = 7.5
    #: dtype of the paper profile on a GPU.
    paper_dtype: ClassVar[str] = "float16"

    # -- construction ---------------------------------------------------------------------------
    @property
    def pipeline_class(self) -> type:
        import diffusers

        return getattr(diffusers, self.pipeline_class_name)

    def build_tiny(self, seed: int) -> Any:
        """Return the pipeline built from tiny random components (mini profile)."""
        raise NotImplementedError(f"{type(self).__name__} has no tiny build")

    def pretrained_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments of ``from_pretrained`` (e.g. a variant)."""
        return {}

    def torch_dtype(self) -> torch.dtype:
        from diffseg30k.io import torch_dtype

        return torch_dtype(self.dtype, self.device, self.paper_dtype)

    def load(self) -> None:
        if self.pipeline is not None:
            return
        if self.profile == "mini":
            pipe = self.build_tiny(int(self.options.get("tiny_seed", 0)))
        else:
            pipe = self.pipeline_class.from_pretrained(
                self.repo_id, revision=self.revision, use_safetensors=True,
                **{_dtype_keyword(): self.torch_dtype()}, **self.pretrained_kwargs())
        self.after_load(pipe)
        pipe.set_progress_bar_config(disable=True)
        self.pipeline = pipe.to(self.device)

    def after_load(self, pipe: Any) -> None:
        """Hook for adapters that adjust a loaded pipeline (LoRA, scheduler)."""

    # -- inference ------------------------------------------------------------------------------
    @property
    def working_size(self) -> int:
        if "resolution" in self.options:
            return int(self.options["resolution"])
        return self.mini_resolution if self.profile == "mini" else self.resolution

    @property
    def num_steps(self) -> int:
        if "steps" in self.options:
            return int(self.options["steps"])
        return self.mini_steps if self.profile == "mini" else self.steps

    def call_kwargs(self, request: EditRequest) -> dict[str, Any]:
        """Model-specific keyword arguments added to the pipeline call."""
        return {}

    def inpaint(self, request: EditRequest) -> Image.Image:
        self.load()
        side = self.working_size
        image = request.image.convert("RGB").resize((side, side), Image.BICUBIC)
        mask = Image.fromarray(np.asarray(request.mask, dtype=bool).astype(np.uint8) * 255, "L")
        mask = mask.resize((side, side), Image.NEAREST)
        kwargs: dict[str, Any] = dict(
            prompt=request.prompt, image=image, mask_image=mask, height=side, width=side,
            num_inference_steps=self.num_steps, guidance_scale=self.guidance_scale,
            generator=torch.Generator("cpu").manual_seed(int(request.seed)), output_type="pil")
        if request.negative_prompt:
            kwargs["negative_prompt"] = request.negative_prompt
        kwargs.update(self.call_kwargs(request))
        kwargs.update(request.options)
        with torch.inference_mode():
            return self.run(kwargs).convert("RGB")

    def run(self, kwargs: dict[str, Any]) -> Image.Image:
        return self.pipeline(**kwargs).images[0]


class BlendedLatentEditor(DiffusersEditor):
    """Inpainting with a text-to-image pipeline: after every denoising step the latents outside the
    mask are replaced by the source latents noised to the next timestep (blended latent diffusion)."""

    def run(self, kwargs: dict[str, Any]) -> Image.Image:
        pipe = self.pipeline
        image, mask = kwargs.pop("image"), kwargs.pop("mask_image")
        generator = kwargs["generator"]
        vae = pipe.vae
        pixels = pipe.image_processor.preprocess(image, height=kwargs["height"], width=kwargs["width"])
        pixels = pixels.to(device=vae.device, dtype=vae.dtype)
        source = vae.encode(pixels).latent_dist.mode()
        source = (source - (vae.config.shift_factor or 0.0)) * vae.config.scaling_factor
        keep = torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255.0)[None, None]
        keep = torch.nn.functional.adaptive_max_pool2d(keep, source.shape[-2:]).to(source)  # 1 = repaint
        noise = torch.randn(source.shape, generator=generator, dtype=torch.float32).to(source)

        def blend(pipeline: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            latents = tensors["latents"]
            timesteps = pipeline.scheduler.timesteps
            if step + 1 < len(timesteps):
                known = pipeline.scheduler.add_noise(source, noise, timesteps[step + 1: step + 2])
            else:
                known = source
            return {"latents": keep * latents + (1 - keep) * known.to(latents.dtype)}

        kwargs.update(callback_on_step_end=blend, callback_on_step_end_tensor_inputs=["latents"])
        return pipe(**kwargs).images[0]
