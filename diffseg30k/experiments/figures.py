"""Figures as PNG, drawn with PIL in the paper's palette: Fig. 5 confusion matrices, Fig. 6 grids."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from diffseg30k.io import atomic_write_bytes
from diffseg30k.labels import COLORS, DISPLAY_NAMES, ID2LABEL, colorize

WHITE, BLACK, GRID = (255, 255, 255), (0, 0, 0), (200, 200, 200)


def _font(size: int = 12) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _save(image: Image.Image, path: str | Path) -> Path:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _heat(value: float) -> tuple[int, int, int]:
    """White (0) to dark blue (1)."""
    v = float(np.clip(value, 0.0, 1.0))
    return (int(255 - 247 * v), int(255 - 207 * v), int(255 - 148 * v))


def _short(name: str) -> str:
    return "bg" if name == "background" else name[:6]


def confusion_figure(matrix: Sequence[Sequence[float]], names: Sequence[str], title: str, path: str | Path,
                     colors: dict[int, tuple[int, int, int]] | None = None, cell: int = 44) -> Path:
    """Row-normalised confusion matrix (rows = reference, columns = prediction), as in Fig. 5.

    Each row and column carries its class colour chip; cells show the row share with 2 decimals.
    """
    colors = colors or COLORS
    counts = np.asarray(matrix, np.float64)
    k = counts.shape[0]
    if counts.shape != (k, k) or len(names) != k:
        raise ValueError(f"confusion matrix {counts.shape} does not match {len(names)} class names")
    rows = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    font, small = _font(13), _font(11)
    label_w, top = 110, 84
    width, height = label_w + k * cell + 20, top + k * cell + 40
    canvas = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(canvas)
    draw.text((10, 8), title, fill=BLACK, font=font)
    draw.text((label_w, 30), "prediction ->", fill=BLACK, font=small)
    for j, name in enumerate(names):
        x = label_w + j * cell
        draw.rectangle([x + 2, top - 18, x + cell - 3, top - 6], fill=colors.get(j, GRID), outline=BLACK)
        draw.text((x + 2, top - 34), _short(name), fill=BLACK, font=small)
    for i, name in enumerate(names):
        y = top + i * cell
        draw.rectangle([6, y + cell // 2 - 6, 18, y + cell // 2 + 6], fill=colors.get(i, GRID), outline=BLACK)
        draw.text((24, y + cell // 2 - 7), name[:12], fill=BLACK, font=small)
        for j in range(k):
            x = label_w + j * cell
            value = rows[i, j]
            draw.rectangle([x, y, x + cell, y + cell], fill=_heat(value), outline=GRID)
            ink = WHITE if value > 0.55 else BLACK
            draw.text((x + 6, y + cell // 2 - 7), f"{value:.2f}", fill=ink, font=small)
    draw.text((10, height - 28), "rows: reference (row-normalised)", fill=BLACK, font=small)
    return _save(canvas, path)


def legend_strip(id2label: dict[int, str] | None = None, width: int = 640,
                 colors: dict[int, tuple[int, int, int]] | None = None) -> Image.Image:
    """A legend of label colours and names (Fig. 6's caption as an image)."""
    id2label = id2label or ID2LABEL
    colors = colors or COLORS
    font = _font(12)
    per_row = max(1, width // 210)
    entries = sorted(id2label.items())
    strip = Image.new("RGB", (width, 22 * ((len(entries) + per_row - 1) // per_row) + 6), WHITE)
    draw = ImageDraw.Draw(strip)
    for n, (label_id, name) in enumerate(entries):
        x, y = 6 + (n % per_row) * 210, 4 + (n // per_row) * 22
        draw.rectangle([x, y + 2, x + 14, y + 16], fill=colors.get(label_id, GRID), outline=BLACK)
        display = DISPLAY_NAMES.get(label_id, name) if id2label is ID2LABEL else name
        draw.text((x + 20, y + 2), display[:28], fill=BLACK, font=font)
    return strip


def qualitative_grid(images: Sequence[Image.Image], references: Sequence[np.ndarray],
                     predictions: dict[str, Sequence[np.ndarray]], path: str | Path, tile: int = 128,
                     title: str = "", id2label: dict[int, str] | None = None) -> Path:
    """Fig. 6-style grid: one row per image: the image, its ground truth, then each model's prediction.

    ``predictions`` maps a column title (e.g. ``SEG-S``) to label maps aligned with ``images``.
    Binary predictions (0/1) are drawn in the binary colour (id 1 = Crimson, like SD2).
    """
    columns = ["image", "ground truth", *predictions]
    font = _font(12)
    header = 24 + (20 if title else 0)
    legend = legend_strip(id2label, width=max(480, tile * len(columns) + 8 * (len(columns) + 1)))
    width = max(legend.width, 8 + len(columns) * (tile + 8))
    height = header + len(images) * (tile + 8) + legend.height + 8
    canvas = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((8, 4), title, fill=BLACK, font=font)
    for c, name in enumerate(columns):
        draw.text((8 + c * (tile + 8), header - 18), name, fill=BLACK, font=font)
    for r, image in enumerate(images):
        y = header + r * (tile + 8)
        tiles = [image.convert("RGB"), Image.fromarray(colorize(references[r]))]
        tiles += [Image.fromarray(colorize(preds[r])) for preds in predictions.values()]
        for c, picture in enumerate(tiles):
            resample = Image.BILINEAR if c == 0 else Image.NEAREST
            canvas.paste(picture.resize((tile, tile), resample), (8 + c * (tile + 8), y))
    canvas.paste(legend, (0, height - legend.height - 4))
    return _save(canvas, path)
