"""Tiny fixtures in the IML community's layouts (ManiDataset, JsonDataset, CocoGlide, Hub parquet)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = (32, 24)  # width, height


def image(seed: int, size: tuple[int, int] = SIZE) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def region(seed: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A 0/1 edited region (a rectangle placed by ``seed``)."""
    mask = np.zeros((size[1], size[0]), np.uint8)
    top, left = seed % 8, (3 * seed) % 12
    mask[top:top + 10, left:left + 14] = 1
    return mask


def mask_image(seed: int, size: tuple[int, int] = SIZE, mode: str = "L") -> Image.Image:
    grey = Image.fromarray(region(seed, size) * 255, "L")
    return grey.convert(mode)


def encoded(picture: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def write_mani(root: Path, num: int = 4, suffix: str = "_gt", jpeg_masks: bool = True) -> Path:
    """``root/Tp/im<k>.jpg`` + ``root/Gt/im<k><suffix>.jpg|png`` (JPEG masks: ringing around 0/255)."""
    (root / "Tp").mkdir(parents=True)
    (root / "Gt").mkdir()
    for k in range(num):
        image(k).save(root / "Tp" / f"im{k}.jpg", quality=92)
        if jpeg_masks and k % 2:
            mask_image(k, mode="RGB").save(root / "Gt" / f"im{k}{suffix}.jpg", quality=75)
        else:
            mask_image(k).save(root / "Gt" / f"im{k}{suffix}.png")
    return root


def write_json_dataset(root: Path, num: int = 4) -> Path:
    """``root/list.json`` naming ``Tp/``/``Gt/`` files, every other image authentic (``"Negative"``)."""
    (root / "Tp").mkdir(parents=True)
    (root / "Gt").mkdir()
    items = []
    for k in range(num):
        image(10 + k).save(root / "Tp" / f"j{k}.png")
        if k % 2:
            items.append([f"Tp/j{k}.png", "Negative"])
        else:
            mask_image(k).save(root / "Gt" / f"j{k}.png")
            items.append([f"./Tp/j{k}.png", f"Gt/j{k}.png"])
    (root / "list.json").write_text(json.dumps(items))
    return root / "list.json"


def write_cocoglide(root: Path, num: int = 3) -> Path:
    """TruFor's CocoGlide layout: ``real/``, ``fake/``, ``mask/`` and ``table.csv``."""
    for sub in ("real", "fake", "mask"):
        (root / sub).mkdir(parents=True)
    lines = ["\ufeffreal,fake,mask,prompt"]
    for k in range(num):
        coco = 1000 + k
        image(20 + k, (24, 24)).save(root / "real" / f"dog_{coco}.png")
        image(30 + k, (24, 24)).save(root / "fake" / f"glide_inpainting_val2017_{coco}_up.png")
        mask_image(k, (24, 24)).save(root / "mask" / f"dog_{coco}_mask.png")
        lines.append(f"real/dog_{coco}.png,fake/glide_inpainting_val2017_{coco}_up.png,mask/dog_{coco}_mask.png,"
                     f"a dog {k}")
    (root / "table.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def write_parquet(path: Path, rows: list[dict]) -> Path:
    """A parquet shard whose image-like columns are ``{"bytes", "path"}`` structs (the Hub's form)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {}
    for name in rows[0]:
        values = [r[name] for r in rows]
        if any(isinstance(v, bytes) for v in values):
            columns[name] = pa.array([None if v is None else {"bytes": v, "path": None} for v in values],
                                     pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
        else:
            columns[name] = pa.array(values)
    pq.write_table(pa.table(columns), path, row_group_size=2)
    return path


def hub_rows(layout: str, num: int = 4) -> list[dict]:
    """Rows in a Hub set's own columns: real (no mask), edited (0/255 mask) and, for SID, full synthetic."""
    rows = []
    for k in range(num):
        label = [0, 1, 2, 1][k % 4] if layout == "sid" else int(k % 2 == 1)
        picture = encoded(image(40 + k), "PNG")
        mask = None
        if (layout == "sid" and label == 2) or (layout != "sid" and label == 1):
            mask = encoded(mask_image(k), "PNG")
        if layout == "opensdi":
            key = f"{'partial' if label else 'real'}/img{k}.png"
            rows.append({"key": key, "image": picture, "mask": mask, "label": label})
        elif layout == "cocoglide":
            rows.append({"key": f"fake/x_{k}.png" if label else f"real/x_{k}.png", "image": picture,
                         "mask": mask, "label": label, "prompt": "a dog" if label else None})
        elif layout == "sid":
            rows.append({"img_id": f"id{k}", "image": picture, "mask": mask, "width": SIZE[0],
                         "height": SIZE[1], "label": label})
        elif layout == "magicbrush":
            rows.append({"img_id": f"{500 + k}", "turn_index": 1, "source_img": encoded(image(50 + k), "PNG"),
                         "mask_img": encoded(mask_image(k), "PNG"), "instruction": "add a hat",
                         "target_img": picture})
    return rows
