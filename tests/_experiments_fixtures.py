"""Shared fixtures of the experiments tests: a tiny generation-style release with metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from diffseg30k.data.synthetic import synthetic_pair
from diffseg30k.labels import ID2LABEL, LABEL2ID

EDIT_TYPES = ("attribute", "addition", "removal")


def write_generation_release(root: Path, num: int = 20, size: int = 48, unedited_every: int = 4) -> Path:
    """``num`` synthetic pairs in the generation layout (flat pairs + ``metadata.jsonl``)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(num):
        sample_id = f"{k + 1:08d}"
        edited = not (unedited_every and k % unedited_every == unedited_every - 1)
        image, mask = synthetic_pair(1000 + k, (size, size), edited=edited)
        image.save(root / f"{sample_id}.image.png")
        Image.fromarray(mask, "L").save(root / f"{sample_id}.mask.png")
        generators = [ID2LABEL[int(i)] for i in np.unique(mask) if i > 0]
        turns = [{"generator": g, "edit_type": EDIT_TYPES[(k + n) % 3], "prompt": f"a {g} edit",
                  "mask_area": float((mask == LABEL2ID[g]).mean()), "seed": k, "quality": 4.0}
                 for n, g in enumerate(generators)]
        rows.append({"id": sample_id, "base": "real" if k % 2 else "ai", "turns": turns})
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root
