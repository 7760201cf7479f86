"""GLIDE inpainting end to end: the 64-px base model inpaints with classifier-free guidance, the
upsampler inpaints the 256-px image conditioned on that result; in both stages the known pixels
are re-imposed on every x0 prediction."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from diffseg30k.generation.glide.checkpoints import load_unet
from diffseg30k.generation.glide.config import TINY_BASE_INPAINT, TINY_UPSAMPLE_INPAINT, GlideConfig
from diffseg30k.generation.glide.diffusion import GaussianDiffusion, classifier_free_guidance, keep_known
from diffseg30k.generation.glide.tokenizer import DEFAULT_TOKENIZER_REPO, GlideTokenizer, write_tiny_tokenizer
from diffseg30k.generation.glide.unet import GlideUNet


def image_to_tensor(image: Image.Image, side: int) -> torch.Tensor:
    """RGB image resized (bicubic) to ``side``², as a (1, 3, side, side) tensor in [-1, 1]."""
    pixels = np.asarray(image.convert("RGB").resize((side, side), Image.BICUBIC), dtype=np.float32)
    return torch.from_numpy(pixels).permute(2, 0, 1)[None] / 127.5 - 1


def tensor_to_image(x: torch.Tensor) -> Image.Image:
    pixels = ((x[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(pixels, "RGB")


def known_mask(paint: np.ndarray, side: int) -> torch.Tensor:
    """(1, 1, side, side) float mask, 1 at known pixels: a cell is repainted if any pixel in it is."""
    paint_t = torch.from_numpy(np.asarray(paint, dtype=bool).astype(np.float32))[None, None]
    if min(paint_t.shape[-2:]) >= side:
        paint_t = F.adaptive_max_pool2d(paint_t, side)
    else:
        paint_t = F.interpolate(paint_t, (side, side), mode="nearest")
    return 1 - paint_t


class GlideInpainter:
    """Two-stage GLIDE inpainting. ``paint`` masks are True where new content is generated."""

    def __init__(self, base: GlideUNet, upsampler: GlideUNet, tokenizer: GlideTokenizer,
                 guidance_scale: float = 5.0, base_steps: str | int | None = None,
                 upsample_steps: str | int | None = None, upsample_temperature: float = 0.997) -> None:
        for model in (base, upsampler):
            if model.config.n_vocab != tokenizer.n_vocab:
                raise ValueError(f"tokenizer has {tokenizer.n_vocab} tokens, the model expects "
                                 f"{model.config.n_vocab}")
        if not upsampler.config.super_res or base.config.super_res:
            raise ValueError("expected a base model (super_res=False) and an upsampler (super_res=True)")
        self.base, self.upsampler, self.tokenizer = base, upsampler, tokenizer
        self.guidance_scale = guidance_scale
        self.upsample_temperature = upsample_temperature
        self.base_diffusion = GaussianDiffusion.from_config(base.config, base_steps)
        self.upsample_diffusion = GaussianDiffusion.from_config(upsampler.config, upsample_steps)

    @property
    def device(self) -> torch.device:
        return self.base.input_conv.weight.device

    @property
    def resolution(self) -> int:
        return self.upsampler.config.image_size

    # -------------------------------------------------------------------------------- construction
    @classmethod
    def from_pretrained(cls, base_checkpoint: str | os.PathLike | None = None,
                        upsample_checkpoint: str | os.PathLike | None = None,
                        tokenizer: str | os.PathLike = DEFAULT_TOKENIZER_REPO,
                        base_sha256: str | None = None, upsample_sha256: str | None = None,
                        device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                        base_config: GlideConfig | str = "base-inpaint",
                        upsample_config: GlideConfig | str = "upsample-inpaint", **kwargs) -> GlideInpainter:
        """OpenAI's released weights (paths/URLs default to OpenAI's blob storage) and the GPT-2 BPE
        tokenizer from a folder or Hub repository; the configs name the checkpoints' architecture."""
        base = load_unet(base_checkpoint, base_config, base_sha256, device, dtype)
        upsampler = load_unet(upsample_checkpoint, upsample_config, upsample_sha256, device, dtype)
        return cls(base, upsampler, GlideTokenizer.from_pretrained(tokenizer), **kwargs)

    @classmethod
    def tiny(cls, seed: int = 0, device: torch.device | str = "cpu",
             base_config: GlideConfig = TINY_BASE_INPAINT,
             upsample_config: GlideConfig = TINY_UPSAMPLE_INPAINT,
             tokenizer_folder: str | os.PathLike | None = None, **kwargs) -> GlideInpainter:
        """Randomly initialised tiny models (seeded, identical on every machine) and a BPE tokenizer
        trained in code: the mini profile and the tests."""
        from diffseg30k.io import cache_dir

        folder = Path(tokenizer_folder or cache_dir("glide", f"tiny-tokenizer-{base_config.n_vocab}"))
        if not (folder / "vocab.json").exists():
            write_tiny_tokenizer(folder, base_config.n_vocab)
        models = []
        for offset, config in enumerate((base_config, upsample_config)):
            with torch.random.fork_rng(devices=[]):  # seeded weights, global RNG left untouched
                torch.manual_seed(seed + offset)
                models.append(GlideUNet(config).to(device).eval().requires_grad_(False))
        kwargs.setdefault("guidance_scale", 3.0)
        return cls(*models, GlideTokenizer.from_folder(folder), **kwargs)

    # -------------------------------------------------------------------------------- sampling
    def _text(self, model: GlideUNet, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, mask = self.tokenizer.batch(prompts, model.config.text_ctx, self.device)
        with torch.no_grad():
            return model.encode_text(tokens, mask)

    def sample_base(self, image: torch.Tensor, known: torch.Tensor, prompt: str,
                    generator: torch.Generator, negative_prompt: str = "",
                    progress: bool = False) -> torch.Tensor:
        """Inpaint at the base resolution with classifier-free guidance; the unconditional branch is
        the empty prompt (GLIDE's training-time dropout) or ``negative_prompt``."""
        image, known = image.to(self.device), known.to(self.device)
        guided = self.guidance_scale != 1.0
        text = self._text(self.base, [prompt, negative_prompt] if guided else [prompt])
        batch = 2 if guided else 1

        def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            expand = (batch, -1, -1, -1)
            return self.base(x, t, image.expand(*expand), known.expand(*expand), text=text)

        model_fn = classifier_free_guidance(model, self.guidance_scale) if guided else model
        return self.base_diffusion.sample(model_fn, tuple(image.shape), generator, self.device,
                                          denoise=keep_known(image, known), progress=progress)

    def sample_upsampler(self, image: torch.Tensor, known: torch.Tensor, low_res: torch.Tensor, prompt: str,
                         generator: torch.Generator, progress: bool = False) -> torch.Tensor:
        """Inpaint at the upsampler resolution conditioned on the (8-bit quantised) base result."""
        image, known = image.to(self.device), known.to(self.device)
        low_res = (((low_res + 1) * 127.5).round() / 127.5 - 1).to(self.device)
        text = self._text(self.upsampler, [prompt])

        def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.upsampler(x, t, image, known, low_res=low_res, text=text)

        noise = torch.randn(tuple(image.shape), generator=generator) * self.upsample_temperature
        return self.upsample_diffusion.sample(model, tuple(image.shape), generator, self.device, noise=noise,
                                              denoise=keep_known(image, known), progress=progress)

    def __call__(self, image: Image.Image, paint: np.ndarray, prompt: str, seed: int = 0,
                 negative_prompt: str = "", progress: bool = False) -> Image.Image:
        """Inpaint ``image`` where ``paint`` is True; returns the upsampler-resolution RGB result."""
        generator = torch.Generator("cpu").manual_seed(int(seed))
        small, large = self.base.config.image_size, self.upsampler.config.image_size
        known_small = known_mask(paint, small)
        known_large = F.interpolate(known_small, (large, large), mode="nearest")
        low_res = self.sample_base(image_to_tensor(image, small), known_small, prompt, generator,
                                   negative_prompt, progress)
        result = self.sample_upsampler(image_to_tensor(image, large), known_large, low_res, prompt,
                                       generator, progress)
        return tensor_to_image(result)
