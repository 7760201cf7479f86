"""Synthetic DiffSeg30k-style samples for tests, examples and benchmarks (no model, no network).

Each sample is a textured RGB "photo" with 1-3 elliptic regions, each attributed to a generator id.
Inside a region every generator leaves its own learnable trace (a colour shift and a periodic
pattern whose period depends on the id), so tiny detectors can learn both localization and
attribution in a few steps.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from diffseg30k.labels import GENERATORS, palette

MASK_MODES = ("L", "P", "RGB")


def synthetic_pair(seed: int, size: tuple[int, int] = (64, 64), max_regions: int = 3,
                   edited: bool = True) -> tuple[Image.Image, np.ndarray]:
    """One (RGB image, uint8 label map) pair; ``size`` is (width, height)."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    base = rng.uniform(60, 190, size=3)
    smooth = (np.sin(xx / rng.uniform(6, 14)) + np.cos(yy / rng.uniform(6, 14)))[..., None] * 20
    image = np.clip(base + smooth + rng.normal(0, 4, (height, width, 3)), 0, 255)
    mask = np.zeros((height, width), np.uint8)
    if edited:
        ids = rng.choice([g.id for g in GENERATORS], size=rng.integers(1, max_regions + 1),
                         replace=False)
        for label in ids:
            cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
            ry, rx = rng.uniform(0.12, 0.3) * height, rng.uniform(0.12, 0.3) * width
            region = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            mask[region] = label
        for label in np.unique(mask[mask > 0]):
            region = mask == label
            period = 2 + int(label) % 4
            stripes = ((xx + (int(label) // 4) * yy) % period < period / 2) * 24.0 - 12.0
            tint = np.array(GENERATORS[int(label) - 1].color, float) - 128.0
            image[region] = np.clip(image[region] * 0.7 + tint * 0.3 + 40
                                    + stripes[region][:, None], 0, 255)
    return Image.fromarray(image.astype(np.uint8), "RGB"), mask


def encode_mask(mask: np.ndarray, mode: str = "L") -> Image.Image:
    """Encode a label map as an L label map, a P image with the label palette, or RGB colours."""
    if mode == "L":
        return Image.fromarray(mask, "L")
    if mode == "P":
        image = Image.fromarray(mask, "P")
        image.putpalette(palette())
        return image
    if mode == "RGB":
        lut = np.asarray(palette(), np.uint8).reshape(256, 3)
        return Image.fromarray(lut[mask], "RGB")
    raise ValueError(f"unknown mask mode {mode!r}; expected one of {MASK_MODES}")


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def write_synthetic_release(root: str | Path, num: int = 8, size: tuple[int, int] = (64, 64),
                            mask_mode: str = "L", split: str = "train", as_zip: bool = False,
                            seed: int = 0, start_id: int = 1, unedited_every: int = 0) -> Path:
    """Write ``num`` pairs in the official layout ``{split}_copy/NNNNNNNN.{image,mask}.png``.

    Returns the folder ``root/{split}_copy`` or the archive ``root/{split}.zip``. Every
    ``unedited_every``-th sample (when > 0) has no edit (all-zero mask).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    members: dict[str, bytes] = {}
    for k in range(num):
        sample_id = start_id + k
        edited = not (unedited_every and k % unedited_every == unedited_every - 1)
        image, mask = synthetic_pair(seed * 1_000_003 + sample_id, size, edited=edited)
        members[f"{split}_copy/{sample_id:08d}.image.png"] = _png(image)
        members[f"{split}_copy/{sample_id:08d}.mask.png"] = _png(encode_mask(mask, mask_mode))
    if as_zip:
        target = root / f"{split}.zip"
        with zipfile.ZipFile(target, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
        return target
    for name, data in members.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root / f"{split}_copy"


def synthetic_dataset(num: int = 8, size: tuple[int, int] = (64, 64), seed: int = 0,
                      unedited_every: int = 0):
    """An in-memory ``datasets.Dataset`` with the benchmark's columns (``id``, ``image``, ``mask`` as
    an L label map, ``models``, ``edited_fraction``) built from :func:`synthetic_pair`."""
    import datasets

    from diffseg30k.labels import ID2LABEL

    rows: dict[str, list] = {"id": [], "image": [], "mask": [], "models": [], "edited_fraction": []}
    for k in range(num):
        edited = not (unedited_every and k % unedited_every == unedited_every - 1)
        image, mask = synthetic_pair(seed * 1_000_003 + k, size, edited=edited)
        rows["id"].append(f"{k + 1:08d}")
        rows["image"].append(image)
        rows["mask"].append(encode_mask(mask, "L"))
        rows["models"].append([ID2LABEL[int(i)] for i in np.unique(mask) if i > 0])
        rows["edited_fraction"].append(float((mask > 0).mean()))
    features = datasets.Features({"id": datasets.Value("string"), "image": datasets.Image(),
                                  "mask": datasets.Image(), "models": datasets.List(datasets.Value("string")),
                                  "edited_fraction": datasets.Value("float32")})
    return datasets.Dataset.from_dict(rows, features=features)
