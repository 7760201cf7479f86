"""Deterministic image distortions for robustness evaluation (paper Tab. 3), registered in one place.

A :class:`Distortion` turns an (image, reference mask) pair into the pair a detector is scored on.
The paper's four (``jpeg60``, ``jpeg80``, ``resize256``, ``resize1024``) change only the image: the
prediction is resized back to the reference's size (nearest) before scoring. ``blur``, ``noise``,
``webp`` and ``crop`` are extra probes beyond the paper; ``crop`` also crops the reference.

Every distortion is deterministic: the same input gives the same output, byte for byte (``noise``
seeds its generator from the image content). Names are parsed by the registered families
(:data:`DISTORTION_KINDS`, one :class:`DistortionKind` each), so ``jpeg50`` or ``resize512`` work
too; :data:`DISTORTIONS` lists the defaults.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from diffseg30k.registry import Registry, RegistryError, suggest

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
    #: The report name (``resize 64``, ``JPEG 60``); the name itself when empty.
    display: str = ""

    def __post_init__(self) -> None:
        if not self.display:
            object.__setattr__(self, "display", DISPLAY.get(self.name, self.name))

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


IDENTITY = Distortion("none", "no distortion (the baseline)", lambda image: image.convert("RGB"),
                      display="Baseline")


@dataclass(frozen=True)
class DistortionKind:
    """A registered family of distortions: names matching ``pattern`` (one optional number, the
    parameter) are built by ``make(parameter or default)``; ``form`` documents the names."""

    name: str
    pattern: str
    form: str
    make: Callable[[str], Distortion]
    default: str | None = None
    description: str = ""

    def parse(self, key: str) -> Distortion | None:
        match = re.fullmatch(self.pattern, key)
        if match is None:
            return None
        return self.make(match.group(1) if match.group(1) is not None else self.default)


#: Distortion families in report order (Baseline first, then as registered). A new one is one
#: module registering a :class:`DistortionKind`, added once to the module list here.
DISTORTION_KINDS: Registry[DistortionKind] = Registry(
    "distortion", package=("diffseg30k.data.distortions",),
    describe=lambda kind: f"{kind.form:<18} {kind.description}")


def register_distortion(name: str, pattern: str, form: str, default: str | None = None, description: str = ""
                        ) -> Callable[[Callable[[str], Distortion]], Callable[[str], Distortion]]:
    """Decorator registering ``make(parameter) -> Distortion`` as the family ``name``."""
    def wrap(make: Callable[[str], Distortion]) -> Callable[[str], Distortion]:
        DISTORTION_KINDS.register(DistortionKind(name, pattern, form, make, default, description))
        return make
    return wrap


def _name(stem: str, value: str, default: str) -> str:
    return stem if value == default else f"{stem}{value}"


def _quality(name: str, value: str) -> int:
    if not 1 <= int(value) <= 100:
        raise ValueError(f"distortion {name!r}: quality must lie in 1..100")
    return int(value)


@register_distortion("jpeg", r"jpeg(\d{1,3})", "jpeg<quality>", description="JPEG encode/decode")
def _jpeg(q: str) -> Distortion:
    quality = _quality(f"jpeg{q}", q)
    return Distortion(f"jpeg{quality}", f"JPEG encode/decode at quality {quality}",
                      lambda im: jpeg(im, quality), display=f"JPEG {quality}")


@register_distortion("resize", r"resize(\d{2,5})", "resize<side>",
                     description="bilinear square resize, prediction resized back")
def _resize(s: str) -> Distortion:
    side = int(s)
    return Distortion(f"resize{side}", f"bilinear resize to {side}x{side} before inference; prediction "
                      "resized back (nearest)", lambda im: resize_square(im, side), display=f"resize {side}")


@register_distortion("webp", r"webp(\d{1,3})?", "webp[<quality>]", "75", "lossy WebP encode/decode")
def _webp(q: str) -> Distortion:
    quality = _quality(f"webp{q}", q)
    return Distortion(_name("webp", q, "75"), f"WebP encode/decode at quality {quality}",
                      lambda im: webp(im, quality), display=f"WebP {quality}")


@register_distortion("blur", r"blur(\d+(?:\.\d+)?)?", "blur[<radius>]", "1.5", "Gaussian blur")
def _blur(r: str) -> Distortion:
    radius = float(r)
    return Distortion(_name("blur", r, "1.5"), f"Gaussian blur, radius {radius:g} px",
                      lambda im: blur(im, radius), display=f"blur {radius:g}")


@register_distortion("noise", r"noise(\d+(?:\.\d+)?)?", "noise[<sigma>]", "8", "additive Gaussian noise")
def _noise(s: str) -> Distortion:
    sigma = float(s)
    return Distortion(_name("noise", s, "8"), f"additive Gaussian noise, sigma {sigma:g} (content-seeded)",
                      lambda im: gaussian_noise(im, sigma), display=f"noise {sigma:g}")


@register_distortion("crop", r"crop(\d{1,2})?", "crop[<percent>]", "80", "centre crop (reference too)")
def _crop(p: str) -> Distortion:
    if not 10 <= int(p) <= 99:
        raise ValueError(f"distortion 'crop{p}': crop percent must lie in 10..99")
    return Distortion(_name("crop", p, "80"), f"centre crop keeping {int(p)} % of each side (reference "
                      "cropped too)", lambda im: im.convert("RGB"), crop_fraction=int(p) / 100,
                      display=f"crop {int(p)} %")


def get_distortion(name: str) -> Distortion:
    """Parse a distortion name (``none``, ``jpeg60``, ``resize256``, ``blur``, ``noise12``, ...)."""
    key = name.strip().lower()
    if key in ("none", "baseline", ""):
        return IDENTITY
    for kind in DISTORTION_KINDS.values():
        distortion = kind.parse(key)
        if distortion is not None:
            return distortion
    kinds = DISTORTION_KINDS.values()
    bare = [kind.name for kind in kinds if kind.default is not None]
    raise RegistryError("distortion", name, list(dict.fromkeys(["none", *DISTORTIONS, *bare])),
                        "forms: " + ", ".join(kind.form for kind in kinds), _respelled(key))


def _respelled(key: str) -> list[str] | None:
    """``resze64`` -> ``[resize64]``: the nearest family name with the same parameter, if it parses."""
    stem, rest = re.fullmatch(r"([a-z]*)(.*)", key).groups()
    for close in suggest(stem, DISTORTION_KINDS.names())[:1]:
        if any(kind.parse(close + rest) for kind in DISTORTION_KINDS.values() if kind.name == close):
            return [close + rest]
    return None


def distortion_order(name: str) -> tuple[int, float, str]:
    """Sort key of the one report order: Baseline, then families as registered, parameter ascending."""
    key = name.strip().lower()
    if key in ("none", "baseline", ""):
        return (-1, 0.0, "")
    for index, kind in enumerate(DISTORTION_KINDS.values()):
        match = re.fullmatch(kind.pattern, key)
        if match:
            return (index, float(match.group(1) or kind.default or 0), key)
    return (len(DISTORTION_KINDS), 0.0, key)


def display_name(name: str) -> str:
    """A distortion's report name (``resize 64``, ``JPEG 60``, ``Baseline``); the name if unparsable."""
    try:
        return get_distortion(name).display
    except ValueError:
        return name


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
