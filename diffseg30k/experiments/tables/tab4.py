"""Tab. 4: generalization to unseen generators -- the 6->2 hold-outs, binary pixel metrics
(segmenters; their image-level numbers feed Tab. 6)."""

from __future__ import annotations

from typing import Any

from diffseg30k.experiments.plan import PlanContext
from diffseg30k.experiments.reference import IMAGE_KEYS, holdout_key
from diffseg30k.experiments.tables import PaperTable, register_table
from diffseg30k.experiments.tables.common import (
    BIN,
    cell,
    fmt,
    header,
    headline,
    holdout_label,
    md_table,
    metric,
    name,
    row,
    rows_of,
    score,
    tab2_checkpoint,
)


def _bin(acc: float, miou: float, bf1: float) -> dict[str, float]:
    return {"binary_accuracy": acc, "binary_miou": miou, "binary_bf1": bf1}


#: Binary pixel metrics on edits by the two unseen generators ("baseline": all 8 seen).
PAPER: dict[str, dict[str, dict[str, float]]] = {
    "segformer": {
        "baseline": _bin(0.989, 0.961, 0.678),
        "flux+hunyuan": _bin(0.935, 0.930, 0.491),
        "sd2+sd35": _bin(0.927, 0.926, 0.497),
        "glide+kolors": _bin(0.957, 0.951, 0.578),
    },
    "deeplabv3plus": {
        "baseline": _bin(0.984, 0.974, 0.761),
        "flux+hunyuan": _bin(0.920, 0.867, 0.526),
        "sd2+sd35": _bin(0.931, 0.833, 0.372),
        "glide+kolors": _bin(0.953, 0.927, 0.648),
    },
}
KEYS = (*BIN, *IMAGE_KEYS)


def _scored_pairs(ctx: PlanContext, table: Any, say: bool = True) -> list[tuple[tuple[str, ...], list[Any]]]:
    """The hold-out pairs with validation images to score (and those images' ids); ``say``: log the
    others."""
    from diffseg30k.experiments.bench_data import holdout_ids

    pairs = []
    for pair in ctx.config.holdouts:
        ids = holdout_ids(table, pair)
        if any(ids):
            pairs.append((tuple(pair), ids))
        elif say:
            ctx.log(f"  hold-out {holdout_key(pair)}: no validation image holds these generators")
    return pairs


def run(ctx: PlanContext) -> dict[str, Any]:
    from diffseg30k.experiments.artifacts import predict_checkpoint, train_detector
    from diffseg30k.experiments.bench_data import eval_table

    cfg = ctx.config
    table = eval_table(ctx)
    pairs = _scored_pairs(ctx, table)
    rows, checkpoints = [], {}
    for family in cfg.ablation_families:
        base = tab2_checkpoint(ctx, family, "binary")
        base_set = predict_checkpoint(ctx, base, ["none"])["none"]
        rows.append(
            row(
                "tab4",
                score(base_set, ctx),
                KEYS,
                family=family,
                model=cfg.families[family],
                setting="baseline",
                checkpoint=base["key"],
            )
        )
        for pair, ids in pairs:
            ckpt = train_detector(ctx, family, "binary", holdout=pair)
            checkpoints[ckpt["key"]] = ckpt
            subset = (
                table.filter(
                    lambda i, keep=frozenset(ids): str(i) in keep, input_columns="id", desc="hold-out subset"
                )
                if len(ids) < len(table)
                else table
            )
            sets = predict_checkpoint(ctx, ckpt, ["none"], table=subset)
            found = row(
                "tab4",
                score(sets["none"], ctx),
                KEYS,
                family=family,
                model=cfg.families[family],
                setting=holdout_key(pair),
                checkpoint=ckpt["key"],
            )
            found["seen_model_same_images"] = headline(score(base_set, ctx, ids=ids)["metrics"], KEYS)
            rows.append(found)
    return {"rows": rows, "checkpoints": checkpoints}


def render(results: dict[str, Any]) -> list[str]:
    body = []
    for found in rows_of(results, "tab4"):
        ref = PAPER.get(found["family"], {}).get(found["setting"], {})
        seen = found.get("seen_model_same_images") or {}
        body.append(
            [
                name(found["family"]),
                holdout_label(found["setting"]),
                str(found["count"]),
                *[cell(metric(found, k), ref.get(k)) for k in BIN],
                fmt(seen.get("binary_miou")),
            ]
        )
    return md_table(
        ["model", "generalize to", "images", *header(BIN), "bin mIoU of the 8-generator model, same images"],
        body,
    )


def trainings(ctx: PlanContext) -> list[Any]:
    from diffseg30k.experiments.artifacts import TrainingJob
    from diffseg30k.experiments.bench_data import eval_table

    pairs = _scored_pairs(ctx, eval_table(ctx), say=False)  # run() says it
    return [TrainingJob(family, "binary", pair)
            for family in ctx.config.ablation_families for pair, _ in pairs]


TABLE = register_table(
    PaperTable(
        "tab4",
        4,
        "Tab. 4: generalization to unseen generators (binary segmentation)",
        "Tab. 4: generalization to unseen generators (6->2)",
        PAPER,
        run,
        render,
        requires=("tab2", "train"),
        trainings=trainings,
    )
)
