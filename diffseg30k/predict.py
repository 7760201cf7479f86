"""``diffseg30k predict``'s work: one overlay PNG, label-map PNG and JSON per image, written atomically
(plus a reliability PNG and the integrity score for detectors that give them, e.g. TruFor-style)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["predict_images", "reliability_image"]


def _unique(stem: str, used: set[str]) -> str:
    name, k = stem, 1
    while name in used:
        name, k = f"{stem}-{k}", k + 1
    used.add(name)
    return name


def reliability_image(reliability: Any) -> Any:
    """A float HxW map in [0, 1] as an 8-bit greyscale PIL image (255 = fully reliable)."""
    import numpy as np
    from PIL import Image

    return Image.fromarray((np.clip(reliability, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))  # 2-D uint8: "L"


def predict_images(detector: Any, images: Iterable[str | Path], out: str | Path,
                   checkpoint: str | None = None, progress: bool = True) -> Iterator[tuple[str, Any, Path]]:
    """Run ``detector`` on each image file; write ``NAME.overlay.png``, ``NAME.mask.png`` and
    ``NAME.json`` under ``out`` (``NAME`` is the file stem, made unique); yields (image, result, json).
    Drawn by :mod:`diffseg30k.render`; the JSON names the checkpoint folder the detector loaded. A
    result with a reliability map also writes ``NAME.reliability.png`` (8-bit grey, 255 = reliable) and
    the JSON holds its ``integrity`` score and the map's file name.

    Raises :class:`~diffseg30k.io.ImageError` for an unreadable image, naming it."""
    from tqdm.auto import tqdm

    from diffseg30k.detector import to_rgb_array
    from diffseg30k.io import atomic_write_bytes, atomic_write_text
    from diffseg30k.render import label_map_image, png_bytes, render_overlay, result_colors

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    images = list(images)
    used: set[str] = set()
    for path in tqdm(images, desc="predict", disable=not progress or len(images) < 2):
        image = to_rgb_array(path)  # decoded and normalised once, for the detector and the overlay alike
        result = detector(image)
        name = _unique(Path(path).stem, used)
        overlay = render_overlay(image, result, threshold=detector.area_threshold)
        atomic_write_bytes(out / f"{name}.overlay.png", png_bytes(overlay))
        mask = label_map_image(result.label_map, result_colors(result))  # pixel value = label id
        atomic_write_bytes(out / f"{name}.mask.png", png_bytes(mask))
        loaded = getattr(detector, "checkpoint", None) or checkpoint
        record = {"image": str(path), "checkpoint": None if loaded is None else str(loaded),
                  "runtime": getattr(detector, "runtime", "torch"), **result.to_dict()}
        if getattr(result, "reliability", None) is not None:
            record["reliability"] = f"{name}.reliability.png"
            atomic_write_bytes(out / record["reliability"], png_bytes(reliability_image(result.reliability)))
        else:  # a map left by an earlier run with another detector would read as this result's
            (out / f"{name}.reliability.png").unlink(missing_ok=True)
        atomic_write_text(out / f"{name}.json", json.dumps(record, indent=2))
        yield str(path), result, out / f"{name}.json"
