"""GLIDE inpainting (OpenAI, 2021), implemented in :mod:`diffseg30k.generation.glide`.

Paper profile: OpenAI's released ``base_inpaint.pt`` + ``upsample_inpaint.pt`` (downloaded from
OpenAI's blob storage or given as paths/URLs in the editor options, sha256-verified, converted once
to safetensors) and GPT-2's BPE files from ``openai-community/gpt2`` or a tokenizer folder; the
image is inpainted at 64 px (100 steps, guidance 5) and upsampled-inpainted to 256 px (27 steps).
Mini profile: tiny random models of the same architecture (16 -> 64 px, a few steps).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from PIL import Image

from diffseg30k.generation.component_spec import ComponentSpec
from diffseg30k.generation.editors.base import Editor, EditRequest
from diffseg30k.generation.editors.registry import EDITORS


@EDITORS.register
class GlideEditor(Editor):
    """Editor options (all optional): ``base_checkpoint``, ``upsample_checkpoint`` (path or URL),
    ``base_sha256``, ``upsample_sha256``, ``tokenizer`` (folder or Hub repo id), ``guidance_scale``,
    ``steps`` (base sampling steps, e.g. 100 or "fast27"), ``upsample_steps``, ``tiny_seed``,
    ``base_config``/``upsample_config`` (preset names of the checkpoints' architecture)."""

    name = "glide"
    component = ComponentSpec("glide", "glide", 3, "learned", seed=28)
    resolution: ClassVar[int] = 256
    guidance_scale: ClassVar[float] = 5.0

    def torch_dtype(self) -> torch.dtype:
        from diffseg30k.io import torch_dtype

        return torch_dtype(self.dtype, self.device)

    def load(self) -> None:
        if self.pipeline is not None:
            return
        from diffseg30k.generation.glide import GlideInpainter
        from diffseg30k.generation.glide.tokenizer import DEFAULT_TOKENIZER_REPO

        opts = self.options

        def text(key: str, default: str | None = None) -> str | None:  # CLI values may arrive parsed
            value = opts.get(key, default)
            return None if value is None else str(value)

        sampling: dict = {key: str(opts[name]) for key, name in (("base_steps", "steps"),
                                                                 ("upsample_steps", "upsample_steps"))
                          if name in opts}
        if "guidance_scale" in opts:
            sampling["guidance_scale"] = float(opts["guidance_scale"])
        if self.profile == "mini":
            self.pipeline = GlideInpainter.tiny(int(opts.get("tiny_seed", 0)), self.device, **sampling)
            return
        sampling.setdefault("guidance_scale", self.guidance_scale)
        self.pipeline = GlideInpainter.from_pretrained(
            text("base_checkpoint"), text("upsample_checkpoint"), text("tokenizer", DEFAULT_TOKENIZER_REPO),
            text("base_sha256"), text("upsample_sha256"), device=self.device, dtype=self.torch_dtype(),
            base_config=text("base_config", "base-inpaint"),
            upsample_config=text("upsample_config", "upsample-inpaint"), **sampling)

    def inpaint(self, request: EditRequest) -> Image.Image:
        self.load()
        with torch.inference_mode():
            return self.pipeline(request.image, request.mask, request.prompt, seed=int(request.seed),
                                 negative_prompt=request.negative_prompt)

