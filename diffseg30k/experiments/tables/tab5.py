"""Tab. 5: whole-image classification -- segmenters by the 1 % area rule vs CNNSpot and
UniversalFakeDetect."""

from __future__ import annotations

from typing import Any

from diffseg30k.experiments.plan import PlanContext
from diffseg30k.experiments.reference import IMAGE_KEYS
from diffseg30k.experiments.tables import PaperTable, register_table
from diffseg30k.experiments.tables.common import (
    IMG,
    TASKS,
    cell,
    ci_lines,
    find,
    header,
    md_table,
    metric,
    name,
    row,
    rows_of,
    score,
    tab2_checkpoint,
)

PAPER: dict[str, dict[str, float]] = {
    "cnnspot": {"image_accuracy": 0.942, "image_ap": 0.979},
    "ufd": {"image_accuracy": 0.860, "image_ap": 0.934},
    "segformer": {"image_accuracy": 0.997, "image_ap": 0.999},
    "deeplabv3plus": {"image_accuracy": 0.980, "image_ap": 0.994},
}


def run(ctx: PlanContext) -> dict[str, Any]:
    from diffseg30k.experiments.artifacts import (
        classifier_row,
        predict_checkpoint,
        train_classifier_cached,
    )
    from diffseg30k.experiments.bench_data import eval_table

    cfg = ctx.config
    table = eval_table(ctx)
    rows, checkpoints = [], {}
    for kind in cfg.classifiers:
        ckpt = train_classifier_cached(ctx, kind)
        checkpoints[ckpt["key"]] = ckpt
        rows.append(classifier_row(ctx, "tab5", ckpt, table, family=kind))
    for family in cfg.families:
        for task in TASKS:
            ckpt = tab2_checkpoint(ctx, family, task)
            scored = score(predict_checkpoint(ctx, ckpt, ["none"])["none"], ctx)
            found = row(
                "tab5",
                scored,
                IMAGE_KEYS,
                family=family,
                model=cfg.families[family],
                task=task,
                rule="1 % area",
                checkpoint=ckpt["key"],
            )
            seen = find(ctx.result("tab2")["rows"], family=family, task=task) or {}
            if seen.get("ci"):  # the same prediction set: Tab. 2's bootstrap gives its intervals
                found["ci"] = {k: v for k, v in seen["ci"].items() if k in IMAGE_KEYS}
            rows.append(found)
    return {"rows": rows, "checkpoints": checkpoints}


def render(results: dict[str, Any]) -> list[str]:
    body = []
    rows = rows_of(results, "tab5")
    for found in rows:
        ref = PAPER.get(found["family"], {}) if found.get("task") in (None, "binary") else {}
        how = "classifier" if found.get("task") is None else f"{found['task']} segmenter, 1 % rule"
        body.append(
            [
                name(found["family"], found.get("model")),
                how,
                *[cell(metric(found, k), ref.get(k)) for k in IMG],
            ]
        )
    lines = md_table(["model", "decision", *header(IMG)], body)
    intervals = ci_lines(
        rows, lambda r: f"{name(r['family'], r.get('model'))} {r.get('task') or 'classifier'}"
    )
    if intervals:
        lines += ["", "95 % bootstrap intervals (images resampled):", "", *intervals]
    return lines


TABLE = register_table(
    PaperTable(
        "tab5",
        5,
        "Tab. 5: whole-image classification",
        "Tab. 5: image-level classification, 1 % rule vs CNNSpot/UFD",
        PAPER,
        run,
        render,
    )
)
