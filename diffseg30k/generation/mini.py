"""The mini profile's inputs and the cached mini release (embedded default data of ``benchmark``).

Real bases are the public-domain photos bundled with scikit-image (no download), varied per sample
by random crops and flips; AI bases come from the tiny generators prompted with COCO-style captions.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

#: scikit-image photos that ship inside the package (no pooch download).
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "camera", "coins", "moon", "clock", "grass", "gravel", "brick")
#: COCO-style captions for AI bases (written for this toolkit in the style of COCO captions).
CAPTIONS = (
    "A man riding a bicycle down a city street.", "Two dogs playing with a ball on the grass.",
    "A plate of pasta with tomatoes on a wooden table.", "A red double decker bus parked by the curb.",
    "A woman holding an umbrella in the rain.", "A cat sleeping on a sofa next to a pillow.",
    "A kitchen with a refrigerator and a stove.", "A group of people standing on a beach.",
    "A train traveling over a bridge near mountains.", "A bowl of fruit on a counter top.",
    "A child flying a kite in a park.", "A living room with a television and a couch.",
    "A giraffe standing next to a tree.", "A pizza with cheese and vegetables on a tray.",
    "A boat docked at a pier on a calm lake.", "A skateboarder doing a trick on a ramp.",
    "A stop sign at the corner of an empty road.", "An airplane flying in a clear blue sky.",
    "A desk with a laptop, a lamp and a cup of coffee.", "A horse grazing in a fenced field.",
)
MINI_SIZE = 128


def load_photo(name: str) -> Image.Image:
    """One of scikit-image's bundled photos as RGB."""
    import skimage.data

    if name not in SKIMAGE_PHOTOS:
        raise ValueError(f"unknown mini photo {name!r}; available: {', '.join(SKIMAGE_PHOTOS)}")
    pixels = np.asarray(getattr(skimage.data, name)())
    if pixels.dtype != np.uint8:
        pixels = (255 * (pixels.astype(np.float64) / max(float(pixels.max()), 1.0))).astype(np.uint8)
    return Image.fromarray(pixels).convert("RGB")


def varied_photo(name: str, rng: np.random.Generator) -> Image.Image:
    """A photo with a random square-ish crop (50-100 % of the short side) and a random flip."""
    image = load_photo(name)
    width, height = image.size
    side = int(min(width, height) * rng.uniform(0.5, 1.0))
    left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
    image = image.crop((left, top, left + side, top + side))
    return image.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else image


def build_mini_release(num: int = 200, seed: int = 0, size: int = MINI_SIZE, editors: list[str] | None = None,
                       progress: bool = False) -> Path:
    """Generate (once) and return the cached mini release folder for these arguments.

    The folder is ``cache_dir("mini", ...)``; a complete one (``metadata.jsonl`` present) is reused.
    An interrupted build resumes where it stopped.
    """
    from diffseg30k.generation.editors.registry import installed_generators
    from diffseg30k.generation.pipeline import GenerationConfig, generate
    from diffseg30k.io import cache_dir

    editors = list(editors or installed_generators())
    key = f"n{num}-s{seed}-px{size}-{'+'.join(editors)}"
    out = cache_dir("mini") / key
    config = GenerationConfig(out=out, profile="mini", num_images=num, seed=seed, size=size,
                              editors=tuple(editors), progress=progress)
    recorded = out / "generation.json"
    if recorded.exists() and json.loads(recorded.read_text(encoding="utf-8")) != config.fingerprint():
        shutil.rmtree(out)  # built by another toolkit version: rebuild rather than mix
        out.mkdir(parents=True)
    if (out / "metadata.jsonl").exists() and recorded.exists():
        return out
    generate(config)
    return out


def read_metadata(root: str | Path) -> list[dict]:
    """The rows of a generated release's ``metadata.jsonl``."""
    with open(Path(root) / "metadata.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
