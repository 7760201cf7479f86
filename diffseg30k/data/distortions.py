"""Deterministic image distortions for robustness evaluation (paper Tab. 3), registered in one place.

A :class:`Distortion` turns an (image, reference mask) pair into the pair a detector is scored on.
The paper's four (``jpeg60``, ``jpeg80``, ``resize256``, ``resize1024``) change only the image: the
prediction is resized back to the reference's size (nearest) before scoring. ``blur``, ``noise``,
``webp`` and ``crop`` are extra probes beyond the paper; ``crop`` also crops the reference.

Every distortion is deterministic: the same input gives the same output, byte for byte (``noise``
seeds its generator from the image content). Names are parsed, so ``jpeg50`` or ``resize512`` work
too; :data:`DISTORTIONS` lists the registered defaults.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

#: The paper's Tab. 3 distortions, in its order.
PAPER_DISTORTIONS = ("jpeg60", "jpeg80", "resize256", "resize1024")
#: Every registered default (paper first, then the extra probes).
DISTORTIONS = (*PAPER_DISTORTIONS, "blur", "noise", "webp", "crop")
#: Display names used in reports, matching the paper's rows.
DISPLAY = {"none": "Baseline", "jpeg60": "JPEG 60", "jpeg80": "JPEG 80", "resize256": "resize 256",
           "resize1024": "resize 1024"}


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    """PIL JPEG encode/decode round trip at ``quality`` (4:2:0 subsampling, PIL's default)."""
    return _codec(image, "JPEG", quality=int(quality))


def webp(image: Image.Image, quality: int) -> Image.Image:
    """Lossy WebP encode/decode round trip at ``quality`` (method 4, deterministic)."""
    return _codec(image, "WEBP", quality=int(quality), method=4)


def _codec(image: Image.Image, fmt: str, **options: int) -> Image.Image:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format=fmt, **options)
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out.convert("RGB")


def resize_square(image: Image.Image, side: int) -> Image.Image:
    """Resize to ``side`` x ``side`` with bilinear interpolation (the paper's resize probe)."""
    return image.convert("RGB").resize((int(side), int(side)), Image.BILINEAR)


def blur(image: Image.Image, radius: float) -> Image.Image:
    """Gaussian blur with PIL's ``radius`` (standard deviation in pixels)."""
    return image.convert("RGB").filter(ImageFilter.GaussianBlur(radius=float(radius)))


def gaussian_noise(image: Image.Image, sigma: float) -> Image.Image:
    """Additive Gaussian noise of standard deviation ``sigma`` (0-255 scale), seeded by the pixels."""
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    seed = zlib.crc32(array.tobytes()) ^ (array.shape[0] << 16) ^ array.shape[1]
    noise = np.random.default_rng(seed).normal(0.0, float(sigma), array.shape)
    return Image.fromarray(np.clip(np.rint(array + noise), 0, 255).astype(np.uint8), "RGB")


def center_crop_box(width: int, height: int, fraction: float) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box of a centred crop keeping ``fraction`` of each side."""
    new_w, new_h = max(1, round(width * fraction)), max(1, round(height * fraction))
    left, top = (width - new_w) // 2, (height - new_h) // 2
    return left, top, left + new_w, top + new_h


@dataclass(frozen=True)
class Distortion:
    """A named, deterministic transformation of an evaluation pair.

    ``image_fn`` maps the image; ``crop_fraction`` (when set) crops image *and* reference to the
    same centred box first. Predictions are scored at the (possibly cropped) reference's size.
    """

    name: str
    description: str
    image_fn: Callable[[Image.Image], Image.Image]
    crop_fraction: float | None = None

    @property
    def display(self) -> str:
        return DISPLAY.get(self.name, self.name)

    def apply(self, image: Image.Image, reference: np.ndarray | None = None
              ) -> tuple[Image.Image, np.ndarray | None]:
        """Return the distorted image and the reference to score against."""
        if self.crop_fraction is not None:
            box = center_crop_box(*image.size, self.crop_fraction)
            image = image.crop(box)
            if reference is not None:
                reference = np.asarray(reference)[box[1]:box[3], box[0]:box[2]]
        return self.image_fn(image), reference

    def __call__(self, image: Image.Image) -> Image.Image:
        return self.apply(image)[0]


IDENTITY = Distortion("none", "no distortion (the baseline)", lambda image: image.convert("RGB"))

_PATTERNS: tuple[tuple[str, str, Callable[[str], Distortion]], ...] = (
    (r"jpeg(\d{1,3})", "jpeg<quality>", lambda q: Distortion(
        f"jpeg{int(q)}", f"JPEG encode/decode at quality {int(q)}", lambda im: jpeg(im, int(q)))),
    (r"webp(\d{1,3})?", "webp[<quality>]", lambda q: Distortion(
        _name("webp", q, "75"), f"WebP encode/decode at quality {int(q or 75)}",
        lambda im: webp(im, int(q or 75)))),
    (r"resize(\d{2,5})", "resize<side>", lambda s: Distortion(
        f"resize{int(s)}", f"bilinear resize to {int(s)}x{int(s)} before inference; prediction resized "
        "back (nearest)", lambda im: resize_square(im, int(s)))),
    (r"blur(\d+(?:\.\d+)?)?", "blur[<radius>]", lambda r: Distortion(
        _name("blur", r, "1.5"), f"Gaussian blur, radius {float(r or 1.5):g} px",
        lambda im: blur(im, float(r or 1.5)))),
    (r"noise(\d+(?:\.\d+)?)?", "noise[<sigma>]", lambda s: Distortion(
        _name("noise", s, "8"), f"additive Gaussian noise, sigma {float(s or 8):g} (content-seeded)",
        lambda im: gaussian_noise(im, float(s or 8)))),
    (r"crop(\d{1,2})?", "crop[<percent>]", lambda p: Distortion(
        _name("crop", p, "80"), f"centre crop keeping {int(p or 80)} % of each side (reference cropped "
        "too)", lambda im: im.convert("RGB"), crop_fraction=int(p or 80) / 100)),
)


def _name(stem: str, value: str | None, default: str) -> str:
    return stem if value in (None, default) else f"{stem}{value}"


def get_distortion(name: str) -> Distortion:
    """Parse a distortion name (``none``, ``jpeg60``, ``resize256``, ``blur``, ``noise12``, ...)."""
    key = name.strip().lower()
    if key in ("none", "baseline", ""):
        return IDENTITY
    for pattern, _, factory in _PATTERNS:
        match = re.fullmatch(pattern, key)
        if match:
            value = match.group(1)
            if key.startswith(("jpeg", "webp")) and value is not None and not 1 <= int(value) <= 100:
                raise ValueError(f"distortion {name!r}: quality must lie in 1..100")
            if key.startswith("crop") and value is not None and not 10 <= int(value) <= 99:
                raise ValueError(f"distortion {name!r}: crop percent must lie in 10..99")
            return factory(value)
    forms = ", ".join(form for _, form, _ in _PATTERNS)
    raise ValueError(f"unknown distortion {name!r}; registered: none, {', '.join(DISTORTIONS)} "
                     f"(forms: {forms})")


def parse_distortions(spec: str | list[str] | tuple[str, ...] | None,
                      include_baseline: bool = True) -> list[Distortion]:
    """Parse a comma-separated list (or ``paper`` / ``all``) into distortions, baseline first."""
    if spec is None:
        names: list[str] = []
    elif isinstance(spec, str):
        names = [s for s in spec.split(",") if s.strip()]
    else:
        names = list(spec)
    expanded: list[str] = []
    for name in names:
        key = name.strip().lower()
        expanded.extend(PAPER_DISTORTIONS if key == "paper" else DISTORTIONS if key == "all" else [key])
    result = [IDENTITY] if include_baseline else []
    for distortion in map(get_distortion, expanded):
        if distortion.name not in {d.name for d in result}:
            result.append(distortion)
    return result
