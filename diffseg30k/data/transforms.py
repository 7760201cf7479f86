"""Training-time transforms on (image, label map) pairs: random crops, flips and two distortion
recipes: "robust" (random rescale 0.25-2x, Gaussian blur, JPEG quality 50-100) and TruFor's "trufor"
(rescale 0.5-1.5x, JPEG quality 30-100, crops aligned to the 8x8 JPEG grid; Guillaro et al. 2023).

Grid alignment: with ``align=8`` a crop starts at a multiple of 8 pixels and is flipped only when
its width is a multiple of 8, so the JPEG blocks of the source (and of a JPEG applied after a rescale,
anchored at the crop's corner) stay on the model's 8x8 grid -- as at inference, where images are
padded only at the bottom/right. It works for every model.

Everything works on PIL images and uint8 numpy arrays and takes an explicit
``numpy.random.Generator``, so a sample's augmentation is a pure function of its seed (exact resume
and identical results with any number of data-loader workers). Crops are cut *before* any resize or
pixel conversion: rescaling by ``s`` then cropping ``c`` pixels equals cropping ``c / s`` pixels and
resizing them to ``c``, at a fraction of the cost on 1024-pixel images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from diffseg30k.data.distortions import jpeg  # one JPEG round trip for training and evaluation
from diffseg30k.labels import IGNORE_INDEX

AUGMENTATIONS = ("none", "robust", "trufor")


@dataclass(frozen=True)
class RobustAugment:
    """Parameters of ``--augment robust`` (and ``trufor``); each distortion is applied with probability
    ``p``; ``blur_sigma=None`` disables blurring; crops start at multiples of ``align`` pixels."""

    p: float = 0.5
    scale: tuple[float, float] = (0.25, 2.0)
    jpeg_quality: tuple[int, int] = (50, 100)
    blur_sigma: tuple[float, float] | None = (0.1, 2.0)
    align: int = 1


#: TruFor's training recipe: rescale +-50 %, JPEG 30-100, 8x8-grid-aligned crops.
TRUFOR_AUGMENT = RobustAugment(p=0.5, scale=(0.5, 1.5), jpeg_quality=(30, 100), blur_sigma=None, align=8)


def _crop_box(width: int, height: int, size: int, rng: np.random.Generator,
              align: int = 1) -> tuple[int, int, int, int]:
    left = align * int(rng.integers(0, (width - size) // align + 1)) if width > size else 0
    top = align * int(rng.integers(0, (height - size) // align + 1)) if height > size else 0
    return left, top, left + min(size, width), top + min(size, height)


def _pad(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad to ``size`` x ``size`` at the bottom/right: image with 0, label map with 255 (ignored)."""
    height, width = mask.shape
    if height == size and width == size:
        return image, mask
    padded_image = np.zeros((size, size, 3), np.uint8)
    padded_mask = np.full((size, size), IGNORE_INDEX, np.uint8)
    padded_image[:height, :width] = image
    padded_mask[:height, :width] = mask
    return padded_image, padded_mask


@dataclass(frozen=True)
class CropPlan:
    """Where to cut (``box`` in source pixels) and the rescale factor applied to the cut."""

    box: tuple[int, int, int, int]
    scale: float


def plan_crop(width: int, height: int, size: int, rng: np.random.Generator,
              augment: RobustAugment | None = None) -> CropPlan:
    """Draw the crop of a ``width`` x ``height`` image; needs only the size (decode just what is cut)."""
    scale = 1.0
    if augment is not None and rng.random() < augment.p:
        scale = float(np.exp(rng.uniform(np.log(augment.scale[0]), np.log(augment.scale[1]))))
    source_size = max(1, int(round(size / scale)))
    return CropPlan(_crop_box(width, height, source_size, rng, augment.align if augment else 1), scale)


def train_crop(image: Image.Image, mask: Image.Image | np.ndarray, size: int, rng: np.random.Generator,
               augment: RobustAugment | None = None, flip: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A random ``size`` crop of an RGB image and its label map as uint8 arrays (HxWx3, HxW).

    Smaller images are padded (label 255). With ``augment`` the crop is rescaled, blurred and
    JPEG-compressed at random, each with probability ``augment.p``.
    """
    mask_image = mask if isinstance(mask, Image.Image) else Image.fromarray(np.asarray(mask, np.uint8), "L")
    if image.size != mask_image.size:
        raise ValueError(f"image size {image.size} differs from mask size {mask_image.size}")
    plan = plan_crop(*image.size, size, rng, augment)
    return apply_crop(image, mask_image, plan, size, rng, augment, flip)


def apply_crop(image: Image.Image, mask_image: Image.Image, plan: CropPlan, size: int,
               rng: np.random.Generator, augment: RobustAugment | None = None,
               flip: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``plan`` out of the pair, then rescale, distort, flip and pad (see :func:`train_crop`).

    The images need to hold rows ``0 .. plan.box[3]`` only (anything below is never read)."""
    box, scale = plan.box, plan.scale
    image = image.crop(box)
    mask_image = mask_image.crop(box)
    if image.mode != "RGB":
        image = image.convert("RGB")
    if scale != 1.0:
        target = tuple(min(size, max(1, round(side * scale))) for side in image.size)
        image = image.resize(target, Image.BILINEAR)
        mask_image = mask_image.resize(target, Image.NEAREST)
    if augment is not None:
        if augment.blur_sigma is not None and rng.random() < augment.p:
            image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(*augment.blur_sigma))))
        if rng.random() < augment.p:
            image = jpeg(image, int(rng.integers(augment.jpeg_quality[0], augment.jpeg_quality[1] + 1)))
    image_array = np.asarray(image, np.uint8)
    mask_array = np.asarray(mask_image, np.uint8)
    align = augment.align if augment is not None else 1
    if flip and rng.random() < 0.5 and image_array.shape[1] % align == 0:  # a flip keeps the grid
        image_array, mask_array = image_array[:, ::-1], mask_array[:, ::-1]
    return _pad(np.ascontiguousarray(image_array), np.ascontiguousarray(mask_array), size)


def make_augment(name: str | None) -> RobustAugment | None:
    """``None``/'none' -> no distortion; 'robust' -> :class:`RobustAugment` defaults; 'trufor' ->
    :data:`TRUFOR_AUGMENT`."""
    if name in (None, "none"):
        return None
    if name == "robust":
        return RobustAugment()
    if name == "trufor":
        return TRUFOR_AUGMENT
    raise ValueError(f"unknown augmentation {name!r}; expected one of {AUGMENTATIONS}")
