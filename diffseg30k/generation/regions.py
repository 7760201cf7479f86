"""Stage 1: candidate edit regions.

Paper profile (:class:`GroundedSAMProposer`): Qwen2.5-VL lists the objects (prompted to favour people
and large objects) -> Grounding DINO boxes -> SAM masks. Mini profile (:class:`ShapeProposer`):
superpixels and simple shapes. Both feed the same :func:`deduplicate` (IoU > 0.7) and
:func:`choose_regions` (1-3 masks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

IOU_THRESHOLD = 0.7
MIN_AREA, MAX_AREA = 0.01, 0.6
MINI_OBJECTS = ("person", "dog", "car", "chair", "tree", "bottle", "cup", "bench", "bird", "umbrella",
                "bag", "sign", "lamp", "plate of food", "bicycle")


@dataclass
class Region:
    """One candidate: a boolean mask, the object's name and the detector's confidence."""

    mask: np.ndarray
    label: str
    score: float = 1.0

    @property
    def area(self) -> float:
        return float(self.mask.mean())


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def deduplicate(regions: list[Region], iou_threshold: float = IOU_THRESHOLD) -> list[Region]:
    """Drop every mask overlapping a better one (higher score, then larger) with IoU > threshold."""
    kept: list[Region] = []
    for region in sorted(regions, key=lambda r: (-r.score, -r.area)):
        if all(mask_iou(region.mask, other.mask) <= iou_threshold for other in kept):
            kept.append(region)
    return kept


def choose_regions(regions: list[Region], count: int, rng: np.random.Generator,
                   min_area: float = MIN_AREA, max_area: float = MAX_AREA) -> list[Region]:
    """Pick up to ``count`` (1-3) usable regions at random, in turn order."""
    usable = [r for r in deduplicate(regions) if min_area <= r.area <= max_area]
    if not usable:
        return []
    picks = rng.choice(len(usable), size=min(count, len(usable)), replace=False)
    return [usable[int(i)] for i in picks]


# ---------------------------------------------------------------------------------------- mini
class ShapeProposer:
    """Mini profile: SLIC superpixel groups plus ellipses and rectangles, named from a fixed list."""

    def __init__(self, num_shapes: int = 4, num_segments: int = 12) -> None:
        self.num_shapes = num_shapes
        self.num_segments = num_segments

    def propose(self, image: Image.Image, rng: np.random.Generator) -> list[Region]:
        from skimage.segmentation import slic

        pixels = np.asarray(image.convert("RGB"))
        height, width = pixels.shape[:2]
        names = lambda: MINI_OBJECTS[int(rng.integers(len(MINI_OBJECTS)))]  # noqa: E731
        regions = []
        segments = slic(pixels, n_segments=self.num_segments, compactness=10, start_label=0)
        for segment in np.unique(segments)[: self.num_segments]:
            regions.append(Region(segments == segment, names(), float(rng.uniform(0.3, 0.9))))
        yy, xx = np.mgrid[0:height, 0:width]
        for i in range(self.num_shapes):
            cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
            ry, rx = rng.uniform(0.1, 0.3) * height, rng.uniform(0.1, 0.3) * width
            if i % 2:
                mask = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
            else:
                mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
            regions.append(Region(mask, names(), float(rng.uniform(0.3, 0.9))))
        return regions
