"""Train the mini profile's generator components on the bundled photos and write their safetensors.

    python -m diffseg30k.generation.train_mini_components [--out DIR] [--trunk-steps 1500] [--tail-steps 300]
        [--adversarial-steps 800] [--adversarial-weight 0.1] [--stages trunk,tail,adversarial]

Reproducible (fixed seeds, 1 torch thread): random crops of the bundled photos, resized so their
short side is 128-256 px (the scale the mini images see). Steps: one AutoencoderKL trunk per latent
width (4, 16) trained with nearest + conv upsampling; each autoencoder family then re-initialises its
upsampling operator from its own seed and fine-tunes its decoder tail (encoder and decoder body
frozen); the Kandinsky VQModel starts from the 4-channel trunk and is fine-tuned with its codebook;
GLIDE's UNet2DModel upsampler is trained on 4x-downsampled crops. Last, every autoencoder tail gets
a short adversarial fine-tuning (L1 + a hinge patch-GAN term, each with its
own spectrally normalised discriminator and seed), as real VAE decoders are trained (L1 + LPIPS +
patch-GAN): an L1-only decoder paints the same blur as every other, while each adversarially tuned
one paints its own high-frequency texture -- the generator fingerprint. Weights are stored as float16.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffseg30k.generation.components import (
    WEIGHTS_DIR,
    ComponentSpec,
    FamilyComponent,
    tail_keys,
    trunk_path,
    weights_path,
)


def photo_arrays() -> list[np.ndarray]:
    """The mini profile's bundled photos as RGB uint8 arrays."""
    from diffseg30k.generation.profiles import MINI

    return [np.asarray(MINI.load_photo(name)) for name in MINI.photos]


def crops(photos: list[np.ndarray], size: int, batch: int, seed: int) -> Iterator[torch.Tensor]:
    """Endless batches of random crops in [-1, 1] (short side rescaled to 128-256 px, random flips)."""
    rng = np.random.default_rng(seed)
    while True:
        out = []
        for _ in range(batch):
            pixels = photos[int(rng.integers(len(photos)))]
            height, width = pixels.shape[:2]
            scale = rng.uniform(128, 256) / min(height, width)
            image = Image.fromarray(pixels).resize((max(size, round(width * scale)),
                                                    max(size, round(height * scale))), Image.BICUBIC)
            left = int(rng.integers(image.width - size + 1))
            top = int(rng.integers(image.height - size + 1))
            crop = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32)
            out.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
        yield torch.from_numpy(np.stack(out) / 127.5 - 1.0).permute(0, 3, 1, 2).contiguous()


def psnr_db(errors: list[float]) -> float:
    """PSNR (dB, pixels in [0, 1]) from the last 50 steps' mean squared errors."""
    return round(10 * math.log10(1.0 / max(float(np.mean(errors[-50:])), 1e-10)), 2)


def fit(component: FamilyComponent, params: list[torch.nn.Parameter], batches: Iterator[torch.Tensor],
        steps: int, lr: float, label: str) -> dict[str, float]:
    """Adam with cosine decay on L1 (+ the VQ commitment loss); returns the last 50 steps' PSNR."""
    optimizer = torch.optim.Adam(params, lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(
        math.pi * s / max(steps, 1))))
    component.train()
    errors: list[float] = []
    start = time.perf_counter()
    for step in range(steps):
        target = next(batches)
        if component.spec.kind == "vq":
            model = component.model
            out = model.decode(model.encode(target).latents)
            output, extra = out.sample, out.commit_loss.mean()
        else:
            output, extra = component(target), 0.0
        loss = (output - target).abs().mean() + extra
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        errors.append(float(((output.detach().clamp(-1, 1) - target) ** 2).mean()) / 4.0)
        if step % 100 == 0 or step == steps - 1:
            print(f"{label}: step {step}/{steps} loss {float(loss):.4f}", flush=True)
    component.eval()
    return {"steps": steps, "psnr_db": psnr_db(errors), "seconds": round(time.perf_counter() - start, 1)}


def save(state: dict[str, torch.Tensor], path: Path, about: dict) -> None:
    from safetensors.torch import save_file

    from diffseg30k.io import atomic_write_bytes

    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in state.items()}
    meta = {"made_by": "diffseg30k.generation.train_mini_components",
            **{k: json.dumps(v) for k, v in about.items()}}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    atomic_write_bytes(path, tmp.read_bytes())
    tmp.unlink()


def train_trunk(latent: int, photos: list[np.ndarray], steps: int, crop: int, out: Path) -> dict:
    torch.manual_seed(1000 + latent)
    component = FamilyComponent(ComponentSpec(f"trunk{latent}", latent_channels=latent))
    stats = fit(component, list(component.parameters()), crops(photos, crop, 8, seed=latent), steps, 2e-3,
                f"trunk latent {latent}")
    save(component.model.state_dict(), trunk_path(latent, out), {"stats": stats})
    return stats


def train_family(spec: ComponentSpec, photos: list[np.ndarray], steps: int, crop: int, out: Path) -> dict:
    """Fine-tune one family's component from the trunk (vae/vq) or from scratch (glide)."""
    from safetensors.torch import load_file

    torch.manual_seed(spec.seed)
    component = FamilyComponent(spec)
    params = list(component.parameters())
    if spec.kind in ("vae", "vq"):  # start from the trunk; the upsampling operator starts fresh
        trunk = {k: v.float() for k, v in load_file(str(trunk_path(spec.latent_channels, out))).items()}
        loaded = {}
        for key, value in component.model.state_dict().items():
            source = trunk.get(key)
            if source is None or key.startswith("decoder.up_blocks.0.upsamplers."):
                continue
            if source.shape != value.shape and source.shape[1:] == value.shape[1:]:
                source = source[: value.shape[0]]  # KL's (mean, logvar) conv -> VQ's latent conv
            if source.shape == value.shape:
                loaded[key] = source
        component.model.load_state_dict(loaded, strict=False)
        if spec.kind == "vae":  # only the tail learns: the trunk stays shared
            tail = set(tail_keys(component.model.state_dict()))
            params = [p for k, p in component.model.named_parameters() if k in tail]
    steps = steps if spec.kind == "vae" else 2 * steps
    stats = fit(component, params, crops(photos, crop, 8, seed=spec.seed), steps, 2e-3, spec.family)
    state = component.model.state_dict()
    if spec.kind == "vae":
        state = {k: state[k] for k in tail_keys(state)}
    save(state, weights_path(spec.family, out), {"spec": spec.__dict__, "stats": stats})
    return stats


#: The training stages, in order; each reads the previous one's weights from ``--out``.
STAGES = ("trunk", "tail", "adversarial")


def discriminator() -> torch.nn.Module:
    """A small spectrally normalised patch discriminator (one logit per ~10-px patch)."""
    from torch import nn

    norm = nn.utils.spectral_norm
    return nn.Sequential(norm(nn.Conv2d(3, 32, 4, 2, 1)), nn.LeakyReLU(0.2), norm(nn.Conv2d(32, 64, 4, 2, 1)),
                         nn.LeakyReLU(0.2), norm(nn.Conv2d(64, 64, 3, 1, 1)), nn.LeakyReLU(0.2),
                         norm(nn.Conv2d(64, 1, 3, 1, 1)))


def adversarial_family(spec: ComponentSpec, photos: list[np.ndarray], steps: int, weight: float, crop: int,
                       out: Path) -> dict:
    """Fine-tune an autoencoder family's trained decoder tail with L1 - ``weight`` x the discriminator's
    score (hinge loss for the discriminator); overwrites its tail weights in ``out``."""
    from diffseg30k.generation.components import load_component

    if spec.kind != "vae":
        raise ValueError(f"{spec.family}: the adversarial stage tunes autoencoder tails, not {spec.kind!r}")
    torch.manual_seed(spec.seed + 500)
    component = load_component(spec, out)
    state_keys = set(tail_keys(component.model.state_dict()))
    params = [p for k, p in component.model.named_parameters() if k in state_keys]
    for param in params:
        param.requires_grad_(True)
    critic = discriminator()
    optimizer = torch.optim.Adam(params, 5e-4, betas=(0.5, 0.9))
    critic_optimizer = torch.optim.Adam(critic.parameters(), 4e-4, betas=(0.5, 0.9))
    batches = crops(photos, crop, 8, seed=spec.seed + 500)
    component.train()
    errors: list[float] = []
    start = time.perf_counter()
    for step in range(steps):
        target = next(batches)
        with torch.no_grad():  # the frozen encoder runs without a graph
            latent = component.model.encode(target).latent_dist.mode()
        output = component.model.decode(latent).sample
        critic_loss = torch.relu(1 - critic(target)).mean() + torch.relu(1 + critic(output.detach())).mean()
        critic_optimizer.zero_grad()
        critic_loss.backward()
        critic_optimizer.step()
        loss = (output - target).abs().mean() - weight * critic(output).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        errors.append(float(((output.detach().clamp(-1, 1) - target) ** 2).mean()) / 4.0)
        if step % 100 == 0 or step == steps - 1:
            print(f"{spec.family} adversarial: step {step}/{steps} critic {float(critic_loss):.3f}",
                  flush=True)
    state = component.model.state_dict()
    stats = {"steps": steps, "weight": weight, "seconds": round(time.perf_counter() - start, 1),
             "psnr_db": psnr_db(errors)}
    save({k: state[k] for k in state_keys}, weights_path(spec.family, out),
         {"spec": spec.__dict__, "stats": stats, "stage": "adversarial"})
    return stats


def family_specs() -> list[ComponentSpec]:
    from diffseg30k.generation.editors.registry import get_editor_class, installed_generators

    return [get_editor_class(name).component for name in installed_generators()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--trunk-steps", type=int, default=1500)
    parser.add_argument("--tail-steps", type=int, default=300)
    parser.add_argument("--adversarial-steps", type=int, default=800)
    parser.add_argument("--adversarial-weight", type=float, default=0.1)
    parser.add_argument("--crop", type=int, default=32)
    parser.add_argument("--stages", default="trunk,tail,adversarial",
                        help="comma-separated subset of trunk, tail, adversarial (each reads the last's "
                             "output)")
    parser.add_argument("--only", nargs="*", help="trunk4, trunk16 and/or family names (default: all)")
    args = parser.parse_args(argv)
    stages = {stage.strip() for stage in args.stages.split(",") if stage.strip()}
    if not stages or stages - set(STAGES):
        parser.error(f"--stages {args.stages!r}: expected a comma-separated subset of {', '.join(STAGES)}")
    for name in ("trunk_steps", "tail_steps", "adversarial_steps", "crop"):
        if getattr(args, name) < (1 if name == "crop" else 0):
            parser.error(f"--{name.replace('_', '-')} must be >= {1 if name == 'crop' else 0}, "
                         f"got {getattr(args, name)}")
    specs = family_specs()
    wanted = set(args.only or [])
    known = {"trunk4", "trunk16", *(spec.family for spec in specs)}
    if wanted - known:
        parser.error(f"--only {' '.join(sorted(wanted - known))}: unknown; expected some of "
                     f"{', '.join(sorted(known))}")
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    photos = photo_arrays()
    report = {}
    for latent in (4, 16):
        if "trunk" in stages and (not wanted or f"trunk{latent}" in wanted):
            report[f"trunk{latent}"] = train_trunk(latent, photos, args.trunk_steps, args.crop, args.out)
    for spec in specs:
        if wanted and spec.family not in wanted:
            continue
        if "tail" in stages:
            report[spec.family] = train_family(spec, photos, args.tail_steps, args.crop, args.out)
        if "adversarial" in stages and spec.kind == "vae" and args.adversarial_steps:
            report[f"{spec.family}-adversarial"] = adversarial_family(
                spec, photos, args.adversarial_steps, args.adversarial_weight, args.crop, args.out)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
