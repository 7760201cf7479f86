"""Tab. 8: real-base vs AI-base images (the base image's origin, from the validation metadata)."""

from __future__ import annotations

from typing import Any

from diffseg30k.experiments.plan import PlanContext
from diffseg30k.experiments.reference import seg
from diffseg30k.experiments.tables import PaperTable, register_table
from diffseg30k.experiments.tables.common import (
    BIN,
    SEM,
    TASKS,
    cell,
    find,
    header,
    md_table,
    metric,
    name,
    row,
    rows_of,
    score,
    tab2_checkpoint,
    task_keys,
)

#: DeepLabV3+ on real-base vs AI-base images.
PAPER: dict[str, dict[str, dict[str, float]]] = {
    "deeplabv3plus": {
        "real": seg(0.964, 0.911, 0.506, 0.918, 0.731, 0.339),
        "ai": seg(0.999, 0.999, 0.999, 0.887, 0.760, 0.516),
    },
}


def run(ctx: PlanContext) -> dict[str, Any]:
    from diffseg30k.experiments.artifacts import predict_checkpoint
    from diffseg30k.experiments.bench_data import eval_table

    cfg = ctx.config
    table = eval_table(ctx)
    if "base" not in table.column_names or not any(table["base"]):
        return {"rows": [], "note": "the dataset has no real/AI base metadata"}
    groups: dict[str, list[str]] = {}
    for image_id, base in zip(table["id"], table["base"]):
        if base:
            groups.setdefault(base, []).append(str(image_id))
    rows = []
    for family in cfg.ablation_families:
        for task in TASKS:
            ckpt = tab2_checkpoint(ctx, family, task)
            path = predict_checkpoint(ctx, ckpt, ["none"])["none"]
            for base, ids in sorted(groups.items()):
                rows.append(
                    row(
                        "tab8",
                        score(path, ctx, ids=ids),
                        task_keys(task),
                        family=family,
                        model=cfg.families[family],
                        task=task,
                        subset=base,
                        checkpoint=ckpt["key"],
                    )
                )
    return {"rows": rows}


def render(results: dict[str, Any]) -> list[str]:
    rows = rows_of(results, "tab8")
    body = []
    for family, subset in dict.fromkeys((r["family"], r["subset"]) for r in rows):
        b = find(rows, family=family, subset=subset, task="binary")
        s = find(rows, family=family, subset=subset, task="semantic")
        ref = PAPER.get(family, {}).get(subset, {})
        body.append(
            [
                name(family),
                f"{subset}-base",
                str((b or s or {}).get("count")),
                *[cell(metric(b, k), ref.get(k)) for k in BIN],
                *[cell(metric(s, k), ref.get(k)) for k in SEM],
            ]
        )
    return md_table(["model", "subset", "images", *header(BIN), *header(SEM)], body)


TABLE = register_table(
    PaperTable(
        "tab8",
        8,
        "Tab. 8: real-base vs AI-base images",
        "Tab. 8: real-base vs AI-base images",
        PAPER,
        run,
        render,
    )
)
