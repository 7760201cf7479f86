"""GLIDE (Nichol et al. 2021) text-guided inpainting, implemented in this toolkit: the transformer
text encoder, the ADM-style UNets (64-px base and 64->256 upsampler inpainting models), the
Gaussian diffusion sampler with known-pixel re-imposition and classifier-free guidance, loading of
OpenAI's released checkpoints, and GLIDE's GPT-2 byte-level BPE tokenizer."""

from diffseg30k.generation.glide.checkpoints import (
    RELEASED,
    CheckpointError,
    convert_checkpoint,
    convert_state_dict,
    load_unet,
)
from diffseg30k.generation.glide.config import (
    BASE_INPAINT,
    PRESETS,
    TINY_BASE_INPAINT,
    TINY_UPSAMPLE_INPAINT,
    UPSAMPLE_INPAINT,
    GlideConfig,
    get_config,
)
from diffseg30k.generation.glide.diffusion import GaussianDiffusion, classifier_free_guidance, keep_known
from diffseg30k.generation.glide.pipeline import GlideInpainter
from diffseg30k.generation.glide.tokenizer import GlideTokenizer, write_tiny_tokenizer
from diffseg30k.generation.glide.unet import GlideUNet

__all__ = [
    "BASE_INPAINT", "PRESETS", "RELEASED", "TINY_BASE_INPAINT", "TINY_UPSAMPLE_INPAINT", "UPSAMPLE_INPAINT",
    "CheckpointError", "GaussianDiffusion", "GlideConfig", "GlideInpainter", "GlideTokenizer", "GlideUNet",
    "classifier_free_guidance", "convert_checkpoint", "convert_state_dict", "get_config", "keep_known",
    "load_unet", "write_tiny_tokenizer",
]
