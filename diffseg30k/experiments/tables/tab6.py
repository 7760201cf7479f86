"""Tab. 6: cross-generator generalization at image level -- UniversalFakeDetect under the hold-outs
(the segmenter rows come from Tab. 4)."""

from __future__ import annotations

from typing import Any

from diffseg30k.experiments.plan import PlanContext
from diffseg30k.experiments.reference import IMAGE_KEYS, holdout_key
from diffseg30k.experiments.tables import PaperTable, register_table
from diffseg30k.experiments.tables.common import (
    IMG,
    cell,
    header,
    headline,
    holdout_label,
    md_table,
    metric,
    name,
    rows_of,
)


def _img(acc: float, ap: float) -> dict[str, float]:
    return {"image_accuracy": acc, "image_ap": ap}


PAPER: dict[str, dict[str, dict[str, float]]] = {
    "ufd": {
        "baseline": _img(0.860, 0.934),
        "flux+hunyuan": _img(0.768, 0.877),
        "sd2+sd35": _img(0.714, 0.817),
        "glide+kolors": _img(0.749, 0.844),
    },
    "segformer": {
        "baseline": _img(0.997, 0.999),
        "flux+hunyuan": _img(0.978, 0.986),
        "sd2+sd35": _img(0.982, 0.986),
        "glide+kolors": _img(0.987, 0.996),
    },
    "deeplabv3plus": {
        "baseline": _img(0.980, 0.994),
        "flux+hunyuan": _img(0.935, 0.967),
        "sd2+sd35": _img(0.942, 0.965),
        "glide+kolors": _img(0.964, 0.985),
    },
}


def run(ctx: PlanContext) -> dict[str, Any]:
    from diffseg30k.experiments.artifacts import classifier_row, train_classifier_cached
    from diffseg30k.experiments.bench_data import eval_table, holdout_ids

    cfg = ctx.config
    table = eval_table(ctx)
    rows, checkpoints = [], {}
    if "ufd" not in cfg.classifiers:
        return {"rows": [], "checkpoints": {}, "note": "no UniversalFakeDetect classifier configured"}
    base = ctx.result("tab5")["checkpoints"]["ufd"]
    rows.append(classifier_row(ctx, "tab6", base, table, family="ufd", setting="baseline"))
    for pair in cfg.holdouts:
        ids = set(holdout_ids(table, pair))
        if not ids:
            continue
        ckpt = train_classifier_cached(ctx, "ufd", holdout=pair)
        checkpoints[ckpt["key"]] = ckpt
        subset = table.filter(
            lambda i, keep=frozenset(ids): str(i) in keep, input_columns="id", desc="hold-out subset"
        )
        rows.append(classifier_row(ctx, "tab6", ckpt, subset, family="ufd", setting=holdout_key(pair)))
    for found in ctx.result("tab4")["rows"]:
        rows.append({**found, "table": "tab6", "metrics": headline(found["metrics"], IMAGE_KEYS)})
    return {"rows": rows, "checkpoints": checkpoints}


def render(results: dict[str, Any]) -> list[str]:
    body = []
    for found in rows_of(results, "tab6"):
        ref = PAPER.get(found["family"], {}).get(found["setting"], {})
        body.append(
            [
                name(found["family"]),
                holdout_label(found["setting"]),
                str(found["count"]),
                *[cell(metric(found, k), ref.get(k)) for k in IMG],
            ]
        )
    return md_table(["model", "generalize to", "images", *header(IMG)], body)


TABLE = register_table(
    PaperTable(
        "tab6",
        6,
        "Tab. 6: cross-generator generalization, image level",
        "Tab. 6: image-level cross-generator generalization",
        PAPER,
        run,
        render,
        requires=("tab4", "tab5"),
    )
)
