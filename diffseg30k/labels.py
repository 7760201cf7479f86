"""Label schema of DiffSeg30k: the single source of truth for ids, names, colours and editors.

Id 0 is background (unedited); ids 1-8 are the eight diffusion editors in the order of the
paper's Fig. 6 legend; 255 is ignored by every metric and loss. A dataset may override the
mapping with an ``id2label.json`` (see :func:`load_label_set`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IGNORE_INDEX = 255
BACKGROUND_ID = 0
BACKGROUND_COLOR = (0, 0, 0)
IGNORE_COLOR = (255, 255, 255)


@dataclass(frozen=True)
class Generator:
    """One diffusion editor of the benchmark and the Hub weights its adapter loads by default."""

    id: int
    name: str
    display_name: str
    color: tuple[int, int, int]
    editor_repo: str
    editor_revision: str | None = None


GENERATORS: tuple[Generator, ...] = (
    Generator(1, "sd2", "Stable Diffusion 2", (220, 20, 60),
              "stabilityai/stable-diffusion-2-inpainting"),
    Generator(2, "kolors", "Kolors", (34, 139, 34), "Kwai-Kolors/Kolors-diffusers"),
    Generator(3, "sd35", "Stable Diffusion 3.5 Medium", (255, 255, 0),
              "stabilityai/stable-diffusion-3.5-medium"),
    Generator(4, "flux", "FLUX.1", (65, 105, 225), "black-forest-labs/FLUX.1-Fill-dev"),
    Generator(5, "sdxl", "Stable Diffusion XL 1.0", (147, 112, 219),
              "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"),
    Generator(6, "glide", "GLIDE", (54, 117, 136), "openai/glide-text2im"),
    Generator(7, "hunyuan", "HunyuanDiT 1.1", (128, 128, 128),
              "Tencent-Hunyuan/HunyuanDiT-v1.1-Diffusers"),
    Generator(8, "kandinsky", "Kandinsky 2.2", (255, 0, 0),
              "kandinsky-community/kandinsky-2-2-decoder-inpaint"),
)

GENERATOR_BY_NAME: dict[str, Generator] = {g.name: g for g in GENERATORS}
GENERATOR_NAMES: tuple[str, ...] = tuple(g.name for g in GENERATORS)
NUM_CLASSES = len(GENERATORS) + 1
BINARY_NUM_CLASSES = 2

ID2LABEL: dict[int, str] = {BACKGROUND_ID: "background", **{g.id: g.name for g in GENERATORS}}
LABEL2ID: dict[str, int] = {name: i for i, name in ID2LABEL.items()}
DISPLAY_NAMES: dict[int, str] = {BACKGROUND_ID: "Background (unedited)",
                                 **{g.id: g.display_name for g in GENERATORS}}
COLORS: dict[int, tuple[int, int, int]] = {BACKGROUND_ID: BACKGROUND_COLOR,
                                           **{g.id: g.color for g in GENERATORS}}
BINARY_ID2LABEL: dict[int, str] = {0: "background", 1: "edited"}
#: "edited" is white: no generator's colour, so a binary map never reads as an attribution.
EDITED_COLOR = (255, 255, 255)
BINARY_COLORS: dict[int, tuple[int, int, int]] = {0: BACKGROUND_COLOR, 1: EDITED_COLOR}
TASKS = ("semantic", "binary")


def palette(colors: dict[int, tuple[int, int, int]] | None = None) -> list[int]:
    """A 768-entry PIL palette: label colours, 255 = white (ignore), the rest black."""
    colors = COLORS if colors is None else colors
    flat = [0] * 768
    for label_id, rgb in {**colors, IGNORE_INDEX: IGNORE_COLOR}.items():
        flat[3 * label_id: 3 * label_id + 3] = list(rgb)
    return flat


#: The binary mapping as a PIL ``Image.point`` table: 0 stays 0, every id 1..254 becomes 1, 255 stays.
BINARY_LUT = [0] + [1] * (IGNORE_INDEX - 1) + [IGNORE_INDEX] * (256 - IGNORE_INDEX)


def to_binary(mask: np.ndarray) -> np.ndarray:
    """Map a semantic label map to the binary task: every id > 0 becomes 1; 255 stays ignored."""
    mask = np.asarray(mask)
    out = (mask > 0).astype(np.uint8)
    out[mask == IGNORE_INDEX] = IGNORE_INDEX
    return out


def map_for_task(mask: np.ndarray, task: str) -> np.ndarray:
    """Return the label map for ``task`` ('semantic' keeps ids, 'binary' collapses them)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    return np.asarray(mask) if task == "semantic" else to_binary(mask)


def colorize(mask: np.ndarray, colors: dict[int, tuple[int, int, int]] | None = None) -> np.ndarray:
    """An RGB (H, W, 3) uint8 rendering of a label map in the paper's palette."""
    lut = np.asarray(palette(colors), dtype=np.uint8).reshape(256, 3)
    return lut[np.asarray(mask, dtype=np.uint8)]


def name_color(name: str) -> tuple[int, int, int]:
    """A label name's colour: the paper palette for DiffSeg30k's names, else a fixed hash colour."""
    generator = GENERATOR_BY_NAME.get(name)
    if generator is not None:
        return generator.color
    if name == ID2LABEL[BACKGROUND_ID]:
        return BACKGROUND_COLOR
    digest = hashlib.sha256(name.encode()).digest()
    return (digest[0], digest[1], digest[2])


def label_colors(id2label: dict[int, str], task: str = "semantic") -> dict[int, tuple[int, int, int]]:
    """The palette of a label set -- the one resolver behind every overlay, legend, figure and card.

    Colours follow the *names* (``{1: "flux"}`` is royal blue wherever flux sits), id 0 is black,
    unknown names get a deterministic colour; a binary detector uses :data:`BINARY_COLORS`.
    """
    if task == "binary":
        return {int(i): BINARY_COLORS.get(int(i), EDITED_COLOR) for i in id2label}
    return {int(i): BACKGROUND_COLOR if int(i) == BACKGROUND_ID else name_color(str(n))
            for i, n in id2label.items()}


def display_name(name: str) -> str:
    """'FLUX.1' for 'flux', 'Background (unedited)' for 'background', the name itself otherwise."""
    generator = GENERATOR_BY_NAME.get(name)
    if generator is not None:
        return generator.display_name
    return DISPLAY_NAMES[BACKGROUND_ID] if name == ID2LABEL[BACKGROUND_ID] else name


@dataclass(frozen=True)
class LabelSet:
    """An id -> name mapping with colours; the default is DiffSeg30k's own."""

    id2label: dict[int, str] = field(default_factory=lambda: dict(ID2LABEL))
    colors: dict[int, tuple[int, int, int]] = field(default_factory=lambda: dict(COLORS))

    @property
    def num_classes(self) -> int:
        return max(self.id2label) + 1

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in self.id2label.items()}

    def to_json(self) -> str:
        return json.dumps({str(i): n for i, n in sorted(self.id2label.items())}, indent=2)


def load_label_set(path: str | Path | None = None) -> LabelSet:
    """Read ``id2label.json`` (a file, or a folder holding one); the default set when absent."""
    if path is None:
        return LabelSet()
    path = Path(path)
    if path.is_dir():
        path = path / "id2label.json"
        if not path.exists():
            return LabelSet()
    try:
        raw = json.loads(path.read_text())
        id2label = {int(k): str(v) for k, v in raw.items()}
    except (OSError, ValueError, AttributeError) as err:
        raise ValueError(f"{path}: not a valid id2label.json ({err})") from err
    if 0 not in id2label or any(not 0 <= i < IGNORE_INDEX for i in id2label):
        raise ValueError(f"{path}: ids must include 0 (background) and lie in 0..254")
    return LabelSet(id2label=id2label, colors=label_colors(id2label))
