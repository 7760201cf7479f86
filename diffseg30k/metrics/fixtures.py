"""Realistic (prediction, reference) label-map pairs for metric tests and benchmarks.

References hold 1-3 edited regions (wobbly ellipses, 1-40 % of the image, later regions overwrite
earlier ones like later edit turns); predictions shift and grow/shrink each region by a few pixels,
sometimes attribute it to the wrong generator, and add small false-positive blobs.
"""

from __future__ import annotations

import numpy as np


def _blob(shape: tuple[int, int], rng: np.random.Generator, area: float) -> tuple[np.ndarray, tuple]:
    height, width = shape
    radius = np.sqrt(area * height * width / np.pi)
    aspect = rng.uniform(0.6, 1.6)
    ry, rx = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
    cy, cx = rng.uniform(0.1, 0.9) * height, rng.uniform(0.1, 0.9) * width
    lobes, phase, wobble = int(rng.integers(2, 7)), rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 0.25)
    return np.array([cy, cx, ry, rx, lobes, phase, wobble]), (height, width)


def _render(params: np.ndarray, shape: tuple[int, int], grow: float = 0.0, shift=(0.0, 0.0)) -> np.ndarray:
    cy, cx, ry, rx, lobes, phase, wobble = params
    cy, cx = cy + shift[0], cx + shift[1]
    y0, y1 = int(max(0, cy - 1.4 * ry - grow - 2)), int(min(shape[0], cy + 1.4 * ry + grow + 3))
    x0, x1 = int(max(0, cx - 1.4 * rx - grow - 2)), int(min(shape[1], cx + 1.4 * rx + grow + 3))
    yy, xx = np.ogrid[y0:y1, x0:x1]
    dy, dx = (yy - cy) / ry, (xx - cx) / rx
    angle = np.arctan2(dy, dx)
    limit = 1 + wobble * np.sin(lobes * angle + phase) + grow / max(min(ry, rx), 1.0)
    out = np.zeros(shape, bool)
    out[y0:y1, x0:x1] = dy * dy + dx * dx <= limit * limit
    return out


def realistic_pair(seed: int, size: int | tuple[int, int] = 512, num_classes: int = 9,
                   ignore_band: bool = False, edited: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, reference) uint8 label maps; ``size`` is an int or (height, width).

    ``edited=False`` gives an all-background reference (the prediction keeps its false positives);
    ``ignore_band`` marks the top rows of the reference 255.
    """
    rng = np.random.default_rng(seed)
    shape = (size, size) if isinstance(size, int) else tuple(size)
    reference = np.zeros(shape, np.uint8)
    prediction = np.zeros(shape, np.uint8)
    count = int(rng.integers(1, 4)) if edited else 0
    total = rng.uniform(0.01, 0.40)
    shares = rng.dirichlet(np.ones(count)) * total if count else []
    labels = rng.choice(np.arange(1, num_classes), size=count, replace=count > num_classes - 1)
    scale = max(shape) / 512
    for share, label in zip(shares, labels):
        params, _ = _blob(shape, rng, max(share, 0.002))
        reference[_render(params, shape)] = label
        guess = label if rng.random() < 0.8 else rng.integers(1, num_classes)
        shift = rng.normal(0, 2.0 * scale, 2)
        prediction[_render(params, shape, grow=rng.normal(0, 2.0 * scale), shift=shift)] = guess
    for _ in range(int(rng.integers(0, 4))):
        params, _ = _blob(shape, rng, rng.uniform(0.0005, 0.004))
        prediction[_render(params, shape)] = rng.integers(1, num_classes)
    if ignore_band:
        reference[: max(1, shape[0] // 64)] = 255
    return prediction, reference


def _upsample(low: np.ndarray, shape: tuple[int, int], factor: int) -> np.ndarray:
    """Bilinear upsampling (half-pixel centres, clamped edges), as a segmenter's logits get it."""
    axes = []
    for size, length in zip(shape, low.shape):
        pos = np.clip((np.arange(size) + 0.5) / factor - 0.5, 0, length - 1)
        first = np.floor(pos).astype(int)
        axes.append((first, np.minimum(first + 1, length - 1), pos - first))
    (y0, y1, wy), (x0, x1, wx) = axes
    wy, wx = wy[:, None], wx[None, :]
    top = low[np.ix_(y0, x0)] * (1 - wx) + low[np.ix_(y0, x1)] * wx
    bottom = low[np.ix_(y1, x0)] * (1 - wx) + low[np.ix_(y1, x1)] * wx
    return top * (1 - wy) + bottom * wy


def realistic_scores(prediction: np.ndarray, reference: np.ndarray, seed: int,
                     confidence: float | None = None) -> np.ndarray:
    """A float32 edited-probability map for a pair, shaped like a segmenter's softmax output.

    Logits are +margin inside the prediction's edited region and -margin outside; a share of the
    reference's edited pixels the prediction missed get raised logits (ranking beats the label
    map's decision, but not perfectly); then, as in a SegFormer, the logits live at 1/4 resolution
    (block means plus smooth noise) and are bilinearly upsampled before the sigmoid.
    """
    rng = np.random.default_rng(seed + 7919)
    margin = rng.uniform(3.0, 9.0) if confidence is None else confidence
    edited = (prediction > 0) & (prediction != 255)
    logits = np.where(edited, margin, -margin)
    missed = (reference > 0) & (reference != 255) & ~edited
    logits[missed] += margin * rng.uniform(0.5, 1.2)
    height, width = prediction.shape
    padded = np.pad(logits, ((0, -height % 4), (0, -width % 4)), mode="edge")
    low = padded.reshape(padded.shape[0] // 4, 4, padded.shape[1] // 4, 4).mean(axis=(1, 3))
    low += rng.normal(0, 1.0, low.shape)
    full = _upsample(low, (height, width), 4)
    return (1.0 / (1.0 + np.exp(-full))).astype(np.float32)
