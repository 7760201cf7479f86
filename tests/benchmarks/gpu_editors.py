"""Seconds per edit at 1024^2 for two real-sized editors (SDXL and SD2 inpainting) with random weights,
through our adapter (resize, seeded call, composite inside the mask) against the peer: the bare
diffusers pipeline call on the same inputs, in the same run.

    python tests/benchmarks/gpu_editors.py                  # one H100: fp16, 50 steps each (< 8 min)
    python tests/benchmarks/gpu_editors.py --check-configs  # CPU: build the real-sized models on the
                                                            # meta device, print parameter counts
    python tests/benchmarks/gpu_editors.py --tiny           # CPU smoke run of the timing code path

Real-sized configs are written out here (the Hub is unreachable from the GPU machine): the
parameter counts match the released checkpoints (SDXL inpainting UNet ~2.57 B, SD2 UNet ~0.87 B).
Random weights do exactly the released models' work per step. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch
from PIL import Image

SDXL_UNET = dict(
    in_channels=9, out_channels=4, block_out_channels=(320, 640, 1280), layers_per_block=2,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10), cross_attention_dim=2048,
    use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816, sample_size=128)
SD2_UNET = dict(
    in_channels=9, out_channels=4, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, attention_head_dim=(5, 10, 20, 20),
    cross_attention_dim=1024, use_linear_projection=True, sample_size=64)
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
           layers_per_block=2, down_block_types=("DownEncoderBlock2D",) * 4,
           up_block_types=("UpDecoderBlock2D",) * 4, sample_size=1024)
CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
              projection_dim=768, hidden_act="quick_gelu")
CLIP_BIGG = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
                 projection_dim=1280, hidden_act="gelu")
CLIP_H = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
              projection_dim=512, hidden_act="gelu")


def _clip(spec: dict[str, Any], projection: bool) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                            pad_token_id=1, **spec)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def real_sized(name: str, device: str) -> Any:
    """The real-sized pipeline, its random weights allocated directly on ``device``."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        EulerDiscreteScheduler,
        StableDiffusionInpaintPipeline,
        StableDiffusionXLInpaintPipeline,
        UNet2DConditionModel,
    )

    from diffseg30k.generation.editors.tiny import clip_tokenizer

    if name == "sdxl":
        with torch.device(device):
            models = dict(vae=AutoencoderKL(**VAE, scaling_factor=0.13025, force_upcast=True),
                          text_encoder=_clip(CLIP_L, False), text_encoder_2=_clip(CLIP_BIGG, True),
                          unet=UNet2DConditionModel(**SDXL_UNET))
        return StableDiffusionXLInpaintPipeline(
            **models, tokenizer=clip_tokenizer(), tokenizer_2=clip_tokenizer(),
            scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                             beta_schedule="scaled_linear", timestep_spacing="leading"),
            requires_aesthetics_score=False)
    with torch.device(device):
        models = dict(vae=AutoencoderKL(**VAE, scaling_factor=0.18215), text_encoder=_clip(CLIP_H, False),
                      unet=UNet2DConditionModel(**SD2_UNET))
    return StableDiffusionInpaintPipeline(
        **models, tokenizer=clip_tokenizer(),
        scheduler=DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                clip_sample=False, set_alpha_to_one=False, steps_offset=1),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def check_configs() -> dict[str, Any]:
    """Build both real-sized pipelines on the meta device (no memory) and count parameters."""
    counts = {}
    for name in ("sdxl", "sd2"):
        pipe = real_sized(name, "meta")
        parts = [p for p in ("unet", "vae", "text_encoder", "text_encoder_2") if getattr(pipe, p, None)]
        counts[name] = {part: round(sum(p.numel() for p in getattr(pipe, part).parameters()) / 1e6, 1)
                        for part in parts}
    return {"mode": "check-configs", "parameters_millions": counts}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_editor(name: str, tiny: bool, device: str, repeats: int) -> dict[str, Any]:
    from diffseg30k.generation.composite import composite
    from diffseg30k.generation.editors.base import EditRequest
    from diffseg30k.generation.editors.registry import create_editor

    dtype = torch.float32 if tiny else torch.float16
    editor = create_editor(name, profile="mini" if tiny else "paper", device=device)
    start = time.perf_counter()
    if tiny:
        editor.load()
    else:
        pipe = real_sized(name, device).to(device=device, dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        editor.pipeline = pipe
    build_s = time.perf_counter() - start
    side = editor.working_size
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8))
    mask = np.zeros((side, side), dtype=bool)
    mask[side // 4: 3 * side // 4, side // 5: 4 * side // 5] = True
    request = EditRequest(image, mask, "a red vintage car parked by the road", seed=0)

    def ours() -> None:
        composite(image, editor.inpaint(request), mask)

    def peer() -> None:
        generator = torch.Generator("cpu").manual_seed(0)
        mask_image = Image.fromarray(mask.astype(np.uint8) * 255)
        with torch.inference_mode():
            editor.pipeline(prompt=request.prompt, image=image, mask_image=mask_image,
                            height=side, width=side, num_inference_steps=editor.num_steps,
                            guidance_scale=editor.guidance_scale, generator=generator)

    result: dict[str, Any] = {"resolution": side, "steps": editor.num_steps, "build_s": round(build_s, 1)}
    for label, call in (("ours", ours), ("peer_diffusers_call", peer)):
        call()  # warm-up (kernels, allocator)
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        _sync(device)
        result[f"{label}_s_per_edit"] = round((time.perf_counter() - start) / repeats, 3)
    result["ours_over_peer"] = round(result["ours_s_per_edit"] / result["peer_diffusers_call_s_per_edit"], 3)
    if device.startswith("cuda"):
        result["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        torch.cuda.reset_peak_memory_stats()
    editor.unload()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny models on the CPU (smoke run)")
    parser.add_argument("--check-configs", action="store_true", help="count real-sized parameters (meta)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--editors", default="sdxl,sd2")
    args = parser.parse_args()
    if args.check_configs:
        print(json.dumps(check_configs(), indent=2))
        return
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)  # tiny models on a shared CPU: more threads only add contention
    if not args.tiny and device == "cpu":
        raise SystemExit("no GPU: run with --tiny (smoke) or --check-configs")
    report: dict[str, Any] = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                              "dtype": "float32" if args.tiny else "float16"}
    for name in args.editors.split(","):
        report[name] = time_editor(name, args.tiny, device, args.repeats)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
