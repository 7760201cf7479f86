"""GLIDE's Gaussian diffusion sampler: beta schedules, timestep respacing, ancestral sampling with
learned-range variances, the inpainting step that re-imposes the known pixels on every x0
prediction, and classifier-free guidance."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

#: ``model(x_t, t) -> (B, 6, H, W)`` (noise and variance interpolation), ``t`` in original steps.
ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def beta_schedule(name: str, steps: int) -> np.ndarray:
    """The original named schedules: "linear" (Ho et al., rescaled to ``steps``) and the cosine
    "squaredcos_cap_v2" (Nichol & Dhariwal), float64."""
    if name == "linear":
        scale = 1000 / steps
        return np.linspace(scale * 0.0001, scale * 0.02, steps, dtype=np.float64)
    if name == "squaredcos_cap_v2":
        def alpha_bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        return np.array([min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), 0.999)
                         for i in range(steps)], dtype=np.float64)
    raise ValueError(f"unknown noise schedule {name!r} (linear, squaredcos_cap_v2)")


def space_timesteps(num_timesteps: int, spacing: str | int) -> list[int]:
    """The timesteps kept when sampling with fewer steps: a count or comma-separated counts per
    equal section ("100", "10,10,3,2,2"), "fast27" or "ddimN" (the original respacing options)."""
    spacing = str(spacing)
    if spacing.startswith("ddim"):
        count = int(spacing[4:])
        for stride in range(1, num_timesteps):
            if len(range(0, num_timesteps, stride)) == count:
                return list(range(0, num_timesteps, stride))
        raise ValueError(f"cannot take exactly {count} steps from {num_timesteps} with an integer stride")
    if spacing == "fast27":
        steps = set(space_timesteps(num_timesteps, "10,10,3,2,2"))
        steps.remove(num_timesteps - 1)  # fewer artefacts from the noisiest step
        steps.add(num_timesteps - 3)
        return sorted(steps)
    counts = [int(c) for c in spacing.split(",")]
    size, extra = divmod(num_timesteps, len(counts))
    kept, start = [], 0
    for i, count in enumerate(counts):
        section = size + (1 if i < extra else 0)
        if section < count or count < 1:
            raise ValueError(f"cannot divide a section of {section} steps into {count}")
        stride = (section - 1) / (count - 1) if count > 1 else 1
        kept += [start + round(j * stride) for j in range(count)]
        start += section
    return sorted(set(kept))


def _gather(values: torch.Tensor, index: int, x: torch.Tensor) -> float:
    """One coefficient as a Python float (no host-device copy inside the sampling loop)."""
    return float(values[index])


class GaussianDiffusion:
    """The reverse process on a respaced subset of a trained schedule (``timestep_map`` gives each
    sampling step's original timestep, which is what the model is conditioned on)."""

    def __init__(self, betas: np.ndarray, spacing: str | int | None = None) -> None:
        betas = np.asarray(betas, dtype=np.float64)
        original_steps = len(betas)
        kept = space_timesteps(original_steps, spacing) if spacing else list(range(original_steps))
        full_alpha_bar = np.cumprod(1.0 - betas)
        alpha_bar = full_alpha_bar[kept]
        alpha_bar_prev = np.append(1.0, alpha_bar[:-1])
        betas = 1.0 - alpha_bar / alpha_bar_prev
        posterior_variance = betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
        tables = {
            "betas": betas,
            "sqrt_recip_alpha_bar": np.sqrt(1.0 / alpha_bar),
            "sqrt_recipm1_alpha_bar": np.sqrt(1.0 / alpha_bar - 1),
            "posterior_log_variance": np.log(np.append(posterior_variance[1], posterior_variance[1:])),
            "posterior_mean_coef1": betas * np.sqrt(alpha_bar_prev) / (1.0 - alpha_bar),
            "posterior_mean_coef2": (1.0 - alpha_bar_prev) * np.sqrt(1.0 - betas) / (1.0 - alpha_bar),
            "log_betas": np.log(betas),
        }
        self.tables = {k: torch.from_numpy(v) for k, v in tables.items()}
        self.timestep_map = torch.tensor(kept, dtype=torch.long)
        self.num_timesteps = len(kept)

    @classmethod
    def from_config(cls, config, spacing: str | int | None = None) -> GaussianDiffusion:
        """The sampler of a :class:`GlideConfig` (``spacing`` overrides its ``sampling_steps``)."""
        return cls(beta_schedule(config.noise_schedule, config.diffusion_steps),
                   spacing if spacing is not None else config.sampling_steps)

    def p_mean_log_variance(self, output: torch.Tensor, x: torch.Tensor, index: int,
                            denoise: Callable[[torch.Tensor], torch.Tensor] | None = None,
                            clip: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean and log-variance of p(x_{t-1} | x_t) from the model output, and the x0 prediction."""
        eps, var_values = output.float().split(x.shape[1], dim=1)
        t = self.tables
        frac = (var_values + 1) / 2  # [-1, 1] spans [posterior variance, beta]
        log_variance = frac * _gather(t["log_betas"], index, x) + (1 - frac) * _gather(
            t["posterior_log_variance"], index, x)
        x0 = (_gather(t["sqrt_recip_alpha_bar"], index, x) * x
              - _gather(t["sqrt_recipm1_alpha_bar"], index, x) * eps)
        if denoise is not None:
            x0 = denoise(x0)
        if clip:
            x0 = x0.clamp(-1, 1)
        mean = (_gather(t["posterior_mean_coef1"], index, x) * x0
                + _gather(t["posterior_mean_coef2"], index, x) * x)
        return mean, log_variance, x0

    def sample(self, model: ModelFn, shape: tuple[int, ...], generator: torch.Generator | None = None,
               device: torch.device | str = "cpu", noise: torch.Tensor | None = None,
               denoise: Callable[[torch.Tensor], torch.Tensor] | None = None, clip: bool = True,
               progress: bool = False) -> torch.Tensor:
        """Ancestral sampling from pure noise to x0 (float32, [-1, 1]). Noise is drawn on the CPU
        from ``generator``, so a seed gives the same image on every device."""
        def randn() -> torch.Tensor:
            return torch.randn(shape, generator=generator, dtype=torch.float32).to(device)

        x = noise.to(device=device, dtype=torch.float32) if noise is not None else randn()
        steps = range(self.num_timesteps - 1, -1, -1)
        for index in tqdm(steps, desc="glide", disable=not progress, leave=False):
            t = torch.full((shape[0],), int(self.timestep_map[index]), dtype=torch.long, device=device)
            with torch.no_grad():
                output = model(x, t)
            mean, log_variance, _ = self.p_mean_log_variance(output, x, index, denoise, clip)
            step_noise = randn()
            x = mean + torch.exp(0.5 * log_variance) * step_noise if index > 0 else mean
        return x


def keep_known(image: torch.Tensor, known: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The inpainting step: replace the x0 prediction by the source image wherever ``known`` is 1."""
    def denoise(x0: torch.Tensor) -> torch.Tensor:
        return x0 * (1 - known) + image * known
    return denoise


def classifier_free_guidance(model: ModelFn, scale: float) -> ModelFn:
    """Wrap a model called on the batch ``[conditional; unconditional]`` so that it returns the guided
    noise ``uncond + scale * (cond - uncond)`` with the conditional variance, for one half batch."""
    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        output = model(torch.cat([x, x]), torch.cat([t, t]))
        cond, uncond = output.chunk(2)
        channels = x.shape[1]
        eps = uncond[:, :channels] + scale * (cond[:, :channels] - uncond[:, :channels])
        return torch.cat([eps, cond[:, channels:]], dim=1)
    return guided
