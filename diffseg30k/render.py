"""The presentation layer: one renderer for overlays, legends and label-map PNGs.

Colours always come from :func:`diffseg30k.labels.label_colors` (the label set's names), so
``predict``, the demo, the paper figures and the Hub card draw a label alike, whatever its id.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from diffseg30k.labels import (
    BACKGROUND_ID,
    EDITED_COLOR,
    ID2LABEL,
    colorize,
    display_name,
    label_colors,
    palette,
)

if TYPE_CHECKING:
    from diffseg30k.detector import DetectionResult

RGB = tuple[int, int, int]
OVERLAY_ALPHA = 0.55
WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (200, 200, 200)


def font(size: int = 12) -> ImageFont.ImageFont:
    """PIL's bundled font at ``size`` (older Pillow: its fixed-size bitmap font)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def result_colors(result: DetectionResult) -> dict[int, RGB]:
    """The palette of a detector's answer (its label set and task)."""
    return label_colors(result.id2label, result.task)


def overlay(image: np.ndarray, label_map: np.ndarray, colors: dict[int, RGB],
            alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """Blend label colours over the edited (non-zero) pixels of an RGB uint8 image."""
    lut = np.zeros((256, 3), np.float32)
    for label_id, rgb in colors.items():
        lut[label_id] = rgb
    out = np.array(image, dtype=np.uint8, copy=True)
    edited = label_map > 0  # blend only those pixels: no full-size float copy of a large image
    blended = (1 - alpha) * out[edited].astype(np.float32) + alpha * lut[label_map[edited]]
    out[edited] = np.rint(blended).astype(np.uint8)
    return out


def label_map_image(label_map: np.ndarray, colors: dict[int, RGB]) -> Image.Image:
    """A palette PNG image: pixel value = label id, displayed in the label colours (255 white)."""
    mask = Image.fromarray(np.asarray(label_map, dtype=np.uint8), "P")
    mask.putpalette(palette(colors))
    return mask


def colorized(label_map: np.ndarray, colors: dict[int, RGB]) -> Image.Image:
    """An RGB rendering of a label map (figures' tiles)."""
    return Image.fromarray(colorize(label_map, colors))


def png_bytes(image: Image.Image, compress_level: int = 6) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def legend_entries(id2label: dict[int, str], colors: dict[int, RGB], background: bool = True,
                   display: bool = False) -> list[tuple[str, RGB]]:
    """(text, colour) per label in id order; ``display`` uses the generators' full names."""
    return [(display_name(name) if display else name, colors.get(label_id, GREY))
            for label_id, name in sorted(id2label.items()) if background or label_id != BACKGROUND_ID]


def legend_strip(entries: Sequence[tuple[str, RGB]], width: int = 640, column: int = 210,
                 header: str | None = None, size: int = 12) -> Image.Image:
    """Colour swatches with their texts, as many per row as ``width`` holds (optional header line)."""
    face = font(size)
    per_row = max(1, width // column)
    row = size + 10
    top = row if header else 0
    rows = (len(entries) + per_row - 1) // per_row
    strip = Image.new("RGB", (width, top + row * rows + 6), WHITE)
    draw = ImageDraw.Draw(strip)
    if header:
        draw.text((6, 4), header, fill=BLACK, font=face)
    for n, (text, color) in enumerate(entries):
        x, y = 6 + (n % per_row) * column, top + 4 + (n // per_row) * row
        draw.rectangle([x, y + 2, x + size + 2, y + size + 4], fill=tuple(color), outline=BLACK)
        _fit_text(draw, (x + size + 8, y + 2), text, column - size - 14, face)
    return strip


def _fit_text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, room: int,
              face: ImageFont.ImageFont) -> None:
    """Draw ``text``, shortened with an ellipsis only when it would not fit in ``room`` pixels."""
    while len(text) > 1 and draw.textlength(text, font=face) > room:
        text = text[:-2] + "…"
    draw.text(xy, text, fill=BLACK, font=face)


def verdict_text(result: DetectionResult, threshold: float | None = None) -> str:
    """'verdict: EDITED (19.8% of the pixels flagged; rule: > 1%)' -- its own line, not a label's."""
    verdict = "EDITED" if result.is_edited else "not edited"
    rule = f"; rule: > {100 * threshold:g}%" if threshold is not None else ""
    return f"verdict: {verdict} ({100 * result.edited_fraction:.1f}% of the pixels flagged{rule})"


def result_legend(result: DetectionResult) -> list[tuple[str, RGB]]:
    """Legend rows of one answer: unedited share first, then each generator found, largest first."""
    colors = result_colors(result)
    ids = {name: i for i, name in result.id2label.items()}
    rows = [(f"unedited: {100 * (1 - result.edited_fraction):.1f}%", colors.get(BACKGROUND_ID, BLACK))]
    for name, info in sorted(result.generators.items(), key=lambda kv: -kv[1]["area"]):
        color = colors.get(ids.get(name, -1), EDITED_COLOR)
        rows.append((f"{name}: {100 * info['area']:.1f}% (confidence {info['confidence']:.2f})", color))
    return rows


def render_overlay(image, result: DetectionResult, alpha: float = OVERLAY_ALPHA,
                   threshold: float | None = None) -> Image.Image:
    """The image with edited regions tinted in the label palette and a legend strip below it
    (a verdict line, then the unedited share and each generator's area)."""
    from diffseg30k.detector import to_rgb_array

    pixels = to_rgb_array(image)
    blended = overlay(pixels, result.label_map, result_colors(result), alpha)
    header = verdict_text(result, threshold)
    room = int(ImageDraw.Draw(Image.new("L", (1, 1))).textlength(header, font=font(12))) + 12
    legend = legend_strip(result_legend(result), width=max(blended.shape[1], 240, room), column=240,
                          header=header)
    canvas = Image.new("RGB", (legend.width, blended.shape[0] + legend.height), WHITE)
    canvas.paste(Image.fromarray(blended), (0, 0))
    canvas.paste(legend, (0, blended.shape[0]))
    return canvas


def legend_html(id2label: dict[int, str], colors: dict[int, RGB]) -> str:
    """The demo's legend: colour swatches with label names (background is the unchanged image)."""
    items = []
    for label_id, name in sorted(id2label.items()):
        if label_id == BACKGROUND_ID:
            continue
        rgb = "rgb({},{},{})".format(*colors.get(label_id, BLACK))
        items.append(f'<span class="ds-legend-item" title="{html.escape(display_name(name))}"><span '
                     f'class="ds-swatch" style="background:{rgb}"></span>{html.escape(name)}</span>')
    return f'<div class="ds-legend">{"".join(items)}</div>'


def palette_json(id2label: dict[int, str] | None = None, task: str = "semantic") -> dict[str, list[int]]:
    """{label id: [r, g, b]} as the Hub card prints it."""
    colors = label_colors(id2label or ID2LABEL, task)
    return {str(i): list(rgb) for i, rgb in sorted(colors.items())}
