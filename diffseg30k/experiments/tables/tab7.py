"""Tab. 7: a generator variant (SDXL-LoRA) scored as its parent label (SDXL): the parent class's
IoU on the parent's own validation edits vs the same regions re-edited by the variant."""

from __future__ import annotations

import json
from typing import Any

from diffseg30k.experiments.plan import PlanContext, StepFailed
from diffseg30k.experiments.tables import PaperTable, register_table
from diffseg30k.experiments.tables.common import cell, class_value, md_table, name, score, tab2_checkpoint
from diffseg30k.labels import LABEL2ID

#: DeepLabV3+ (semantic), IoU of the SDXL class on SDXL vs SDXL-LoRA validation edits.
PAPER: dict[str, dict[str, dict[str, float]]] = {
    "deeplabv3plus": {"sdxl": {"sdxl_iou": 0.657}, "sdxl-lora": {"sdxl_iou": 0.630}},
}
#: The family the paper reports this table for (the first configured family otherwise).
PAPER_FAMILY = "deeplabv3plus"


def variant_rows(ctx: PlanContext, table: Any) -> list[dict[str, Any]]:
    """Validation rows whose parent-generator regions are re-edited by the variant editor.

    The label map is unchanged (the variant is scored as its parent); the rest of the image too.
    """
    import numpy as np
    from tqdm.auto import tqdm

    from diffseg30k.experiments.artifacts import device_for
    from diffseg30k.generation.composite import composite
    from diffseg30k.generation.editors.base import EditRequest
    from diffseg30k.generation.editors.registry import label_of
    from diffseg30k.generation.profiles import get_profile

    cfg = ctx.config
    parent = label_of(cfg.variant)
    if parent != cfg.variant_parent:
        raise StepFailed(f"editor {cfg.variant!r} is labelled {parent!r}, not {cfg.variant_parent!r}")
    parent_id = LABEL2ID[parent]
    editor = get_profile(cfg.generation_profile).editor(cfg.variant, device=device_for(cfg))
    editor.load()
    rows: list[dict[str, Any]] = []
    try:
        candidates = [i for i, m in enumerate(table["models"]) if m and parent in m]
        if cfg.variant_limit:
            candidates = candidates[: cfg.variant_limit]
        for index in tqdm(candidates, desc=f"re-edit with {cfg.variant}", leave=False):
            found = table[index]
            region = np.asarray(found["mask"], np.uint8) == parent_id
            if not region.any():
                continue
            turn = next((t for t in (found.get("turns") or []) if t.get("generator") == parent), {})
            image = found["image"].convert("RGB")
            request = EditRequest(image=image, mask=region, prompt=turn.get("prompt") or "",
                                  seed=cfg.seed + index, edit_type=turn.get("edit_type"))
            rows.append({**found, "image": composite(image, editor.inpaint(request), region)})
    finally:
        editor.unload()
    return rows


def run(ctx: PlanContext) -> dict[str, Any]:
    from diffseg30k.experiments.artifacts import current_set, predict_checkpoint
    from diffseg30k.experiments.bench_data import eval_table

    cfg = ctx.config
    family = PAPER_FAMILY if PAPER_FAMILY in cfg.families else next(iter(cfg.families))
    ckpt = tab2_checkpoint(ctx, family, "semantic")
    table = eval_table(ctx)
    if "models" not in table.column_names:
        return {"rows": [], "note": "the dataset has no per-image generator metadata"}
    variant_dir = ctx.out_dir / "predictions" / f"{ckpt['key']}-{cfg.variant}"
    if not current_set(variant_dir / "none", ckpt.get("sha256"), ctx.result("data")["fingerprint"]):
        edited = variant_rows(ctx, table)
        if not edited:
            return {"rows": [], "note": f"no validation image holds {cfg.variant_parent} edits"}
        predict_checkpoint(ctx, ckpt, ["none"], table=edited, name=f"{ckpt['key']}-{cfg.variant}")
    variant_set = variant_dir / "none"
    ids = [json.loads(line)["id"] for line in (variant_set / "index.jsonl").read_text().splitlines()]
    original_set = predict_checkpoint(ctx, ckpt, ["none"])["none"]
    rows = []
    for setting, path, subset in ((cfg.variant_parent, original_set, ids), (cfg.variant, variant_set, None)):
        scored = score(path, ctx, ids=subset)
        iou = class_value(scored["metrics"].get("per_class_iou"), cfg.variant_parent)
        metrics = {f"{cfg.variant_parent}_iou": iou, "semantic_miou": scored["metrics"].get("semantic_miou")}
        rows.append(
            {
                "table": "tab7",
                "family": family,
                "model": cfg.families[family],
                "setting": setting,
                "count": scored["count"],
                "metrics": metrics,
                "checkpoint": ckpt["key"],
            }
        )
    return {"rows": rows, "variant": cfg.variant, "parent": cfg.variant_parent}


def render(results: dict[str, Any]) -> list[str]:
    data = results.get("tab7") or {}
    parent = data.get("parent", "sdxl")
    body, values = [], []
    for found in data.get("rows", []):
        ref = PAPER.get(found["family"], {}).get(found["setting"], {}).get("sdxl_iou")
        values.append(found["metrics"].get(f"{parent}_iou"))
        body.append([name(found["family"]), found["setting"], str(found["count"]), cell(values[-1], ref)])
    lines = md_table(["model", "edit model (in val)", "images", f"sem IoU ({parent})"], body)
    if values and all(not v for v in values):
        lines += [
            "",
            f"*No information: the model never predicts the {parent} class correctly on these "
            f"images (IoU 0 in both rows), so this run cannot compare {parent} with its variant.*",
        ]
    return lines


TABLE = register_table(
    PaperTable(
        "tab7",
        7,
        "Tab. 7: a generator variant scored as its parent",
        "Tab. 7: a generator variant scored as its parent",
        PAPER,
        run,
        render,
    )
)
