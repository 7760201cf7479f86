"""The cached mini release: the embedded default data of ``benchmark`` (the ``mini`` profile,
:mod:`diffseg30k.generation.profiles`: bundled photos, stand-in editors with trained components)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from diffseg30k.generation.pipeline import GenerationConfig, generate
from diffseg30k.generation.profiles import MINI

MINI_SIZE = MINI.size
#: Share of real bases in the benchmark's mini data (the generation default is 0.5). An AI base carries
#: its family's whole-image trace yet is labelled background; at 0.5, 62 % of the edited training
#: images sat on one and FCN-8s+SRM plateaued at binary mIoU ~0.42 (250-1500 steps); at 0.85 it
#: reached 0.60 by step 250 (tests/benchmarks/bench_quick_learning.py; the validation split changes too).
MINI_REAL_FRACTION = 0.85


def build_mini_release(num: int = 200, seed: int = 0, size: int = MINI_SIZE, editors: list[str] | None = None,
                       progress: bool = False, real_fraction: float = MINI_REAL_FRACTION,
                       workers: int = 1) -> Path:
    """Generate (once, with ``workers`` local processes) and return the cached mini release folder for
    these arguments.

    The folder is ``cache_dir("mini", ...)``; a complete one (``metadata.jsonl`` present) is reused.
    An interrupted build resumes where it stopped.
    """
    from diffseg30k.generation.editors.registry import installed_generators
    from diffseg30k.io import cache_dir

    editors = list(editors or installed_generators())
    key = f"n{num}-s{seed}-px{size}-rf{real_fraction:g}-{'+'.join(editors)}"
    out = cache_dir("mini") / key
    config = GenerationConfig(out=out, profile="mini", num_images=num, seed=seed, size=size,
                              editors=tuple(editors), progress=progress, real_fraction=real_fraction,
                              workers=workers, device="cpu" if workers > 1 else None)  # CPU workers
    recorded = out / "generation.json"
    if recorded.exists() and json.loads(recorded.read_text(encoding="utf-8")) != config.fingerprint():
        shutil.rmtree(out)  # built by another toolkit version: rebuild rather than mix
        out.mkdir(parents=True)
    if (out / "metadata.jsonl").exists() and recorded.exists():
        return out
    generate(config)
    return out


def read_metadata(root: str | Path) -> list[dict]:
    """The rows of a generated release's ``metadata.jsonl``."""
    with open(Path(root) / "metadata.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
