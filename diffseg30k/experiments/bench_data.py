"""The benchmark's data: the mini dataset (generated, with unedited negatives, converted, cached) or a
given source, its fingerprint, and the splits and subsets the steps evaluate on."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diffseg30k.experiments.config import BenchmarkConfig
from diffseg30k.experiments.plan import PlanContext, StepFailed
from diffseg30k.io import cache_dir, sha256_file


def generate_mini(num_images: int, seed: int, size: int | None = None, workers: int = 1) -> Path:
    """The mini dataset's raw generation output (cached and resumable; the generation mini profile),
    made by ``workers`` local processes."""
    try:
        from diffseg30k.generation.mini import MINI_SIZE, build_mini_release
    except ImportError as err:
        raise StepFailed("the mini dataset needs the generation pipeline (diffseg30k.generation.mini), "
                         f"which is not available: {err}. Pass --dataset to use existing data.") from err
    return build_mini_release(num=num_images, seed=seed, size=size or MINI_SIZE, progress=True,
                              workers=workers)


def write_negatives(out: Path, count: int, seed: int, size: int) -> Path:
    """Unedited real photos (all-zero masks) in the official layout, 3:1 train/validation.

    The paper trains with unedited real COCO images as negatives; the mini data's real bases are
    scikit-image's photos, so its negatives are fresh crops of them (same distribution as the bases).
    """
    import io as _io

    import numpy as np
    from PIL import Image

    from diffseg30k.generation.composite import fit_square
    from diffseg30k.generation.profiles import MINI
    from diffseg30k.io import atomic_dir

    if (out / "done").is_file():
        return out
    rng = np.random.default_rng([seed, 77])
    blank = _io.BytesIO()
    Image.fromarray(np.zeros((size, size), np.uint8), "L").save(blank, format="PNG")
    with atomic_dir(out, overwrite=True) as tmp:
        for n in range(count):
            split = "val_copy" if n % 4 == 3 else "train_copy"
            photo = MINI.random_photo(rng)
            stem = tmp / split / f"{90_000_001 + n:08d}"
            stem.parent.mkdir(exist_ok=True)
            fit_square(photo, size).save(f"{stem}.image.png")
            Path(f"{stem}.mask.png").write_bytes(blank.getvalue())
        (tmp / "done").write_text("ok\n")
    return out


def step_data(ctx: PlanContext) -> dict[str, Any]:
    from diffseg30k.data.load import load_benchmark, resolve_source

    cfg: BenchmarkConfig = ctx.config
    if cfg.dataset is None:
        from diffseg30k.data.load import converted_cache

        raw = generate_mini(cfg.mini_images, cfg.seed, cfg.mini_size, cfg.resolved_generation_workers())
        size = json.loads((raw / "generation.json").read_text()).get("size") or cfg.mini_size or 128
        negatives = write_negatives(cache_dir("benchmark") / f"negatives-v2-n{cfg.mini_negatives}"
                                    f"-seed{cfg.seed}-px{size}", cfg.mini_negatives, cfg.seed, int(size))
        source = str(raw)
        origin = (f"mini profile: {cfg.mini_images} generated images + {cfg.mini_negatives} unedited photos, "
                  f"seed {cfg.seed}")
        path = converted_cache([raw, negatives])
    else:
        source, origin = cfg.dataset, cfg.dataset
        path = resolve_source(source, cfg.revision)
    splits: dict[str, Any] = {}
    for split in ("train", "validation", "test"):
        try:
            table = load_benchmark(path, split=split, revision=cfg.revision)
        except (ValueError, KeyError):
            continue
        info: dict[str, Any] = {"rows": len(table), "columns": list(table.column_names)}
        if "edited_fraction" in table.column_names:
            info["unedited"] = int(sum(1 for f in table["edited_fraction"] if not f))
        if "base" in table.column_names:
            bases = [b for b in table["base"] if b]
            info["bases"] = {b: bases.count(b) for b in sorted(set(bases))}
        splits[split] = info
    for needed in ("train", "validation"):
        if needed not in splits:
            raise StepFailed(f"dataset {source}: no {needed!r} split (found {sorted(splits)})")
    revision = cfg.revision
    if cfg.dataset is not None and not Path(cfg.dataset).exists() and not os.environ.get("HF_HUB_OFFLINE"):
        try:  # the exact Hub commit the numbers come from
            from huggingface_hub import HfApi

            revision = HfApi().dataset_info(cfg.dataset, revision=cfg.revision).sha
        except Exception as err:  # noqa: BLE001 - recorded, never fatal
            ctx.log(f"  could not resolve the dataset revision: {err}")
    conversion = Path(path) / "conversion.json"
    return {"source": source, "origin": origin, "path": str(path), "revision": revision,
            "fingerprint": _dataset_fingerprint(Path(path)), "splits": splits,
            "conversion": json.loads(conversion.read_text()) if conversion.is_file() else None}


def _dataset_fingerprint(path: Path) -> str:
    """sha256 over the parquet shards' own sha256 (names included): identifies the exact data."""
    import hashlib

    digest = hashlib.sha256()
    for shard in sorted((path / "data").glob("*.parquet")):
        digest.update(f"{shard.name}:{sha256_file(shard)}\n".encode())
    return digest.hexdigest()


def split_table(ctx: PlanContext, split: str) -> Any:
    """The loaded split (semantic masks), cached for the process."""
    from diffseg30k.data.load import load_benchmark

    key = f"split:{split}"
    if key not in ctx.cache:
        ctx.cache[key] = load_benchmark(ctx.result("data")["path"], split=split,
                                        revision=ctx.config.revision)
    return ctx.cache[key]


def eval_table(ctx: PlanContext) -> Any:
    table = split_table(ctx, "validation")
    limit = ctx.config.eval_limit
    return table.select(range(min(limit, len(table)))) if limit else table


def holdout_ids(table: Any, pair: Sequence[str]) -> list[str]:
    """Validation images edited by a held-out generator, plus the unedited ones (image-level negatives);
    empty when no image holds a held-out generator (nothing unseen to test)."""
    held = set(pair)
    models = table["models"] if "models" in table.column_names else [[] for _ in range(len(table))]
    if not any(held & set(m or []) for m in models):
        return []
    return [str(i) for i, m in zip(table["id"], models) if not m or held & set(m)]


