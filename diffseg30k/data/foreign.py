"""Readers for the image-manipulation-localization (IML) community's dataset layouts.

These datasets are **binary-only**: their masks say edited / unedited, never which generator, so they
convert with the two-class label set (0 background, 1 edited) and ``load_benchmark`` refuses their
semantic task. Layouts:

- ``mani``: IMDL-BenCo's ManiDataset, a folder holding ``Tp/`` (images, often JPEG) and ``Gt/`` (masks);
  pairs match by name, the mask's name possibly adding a suffix after ``_``/``-``/``.`` (``x.jpg`` +
  ``x_gt.png``); IMDL-BenCo itself pairs the two sorted lists by position, which silently mispairs
  when a file is missing, so unpaired names are errors here;
- ``json``: IMDL-BenCo's JsonDataset, a JSON list of ``[image, mask]`` paths, ``"Negative"`` for an
  authentic image (all-background mask); paths are resolved against the JSON's own folder and must stay
  inside its folder tree;
- ``cocoglide``: TruFor's CocoGlide archive, ``real/``, ``fake/``, ``mask/`` and ``table.csv``
  (columns ``real, fake, mask, prompt``);
- ``zip``: a zip archive holding a ManiDataset or CocoGlide folder (``CocoGlide.zip`` as downloaded;
  :mod:`diffseg30k.data.foreign_zip`);
- parquet layouts of Hub-hosted sets (:class:`ParquetLayout`: which column holds image, mask, label).

Masks are 0/255 images (L, RGB, P, 16-bit, possibly JPEG-compressed): a pixel is **edited when the mean
of its colour channels exceeds 127.5** (IMDL-BenCo's rule; for a grey mask: value >= 128, i.e. above
:data:`BINARY_THRESHOLD`), so JPEG ringing around 0 and 255 falls on the right side. A mask with
transparency marks the edited region by alpha < 128 (the DALL-E 2 inpainting-mask convention).
"""

from __future__ import annotations

import collections
import csv
import io
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from diffseg30k.data.release import (
    PairEntry,
    ReleaseError,
    ScanResult,
    _read_file,
    normalise_metadata,
    split_from_name,
)
from diffseg30k.io import IMAGE_SUFFIXES
from diffseg30k.labels import BINARY_COLORS, BINARY_ID2LABEL, LabelSet

#: Grey level (8-bit) above which a mask pixel counts as edited: a grey value >= 128, a channel mean
#: > 127.5 (channel sum >= 383), as IMDL-BenCo binarises.
BINARY_THRESHOLD = 127
#: The label set of every binary-only dataset.
BINARY_LABELS = LabelSet(id2label=dict(BINARY_ID2LABEL), colors=dict(BINARY_COLORS))
NEGATIVE = "Negative"
DEFAULT_SPLIT = "test"
_IMAGE_FILES = IMAGE_SUFFIXES  # .png .jpg .jpeg .webp .bmp .tif .tiff


def is_binary_labels(id2label: dict[int, str]) -> bool:
    """Whether a label mapping is the binary-only one (no generator labels)."""
    return {int(k): v for k, v in id2label.items()} == BINARY_ID2LABEL


# -------------------------------------------------------------------------------------------- masks
def binary_mask_png(data: bytes, label: str) -> bytes:
    """A 0/255 (or any grey/colour) mask as an L PNG label map of 0 (unedited) and 1 (edited)."""
    from diffseg30k.io import ImageError, open_image

    try:
        image = open_image(data, name=label)
    except ImageError as err:
        raise ReleaseError(label, str(err).removeprefix(f"{label}: ")) from err
    return _png(binarise(image))


def binarise(image: Image.Image) -> Image.Image:
    """Edited (1) where the mean of the channels exceeds 127.5 (grey >= 128), else 0.

    A mask with real transparency (some alpha < 255) marks the edited region by transparency instead
    (DALL-E 2's inpainting-mask convention, used by MagicBrush): edited where alpha < 128.
    """
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        if alpha.getextrema()[0] < 255:
            return alpha.point([1] * 128 + [0] * 128)
    if image.mode == "1":
        image = image.convert("L")
    if image.mode == "L":
        return image.point([0] * (BINARY_THRESHOLD + 1) + [1] * (255 - BINARY_THRESHOLD))
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, np.float64)
        scale = 255.0 / 65535.0 if image.mode.startswith("I") else 255.0
        grey = values * scale if values.max(initial=0) > 255 or image.mode == "F" else values
        return Image.fromarray((grey > BINARY_THRESHOLD + 0.5).astype(np.uint8), "L")
    rgb = np.asarray(image.convert("RGB"))
    total = rgb[..., 0].astype(np.uint16) + rgb[..., 1] + rgb[..., 2]  # (faster than a sum over axis 2)
    return Image.fromarray((total > 3 * BINARY_THRESHOLD + 1).astype(np.uint8), "L")


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _full_mask_png(image_bytes: bytes, label: str) -> bytes:
    """All pixels edited (a fully generated image), at the image's size."""
    from diffseg30k.io import open_image

    size = open_image(image_bytes, name=label, load=False).size
    return _png(Image.new("L", size, 1))


def _file_pair(image: Path, mask: Path | None) -> Callable[[], tuple[bytes, bytes]]:
    """A PairEntry reader: image bytes and the binarised mask (empty bytes: all background)."""
    def read() -> tuple[bytes, bytes]:
        return _read_file(image), b"" if mask is None else binary_mask_png(_read_file(mask), str(mask))
    return read


def _entry(sample_id: str, split: str, image: Path, mask: Path | None, origin: Path,
           metadata: dict[str, Any] | None = None) -> PairEntry:
    return PairEntry(sample_id, split, str(image), "(authentic: all-background mask)" if mask is None
                     else str(mask), _file_pair(image, mask), metadata, str(origin))


# -------------------------------------------------------------------------------------------- ManiDataset
def _child(folder: Path, name: str) -> Path | None:
    for child in (folder / name, folder / name.lower(), folder / name.upper()):
        if child.is_dir():
            return child
    return None


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def mask_key(name: str, image_stems: set[str] | frozenset[str]) -> str | None:
    """The image a mask's file name stands for: its stem, or its longest prefix ending before a ``_``,
    ``-`` or ``.`` that is an image's stem (``x_gt.png``, ``x_edgemask.jpg`` -> ``x``); else None."""
    stem = PurePosixPath(name).stem
    if stem in image_stems:
        return stem
    for cut in range(len(stem) - 1, 0, -1):
        if stem[cut] in "_-." and stem[:cut] in image_stems:
            return stem[:cut]
    return None


def _image_files(folder: Path, result: ScanResult) -> list[Path]:
    """The image files of a folder; anything else is a problem naming the file."""
    files, root = [], folder.resolve()
    for file in _files(folder):
        if not file.resolve().is_relative_to(root):
            result.problems.append(ReleaseError(str(file), f"a link to {file.resolve()}, outside {folder}"))
        elif file.suffix.lower() in _IMAGE_FILES:
            files.append(file)
        else:
            result.problems.append(ReleaseError(str(file), f"not an image file (expected "
                                                f"{', '.join(_IMAGE_FILES)})"))
    return files


def scan_mani(folder: Path, result: ScanResult) -> None:
    """IMDL-BenCo ManiDataset: ``Tp/`` images + ``Gt/`` masks, paired by name (the mask's name may add a
    suffix: ``x.jpg`` + ``x_gt.png``)."""
    tp, gt = _child(folder, "Tp"), _child(folder, "Gt")
    if tp is None or gt is None:
        present, missing = ("Tp", "Gt") if tp is not None else ("Gt", "Tp")
        raise ReleaseError(str(folder), f"has {present}/ but no {missing}/ folder (ManiDataset layout: Tp/ "
                           "images + Gt/ masks of the same names)")
    split = split_from_name(folder.name) or DEFAULT_SPLIT
    images = _image_files(tp, result)
    stems = frozenset(p.stem for p in images)
    masks: dict[str, Path] = {}
    for mask in _image_files(gt, result):
        key = mask_key(mask.name, stems)
        if key is None:
            result.problems.append(ReleaseError(str(mask), f"unpaired: no image in {tp} named "
                                                f"{PurePosixPath(mask.name).stem}.* or a prefix of it"))
        elif key in masks:
            result.problems.append(ReleaseError(str(mask), f"second mask for image {key!r} (first: "
                                                f"{masks[key]})"))
        else:
            masks[key] = mask
    for image in images:
        if image.stem not in masks:
            result.problems.append(ReleaseError(str(image), f"unpaired: no mask in {gt} named "
                                                f"{image.stem}.* or {image.stem}_<suffix>.* (e.g. _gt)"))
        else:
            result.entries.append(_entry(image.stem, split, image, masks[image.stem], folder))


# -------------------------------------------------------------------------------------------- JsonDataset
def _inside(root: Path, value: Any, where: str) -> Path:
    """``value`` resolved against ``root``; must be an existing file inside ``root``'s tree."""
    if not isinstance(value, str) or not value:
        raise ReleaseError(where, f"expected a path string, got {value!r}")
    value = value.replace("\\", "/") if os.sep == "/" else value  # lists written on Windows
    path = Path(value) if os.path.isabs(value) else root / value
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ReleaseError(where, f"path {value!r} lies outside the JSON's folder tree ({root})")
    if not resolved.is_file():
        raise ReleaseError(where, f"missing file {value!r} ({resolved})")
    return resolved


def json_items(path: Path) -> list[Any]:
    """The entries of an IMDL-BenCo JSON list, checked to be a list."""
    try:
        items = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ReleaseError(str(path), f"not a readable JSON list ({err})") from err
    if not isinstance(items, list) or not items:
        raise ReleaseError(str(path), "expected a non-empty JSON list of [image, mask] pairs")
    return items


def scan_json(path: Path, result: ScanResult) -> None:
    """IMDL-BenCo JsonDataset: ``[[image, mask | "Negative"], ...]`` relative to the JSON's folder."""
    root = path.parent
    split = split_from_name(path.stem) or DEFAULT_SPLIT
    pairs: list[tuple[Path, Path | None]] = []
    for index, item in enumerate(json_items(path)):
        where = f"{path}[{index}]"
        try:
            if not isinstance(item, list | tuple) or len(item) != 2:
                raise ReleaseError(where, f"expected an [image, mask] pair, got {item!r}")
            image = _inside(root, item[0], f"{where} image")
            mask = None if item[1] == NEGATIVE else _inside(root, item[1], f"{where} mask")
        except ReleaseError as err:
            result.problems.append(err)
            continue
        pairs.append((image, mask))
    stems = collections.Counter(image.stem for image, _ in pairs)
    for image, mask in pairs:  # a name several sub-datasets share gets its path as id (CASIA/Tp/1 -> ...)
        sample_id = image.stem if stems[image.stem] == 1 else _safe_id(
            image.relative_to(root.resolve()).as_posix())
        result.entries.append(_entry(sample_id, split, image, mask, path))


def json_files(path: Path) -> list[Path]:
    """The JSON file and every existing file it names (for cache fingerprints)."""
    files = [path]
    try:
        items = json_items(path)
    except ReleaseError:
        return files
    for item in items:
        for value in item if isinstance(item, list) else []:
            if isinstance(value, str) and value != NEGATIVE:
                candidate = Path(value) if os.path.isabs(value) else path.parent / value
                if candidate.is_file():
                    files.append(candidate)
    return files


# -------------------------------------------------------------------------------------------- CocoGlide
_COCO_ID = re.compile(r"_(\d+)(?:_up|_mask)?$")


def _cocoglide_rows(folder: Path) -> list[dict[str, str]]:
    table = folder / "table.csv"
    if table.is_file():
        with open(table, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
        missing = {"real", "fake", "mask"} - set(rows[0] if rows else {})
        if missing:
            raise ReleaseError(str(table), f"no {', '.join(sorted(missing))} column (expected real, fake, "
                               "mask, prompt)")
        return rows
    by_id: dict[str, dict[str, str]] = {}
    for kind in ("real", "fake", "mask"):
        for file in _files(folder / kind) if (folder / kind).is_dir() else []:
            match = _COCO_ID.search(file.stem)
            if match:
                by_id.setdefault(match[1], {})[kind] = f"{kind}/{file.name}"
    return [row for _, row in sorted(by_id.items())]


def scan_cocoglide(folder: Path, result: ScanResult) -> None:
    """TruFor's CocoGlide: each table.csv row gives an inpainted image, its mask, and the real image."""
    split = split_from_name(folder.name) or DEFAULT_SPLIT
    for number, row in enumerate(_cocoglide_rows(folder), 1):
        where = f"{folder / 'table.csv'} row {number}"
        try:
            fake = _inside(folder, row.get("fake"), f"{where} fake")
            mask = _inside(folder, row.get("mask"), f"{where} mask")
        except ReleaseError as err:
            result.problems.append(err)
            continue
        turn = {"generator": "glide", "edit_type": "inpainting", "prompt": row.get("prompt") or None}
        meta = normalise_metadata({"base": "real", "base_source": "coco val2017", "turns": [turn]}, where)
        result.entries.append(_entry(fake.stem, split, fake, mask, folder, meta))
        if row.get("real"):
            try:
                real = _inside(folder, row["real"], f"{where} real")
            except ReleaseError as err:
                result.problems.append(err)
                continue
            meta = normalise_metadata({"base": "real", "base_source": "coco val2017", "turns": []}, where)
            result.entries.append(_entry(real.stem, split, real, None, folder, meta))


# -------------------------------------------------------------------------------------------- parquet
@dataclass(frozen=True)
class ParquetLayout:
    """A Hub-hosted binary set in parquet: which columns hold what.

    A row without a mask is authentic (all background) when its label is in ``real_labels`` (or there
    is no label column), else fully generated (every pixel edited).
    """

    image: str = "image"
    mask: str = "mask"
    label: str | None = "label"
    id_columns: tuple[str, ...] = ("key",)
    real_labels: tuple[int, ...] = (0,)

    def scan(self, path: Path, result: ScanResult) -> None:
        for file in sorted(path.rglob("*.parquet")) if path.is_dir() else [path]:
            self._scan_file(file, result)

    def _scan_file(self, file: Path, result: ScanResult) -> None:
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(file)
        except Exception as err:  # pyarrow raises several unrelated types for corrupt files
            raise ReleaseError(str(file), f"not a readable parquet file ({err})") from err
        names = parquet.schema_arrow.names
        missing = [c for c in (self.image, self.mask) if c not in names]
        if missing:
            raise ReleaseError(str(file), f"no {' or '.join(missing)} column (columns: {', '.join(names)})")
        split = split_from_name(file.name) or re.split(r"[-_.]", file.name)[0] or DEFAULT_SPLIT
        ids = [c for c in self.id_columns if c in names]
        label = self.label if self.label in names else None
        for group in range(parquet.num_row_groups):
            rows = parquet.read_row_group(group, columns=[*ids, *([label] if label else [])]).to_pylist()
            for index, row in enumerate(rows):
                where = f"{file}[row group {group}, row {index}]"
                key = "_".join(str(row[c]) for c in ids) if ids else f"{file.stem}-{group:05d}-{index:06d}"
                real = label is None or row[label] in self.real_labels
                result.entries.append(PairEntry(
                    _safe_id(key), split, f"{where} {self.image}", f"{where} {self.mask}",
                    self._reader(file, group, index, where, real), None, str(file)))

    def _reader(self, file: Path, group: int, index: int, where: str, real: bool
                ) -> Callable[[], tuple[bytes, bytes]]:
        def read() -> tuple[bytes, bytes]:
            row = _row_group(file, group, (self.image, self.mask))
            row = {name: values[index] for name, values in row.items()}
            image = _cell(row[self.image])
            if image is None:
                raise ReleaseError(f"{where} {self.image}", "no embedded image bytes")
            mask = _cell(row[self.mask])
            if mask is None:
                return image, b"" if real else _full_mask_png(image, f"{where} {self.image}")
            return image, binary_mask_png(mask, f"{where} {self.mask}")
        return read


_GroupKey = tuple[str, int, tuple[str, ...]]
_GROUPS: collections.OrderedDict[_GroupKey, dict[str, list[Any]]] = collections.OrderedDict()
_GROUPS_LOCK = threading.Lock()


def _row_group(file: Path, group: int, columns: tuple[str, ...]) -> dict[str, list[Any]]:
    """One row group's columns; the two used last stay cached (decoding threads share them)."""
    import pyarrow.parquet as pq

    key = (str(file), group, columns)
    with _GROUPS_LOCK:
        if key in _GROUPS:
            _GROUPS.move_to_end(key)
        else:
            while len(_GROUPS) >= 2:
                _GROUPS.popitem(last=False)
            _GROUPS[key] = pq.ParquetFile(file).read_row_group(group, columns=list(columns)).to_pydict()
        return _GROUPS[key]


def _safe_id(key: str) -> str:
    """A sample id from a source key (``partial/abc.png`` -> ``partial_abc``)."""
    stem = re.sub(r"\.(png|jpe?g|webp|bmp|tiff?)$", "", key.strip(), flags=re.IGNORECASE)
    return re.sub(r"[^\w.-]+", "_", stem).strip("_") or "item"


def _cell(value: Any) -> bytes | None:
    if isinstance(value, dict):
        value = value.get("bytes")
    return bytes(value) if isinstance(value, bytes | bytearray) and value else None


# -------------------------------------------------------------------------------------------- detection
LAYOUTS: dict[str, Callable[[Path, ScanResult], None]] = {
    "mani": scan_mani, "json": scan_json, "cocoglide": scan_cocoglide,
}


def register_layout(name: str, scan: Callable[[Path, ScanResult], None]) -> None:
    """Add a layout reader (presets register their parquet layouts here)."""
    if name in LAYOUTS and LAYOUTS[name] is not scan:
        raise ValueError(f"layout {name!r} is already registered")
    LAYOUTS[name] = scan


def detect_layout(path: Path) -> str | None:
    """The IML layout of a source, or None for DiffSeg30k's own layouts."""
    if path.is_file() and path.suffix.lower() == ".json":
        return "json"
    if path.is_file() and path.suffix.lower() == ".zip":  # e.g. CocoGlide.zip as downloaded
        from diffseg30k.data.foreign_zip import zip_layout

        return "zip" if zip_layout(path) else None
    if not path.is_dir():
        return None
    if _child(path, "Tp") is not None or _child(path, "Gt") is not None:
        return "mani"
    if (path / "fake").is_dir() and (path / "mask").is_dir():
        return "cocoglide"
    return None


def scan_foreign(path: Path, result: ScanResult, layout: str | None = None) -> bool:
    """Scan ``path`` in ``layout`` (detected when None) into ``result``; False when not an IML layout."""
    layout = layout or detect_layout(path)
    if layout is None:
        return False
    if layout == "zip":
        import diffseg30k.data.foreign_zip  # noqa: F401  (registers the layout)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(sorted(LAYOUTS))}")
    before = len(result.entries)
    try:
        if not path.exists():
            raise ReleaseError(str(path), "no such file or folder")
        LAYOUTS[layout](path, result)
    except ReleaseError as err:
        result.problems.append(err)
        return True
    if len(result.entries) == before and not result.problems:
        result.problems.append(ReleaseError(str(path), f"empty source: no image/mask pairs in the {layout} "
                                            "layout"))
    return True


def layout_of(sources: list[Any], layout: str | None = None) -> str | None:
    """The IML layout of a source set (``layout`` when given), or None for DiffSeg30k sources."""
    if layout:
        return layout
    found = {detect_layout(Path(s)) for s in sources}
    if found == {None}:
        return None
    if None in found or len(found) > 1:
        raise ValueError("cannot mix DiffSeg30k sources and IML layouts (or several IML layouts) in one "
                         f"conversion: {', '.join(map(str, sources))}")
    return found.pop()


def fingerprint_files(path: Path) -> list[Path] | None:
    """Files a source's content depends on beyond itself (a JSON list's referenced files), or None."""
    return json_files(path) if path.is_file() and path.suffix.lower() == ".json" else None


def binary_only_setup(sources: list[Any], label_set: LabelSet | None, layout: str | None,
                      preset: str | None) -> tuple[LabelSet | None, str | None]:
    """(label set, layout) of a conversion: an IML layout (given, detected, or the preset's Hub layout)
    means the binary label set; other label sets are refused for it."""
    if layout is None and preset is not None:
        from diffseg30k.data.presets import get_preset

        layout = layout_of(sources) or get_preset(preset).layout
    else:
        layout = layout_of(sources, layout)
    if layout is None:
        return label_set, None
    if label_set is not None and not is_binary_labels(label_set.id2label):
        raise ValueError(f"{layout} layout: the dataset is binary-only (0 background, 1 edited); a label "
                         "mapping with generator labels does not apply")
    return BINARY_LABELS, layout
