"""Figures as PNG, drawn with PIL in the paper's palette: Fig. 5 confusion matrices, Fig. 6 grids.

Colours, legends and label-map tiles come from :mod:`diffseg30k.render` (one presentation layer).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from diffseg30k.io import atomic_write_bytes
from diffseg30k.labels import BINARY_COLORS, BINARY_ID2LABEL, ID2LABEL, label_colors
from diffseg30k.render import colorized, legend_entries
from diffseg30k.render import font as _font
from diffseg30k.render import legend_strip as _legend_strip

WHITE, BLACK, GRID = (255, 255, 255), (0, 0, 0), (200, 200, 200)


def _save(image: Image.Image, path: str | Path) -> Path:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _heat(value: float) -> tuple[int, int, int]:
    """White (0) to dark blue (1)."""
    v = float(np.clip(value, 0.0, 1.0))
    return (int(255 - 247 * v), int(255 - 207 * v), int(255 - 148 * v))


def _vertical_text(text: str, face: ImageFont.ImageFont) -> Image.Image:
    """``text`` rotated to read bottom-up (column labels that never overlap or get cut)."""
    width = int(np.ceil(ImageDraw.Draw(Image.new("L", (1, 1))).textlength(text, font=face))) + 4
    label = Image.new("RGB", (width, 16), WHITE)
    ImageDraw.Draw(label).text((2, 1), text, fill=BLACK, font=face)
    return label.rotate(90, expand=True)


def confusion_figure(matrix: Sequence[Sequence[float]], names: Sequence[str], title: str, path: str | Path,
                     colors: dict[int, tuple[int, int, int]] | None = None, cell: int = 44) -> Path:
    """Row-normalised confusion matrix (rows = reference, columns = prediction), as in Fig. 5.

    Each row and column carries its class colour chip; cells show the row share with 2 decimals.
    """
    colors = colors or label_colors(dict(enumerate(names)))
    counts = np.asarray(matrix, np.float64)
    k = counts.shape[0]
    if counts.shape != (k, k) or len(names) != k:
        raise ValueError(f"confusion matrix {counts.shape} does not match {len(names)} class names")
    rows = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    font, small = _font(13), _font(11)
    labels = [_vertical_text(name, small) for name in names]
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    label_w = 30 + int(max(measure.textlength(name, font=small) for name in names))
    top = 50 + max(label.height for label in labels) + 22
    width = max(label_w + k * cell + 20, int(measure.textlength(title, font=font)) + 20)
    height = top + k * cell + 40
    canvas = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(canvas)
    draw.text((10, 8), title, fill=BLACK, font=font)
    draw.text((label_w, 30), "prediction ->", fill=BLACK, font=small)
    for j, label in enumerate(labels):
        x = label_w + j * cell
        draw.rectangle([x + 2, top - 18, x + cell - 3, top - 6], fill=colors.get(j, GRID), outline=BLACK)
        canvas.paste(label, (x + (cell - label.width) // 2, top - 22 - label.height))
    for i, name in enumerate(names):
        y = top + i * cell
        draw.rectangle([6, y + cell // 2 - 6, 18, y + cell // 2 + 6], fill=colors.get(i, GRID), outline=BLACK)
        draw.text((24, y + cell // 2 - 7), name, fill=BLACK, font=small)
        for j in range(k):
            x = label_w + j * cell
            value = rows[i, j]
            draw.rectangle([x, y, x + cell, y + cell], fill=_heat(value), outline=GRID)
            ink = WHITE if value > 0.55 else BLACK
            draw.text((x + 6, y + cell // 2 - 7), f"{value:.2f}", fill=ink, font=small)
    draw.text((10, height - 28), "rows: reference (row-normalised)", fill=BLACK, font=small)
    return _save(canvas, path)


def legend_strip(id2label: dict[int, str] | None = None, width: int = 640,
                 colors: dict[int, tuple[int, int, int]] | None = None, binary: bool = False) -> Image.Image:
    """A legend of label colours and names (Fig. 6's caption as an image); ``binary`` adds the binary
    task's "edited" colour, which is no generator's."""
    id2label = id2label or ID2LABEL
    entries = legend_entries(id2label, colors or label_colors(id2label), display=True)
    if binary:
        entries.append(("edited (binary models)", BINARY_COLORS[1]))
    return _legend_strip(entries, width=width)


def qualitative_grid(images: Sequence[Image.Image], references: Sequence[np.ndarray],
                     predictions: dict[str, Sequence[np.ndarray]], path: str | Path, tile: int = 128,
                     title: str = "", id2label: dict[int, str] | None = None,
                     binary_columns: Sequence[str] = ()) -> Path:
    """Fig. 6-style grid: one row per image: the image, its ground truth, then each model's prediction.

    ``predictions`` maps a column title (e.g. ``SEG-S``) to label maps aligned with ``images``; the
    ``binary_columns`` hold 0/1 maps, drawn in the binary palette ("edited" is white, no generator's).
    """
    columns = ["image", "ground truth", *predictions]
    semantic = label_colors(id2label or ID2LABEL)
    binary = label_colors(BINARY_ID2LABEL, "binary")
    font = _font(12)
    header = 24 + (20 if title else 0)
    legend = legend_strip(id2label, width=max(480, tile * len(columns) + 8 * (len(columns) + 1)),
                          binary=bool(binary_columns))
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
        tiles = [image.convert("RGB"), colorized(references[r], semantic)]
        tiles += [colorized(preds[r], binary if name in binary_columns else semantic)
                  for name, preds in predictions.items()]
        for c, picture in enumerate(tiles):
            resample = Image.BILINEAR if c == 0 else Image.NEAREST
            canvas.paste(picture.resize((tile, tile), resample), (8 + c * (tile + 8), y))
    canvas.paste(legend, (0, height - legend.height - 4))
    return _save(canvas, path)
