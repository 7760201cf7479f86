"""Tab. 2: each detector family trained on the binary and the semantic task (the models every later
table reuses), with bootstrap intervals and the validation-metadata breakdowns."""

from __future__ import annotations

from typing import Any

from diffseg30k.experiments.plan import PlanContext
from diffseg30k.experiments.reference import IMAGE_KEYS, SEG_KEYS, seg
from diffseg30k.experiments.tables import PaperTable, register_table
from diffseg30k.experiments.tables.common import (
    BIN,
    SEM,
    TASKS,
    cell,
    ci_lines,
    find,
    header,
    headline,
    md_table,
    metric,
    name,
    row,
    rows_of,
    score,
    task_keys,
)
from diffseg30k.metrics import IMDL_KEYS

PAPER: dict[str, dict[str, float]] = {
    "segformer": seg(0.989, 0.961, 0.678, 0.952, 0.825, 0.532),
    "deeplabv3plus": seg(0.984, 0.974, 0.761, 0.916, 0.760, 0.431),
    "fcn8s": seg(0.838, 0.699, 0.457, 0.331, 0.203, 0.024),
}


def run(ctx: PlanContext) -> dict[str, Any]:
    from diffseg30k.experiments.artifacts import predict_checkpoint, train_detector

    cfg = ctx.config
    rows, checkpoints, details = [], {}, {}
    for family in cfg.families:
        for task in TASKS:
            ckpt = train_detector(ctx, family, task)
            checkpoints[ckpt["key"]] = ckpt
            sets = predict_checkpoint(ctx, ckpt, ["none"])
            scored = score(sets["none"], ctx, by=cfg.breakdowns, bootstrap=cfg.bootstrap)
            rows.append(
                row(
                    "tab2",
                    scored,
                    task_keys(task) + list(IMAGE_KEYS),
                    family=family,
                    model=cfg.families[family],
                    task=task,
                    checkpoint=ckpt["key"],
                )
            )
            details[ckpt["key"]] = {
                "breakdowns": scored.get("breakdowns", {}),
                "per_class_iou": scored["metrics"].get("per_class_iou"),
                "per_class_bf1": scored["metrics"].get("per_class_bf1"),
                "confusion_matrix": scored["metrics"].get("confusion_matrix"),
                "all_metrics": headline(scored["metrics"], SEG_KEYS + IMAGE_KEYS + IMDL_KEYS),
                "spec": scored["metrics"].get("spec"),
            }
    return {"rows": rows, "checkpoints": checkpoints, "details": details}


def trainings(ctx: PlanContext) -> list[Any]:
    from diffseg30k.experiments.artifacts import TrainingJob

    return [TrainingJob(family, task) for family in ctx.config.families for task in TASKS]


def render(results: dict[str, Any]) -> list[str]:
    rows = rows_of(results, "tab2")
    body = []
    for family in dict.fromkeys(r["family"] for r in rows):
        b, s = find(rows, family=family, task="binary"), find(rows, family=family, task="semantic")
        ref = PAPER.get(family, {})
        body.append(
            [
                name(family, (b or s or {}).get("model")),
                *[cell(metric(b, k), ref.get(k)) for k in BIN],
                *[cell(metric(s, k), ref.get(k)) for k in SEM],
            ]
        )
    lines = md_table(["model", *header(BIN), *header(SEM)], body)
    intervals = ci_lines(
        rows, lambda r: f"{name(r['family'], r.get('model')).split(' (')[0]} {r['task']} model"
    )
    if intervals:
        lines += ["", "95 % bootstrap intervals (images resampled):", "", *intervals]
    return lines


TABLE = register_table(
    PaperTable(
        "tab2",
        2,
        "Tab. 2: segmentation baselines (binary and semantic)",
        "Tab. 2: detectors, binary and semantic",
        PAPER,
        run,
        render,
        requires=("data", "train"),
        trainings=trainings,
    )
)
