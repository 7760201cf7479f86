"""Pixel bookkeeping of an edit: square inputs, compositing only inside the mask, label maps.

Every diffusers pipeline also changes pixels outside the mask (the VAE round trip), so the raw
output is resized back and pasted *only inside the mask*: the label map is then exact.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def fit_square(image: Image.Image, size: int) -> Image.Image:
    """Resize so the short side is ``size`` and centre-crop to ``size`` x ``size`` (RGB)."""
    image = image.convert("RGB")
    width, height = image.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    image = image.resize((new_w, new_h), Image.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return image.crop((left, top, left + size, top + size))


def composite(base: Image.Image, edited: Image.Image, mask: np.ndarray) -> Image.Image:
    """Paste ``edited`` (resized to ``base``'s size) into ``base`` where ``mask`` is True."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (base.height, base.width):
        raise ValueError(f"mask shape {mask.shape} does not match image size {base.size}")
    edited = edited.convert("RGB")
    if edited.size != base.size:
        edited = edited.resize(base.size, Image.BICUBIC)
    out = np.asarray(base.convert("RGB")).copy()
    out[mask] = np.asarray(edited)[mask]
    return Image.fromarray(out, "RGB")


def apply_label(label_map: np.ndarray, mask: np.ndarray, label_id: int) -> np.ndarray:
    """A new label map where the masked pixels carry ``label_id`` (later turns overwrite)."""
    out = np.array(label_map, dtype=np.uint8, copy=True)
    out[np.asarray(mask, dtype=bool)] = label_id
    return out


def mask_area(mask: np.ndarray) -> float:
    """Fraction of the image a boolean mask covers."""
    mask = np.asarray(mask, dtype=bool)
    return float(mask.sum() / mask.size)
