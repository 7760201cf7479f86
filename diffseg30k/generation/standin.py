"""The mini profile's CPU stand-in for a diffusion edit: classical content + a trained family component.

No diffusion step runs here. The content inside the mask comes from the image itself or another
bundled photo -- a removal is filled from the surroundings (normalised-convolution fill for the low
frequencies plus texture copied from an unmasked part of the image), an attribute change recolours
the region (hue rotation, saturation and brightness change), an addition pastes a crop of another
photo harmonised to the surroundings' colour statistics -- and the whole image is then passed
through the editor family's trained component (:mod:`diffseg30k.generation.components`); the
pipeline composites the result only inside the mask. Every edit records ``editor_backend``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from diffseg30k.generation.editors.base import Editor, EditRequest


def _blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(pixels, sigma=(sigma, sigma, 0) if pixels.ndim == 3 else sigma)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


def _texture_source(pixels: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fine detail for the masked area: of 12 random shifts of the image, the one whose detail energy
    under the mask best matches that around the mask, with little overlap of the mask itself."""
    detail = pixels - _blur(pixels, 2.0)
    energy = (detail ** 2).sum(-1)
    ring = (_blur(mask.astype(np.float32), 4.0) > 0.02) & ~mask
    target = float(energy[ring].mean()) if ring.any() else float(energy.mean())
    height, width = mask.shape
    best, best_cost = np.zeros_like(detail), np.inf
    for _ in range(12):
        dy, dx = int(rng.integers(-height // 2, height // 2)), int(rng.integers(-width // 2, width // 2))
        overlap = float((np.roll(mask, (dy, dx), axis=(0, 1)) & mask).sum() / max(mask.sum(), 1))
        shifted = np.roll(detail, (dy, dx), axis=(0, 1))
        got = float((shifted ** 2).sum(-1)[mask].mean())
        cost = abs(np.log((got + 1.0) / (target + 1.0))) + 4.0 * overlap
        if cost < best_cost:
            best, best_cost = shifted, cost
    return best


def smooth_fill(pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill the masked pixels from the unmasked ones by normalised convolution at growing scales
    (the nearest scale that reaches a pixel fills it): smooth, fast, no seam."""
    known = (~mask).astype(np.float32)
    values = pixels.astype(np.float32) * known[..., None]
    out = pixels.astype(np.float32).copy()
    todo = mask.copy()
    for sigma in (2.0, 4.0, 8.0, 16.0, 32.0, 64.0):
        weight = _blur(known, sigma)
        ready = todo & (weight > 0.05)
        if ready.any():
            out[ready] = (_blur(values, sigma)[ready] / weight[ready, None])
            todo &= ~ready
        if not todo.any():
            break
    if todo.any():
        out[todo] = pixels[~mask].mean(0) if (~mask).any() else 127.0
    return out


def removal_content(pixels: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fill the mask from its surroundings: smooth fill for the low frequencies + high frequencies
    copied from an unmasked part of the same image (texture continuation)."""
    detail = _texture_source(pixels.astype(np.float32), mask, rng)
    smooth = _blur(smooth_fill(pixels, mask), 1.0)
    result = np.where(mask[..., None], smooth + detail, pixels.astype(np.float32))
    return np.clip(result, 0, 255)


def attribute_content(pixels: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Recolour the region: rotate its hue, scale saturation and brightness (texture kept)."""
    from skimage.color import hsv2rgb, rgb2hsv

    hsv = rgb2hsv(pixels.astype(np.float32) / 255.0)
    hue_shift = rng.uniform(0.15, 0.85)
    hsv[..., 0] = np.where(mask, (hsv[..., 0] + hue_shift) % 1.0, hsv[..., 0])
    saturation = np.clip(hsv[..., 1] * rng.uniform(0.8, 1.6) + rng.uniform(0.05, 0.25), 0, 1)
    hsv[..., 1] = np.where(mask, saturation, hsv[..., 1])
    hsv[..., 2] = np.where(mask, np.clip(hsv[..., 2] * rng.uniform(0.75, 1.2), 0, 1), hsv[..., 2])
    return np.clip(hsv2rgb(hsv) * 255.0, 0, 255)


def addition_content(pixels: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                     donor: np.ndarray) -> np.ndarray:
    """Paste a crop of ``donor`` over the mask's box, its colours moved halfway to the surroundings'."""
    top, bottom, left, right = _bbox(mask)
    height, width = bottom - top, right - left
    dh, dw = donor.shape[:2]
    scale = max(height / dh, width / dw) * rng.uniform(1.0, 2.5)
    donor = np.asarray(Image.fromarray(donor).resize((max(width, round(dw * scale)),
                                                      max(height, round(dh * scale))), Image.BICUBIC))
    y0, x0 = int(rng.integers(donor.shape[0] - height + 1)), int(rng.integers(donor.shape[1] - width + 1))
    patch = donor[y0:y0 + height, x0:x0 + width].astype(np.float32)
    ring = _blur(mask.astype(np.float32), 4.0) > 0.02
    around = pixels[ring & ~mask].astype(np.float32)
    if around.size:
        mean, std = patch.reshape(-1, 3).mean(0), patch.reshape(-1, 3).std(0) + 1e-3
        target_mean, target_std = around.mean(0), around.std(0) + 1e-3
        harmonised = (patch - mean) / std * target_std + target_mean
        patch = 0.5 * patch + 0.5 * harmonised
    out = pixels.astype(np.float32).copy()
    out[top:bottom, left:right] = np.where(mask[top:bottom, left:right, None], patch,
                                           out[top:bottom, left:right])
    return np.clip(out, 0, 255)


def procedural_scene(size: int, rng: np.random.Generator) -> np.ndarray:
    """A simple outdoor-like scene: sky gradient, textured ground, a few shaded shapes."""
    from skimage.draw import ellipse, polygon

    yy = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    sky_top, sky_bottom = rng.uniform(60, 200, 3), rng.uniform(150, 250, 3)
    image = np.broadcast_to(sky_top * (1 - yy) + sky_bottom * yy, (size, size, 3)).copy()
    horizon = int(size * rng.uniform(0.4, 0.7))
    ground = rng.uniform(40, 170, 3)
    noise = _blur(rng.normal(0, 1, (size, size)).astype(np.float32), rng.uniform(0.6, 1.5))
    noise = noise / (noise.std() + 1e-6) * rng.uniform(6, 18)
    image[horizon:] = ground + noise[horizon:, :, None]
    for _ in range(int(rng.integers(2, 6))):
        colour = rng.uniform(20, 235, 3)
        cy, cx = rng.uniform(0.3, 0.9) * size, rng.uniform(0.1, 0.9) * size
        if rng.random() < 0.5:
            rr, cc = ellipse(cy, cx, rng.uniform(0.05, 0.2) * size, rng.uniform(0.05, 0.2) * size,
                             shape=(size, size))
        else:
            rr, cc = polygon(cy + rng.uniform(-0.2, 0.2, 4) * size, cx + rng.uniform(-0.2, 0.2, 4) * size,
                             shape=(size, size))
        if rr.size == 0:  # a shape drawn wholly outside the image
            continue
        shade = 0.75 + 0.25 * (1 - (rr - rr.min()) / max(np.ptp(rr), 1))
        image[rr, cc] = colour * shade[:, None] + noise[rr, cc, None] * 0.5
    return np.clip(_blur(image, 0.7), 0, 255)


class StandInEditor(Editor):
    """A mini editor: classical content for the edit type, then the family's trained component.

    ``adapter`` is the registered editor class; its ``component`` names the family's component.
    ``photos`` supplies bundled photos (donors of additions, sources of re-synthesised AI bases).
    """

    resolution: ClassVar[int] = 128

    def __init__(self, adapter: type[Editor], photos: Callable[[np.random.Generator], Image.Image],
                 device: str = "cpu", **options: Any) -> None:
        self.name = adapter.name  # type: ignore[misc]
        self.editor_name = adapter.editor_name  # type: ignore[misc]
        super().__init__(profile="mini", device=device, **options)
        self.spec = getattr(adapter, "component", None)
        if self.spec is None:
            raise ValueError(f"editor {self.variant!r} ({adapter.__name__}) has no mini stand-in component: "
                             "set `component = ComponentSpec(...)` on it and train it with "
                             "`python -m diffseg30k.generation.train_mini_components --only NAME`")
        self.photos = photos

    @property
    def backend(self) -> str:
        return self.spec.backend

    def load(self) -> None:
        if self.pipeline is None:
            from diffseg30k.generation.components import cached_component

            self.pipeline = cached_component(self.spec)

    def content(self, request: EditRequest) -> Image.Image:
        """The classical edit for ``request.edit_type`` (before the family's component)."""
        rng = np.random.default_rng([int(request.seed), 7])
        pixels = np.asarray(request.image.convert("RGB"))
        mask = np.asarray(request.mask, dtype=bool)
        if not mask.any():
            return request.image.convert("RGB")
        kind = request.edit_type or "attribute"
        if kind == "removal":
            out = removal_content(pixels, mask, rng)
        elif kind == "addition":
            out = addition_content(pixels, mask, rng, np.asarray(self.photos(rng)))
        elif kind == "attribute":
            out = attribute_content(pixels, mask, rng)
        else:
            raise ValueError(f"unknown edit type {kind!r} for the mini {self.variant} editor")
        return Image.fromarray(np.round(out).astype(np.uint8), "RGB")

    def inpaint(self, request: EditRequest) -> Image.Image:
        """The content re-synthesised by the family's component over the mask's box (+ 8 px context;
        only masked pixels are kept by the caller, so the rest of the image is left as it is)."""
        self.load()
        content = self.content(request)
        mask = np.asarray(request.mask, dtype=bool)
        if not mask.any():
            return content
        top, bottom, left, right = _bbox(mask)
        top, left = max(top - 8, 0), max(left - 8, 0)
        bottom, right = min(bottom + 8, mask.shape[0]), min(right + 8, mask.shape[1])
        box = (left, top, right, bottom)
        out = content.copy()
        out.paste(self.pipeline.resynthesize(content.crop(box), seed=int(request.seed)), box[:2])
        return out

    def text_to_image(self, prompt: str, seed: int, size: int) -> Image.Image:
        """An AI base: a bundled photo or (every other seed) a procedural scene, re-synthesised."""
        from diffseg30k.generation.composite import fit_square

        self.load()
        rng = np.random.default_rng([int(seed), 11])
        if rng.random() < 0.5:
            scene = Image.fromarray(procedural_scene(size, rng).astype(np.uint8), "RGB")
        else:
            scene = fit_square(self.photos(rng), size)
        return self.pipeline.resynthesize(scene, seed=int(seed))
