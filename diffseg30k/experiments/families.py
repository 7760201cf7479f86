"""The extra table "detector families side by side": each family's clean binary/semantic mIoU, its
robustness ratios (distorted semantic mIoU / clean) with paired bootstrap intervals, and one hold-out.

A ratio's interval resamples *images*: each resample draws the same images from the clean and the
distorted prediction sets of the plain semantic model and divides the two mIoUs, so the interval is
that of the ratio itself (not two independent intervals). Two families differ clearly on robustness
when their intervals do not overlap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from diffseg30k.experiments.plan import PlanContext
from diffseg30k.experiments.tables import ReportTable, register_report_table
from diffseg30k.experiments.tables.common import fmt, md_table
from diffseg30k.experiments.tables.common import name as model_name

__all__ = ["ROBUSTNESS_DISTORTIONS", "TABLE", "paired_ratio", "render_families", "step_families"]

ROBUSTNESS_DISTORTIONS = ("jpeg60", "resize256", "resize64", "resize1024")


def _states(path: Path, factory) -> dict[str, Any]:
    from diffseg30k.experiments.predictions import read_predictions

    evaluator = factory()
    return {r.id: evaluator.pair_stats(np.asarray(r.prediction), r.reference, r.score)
            for r in read_predictions(path)}


def paired_ratio(clean: Path, distorted: Path, key: str = "semantic_miou", resamples: int = 200,
                 seed: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """``key`` of ``distorted`` / ``key`` of ``clean`` (semantic prediction sets of one model, same
    images) with a percentile bootstrap interval over images resampled jointly."""
    from diffseg30k.experiments.scoring import _merged, metric_factory

    factory = metric_factory("semantic")
    clean_states, distorted_states = _states(clean, factory), _states(distorted, factory)
    ids = sorted(set(clean_states) & set(distorted_states))
    if not ids:
        raise ValueError(f"{clean} and {distorted} share no images")
    first, second = [clean_states[i] for i in ids], [distorted_states[i] for i in ids]

    def ratio(indices) -> float | None:
        base = _merged(factory, first, indices).compute().get(key)
        value = _merged(factory, second, indices).compute().get(key)
        return float(value) / float(base) if base else None

    rng = np.random.default_rng(seed)
    draws = [r for _ in range(resamples) if (r := ratio(rng.integers(0, len(ids), len(ids)))) is not None]
    tail = (1 - confidence) / 2 * 100
    interval = [float(np.percentile(draws, tail)), float(np.percentile(draws, 100 - tail))] if draws else None
    return {"ratio": ratio(range(len(ids))), "ci": interval, "count": len(ids), "resamples": resamples}


def step_families(ctx: PlanContext) -> dict[str, Any]:
    """One row per family: clean mIoUs (Tab. 2), robustness ratios, the first hold-out of Tab. 4."""
    from diffseg30k.experiments.artifacts import predict_checkpoint

    cfg = ctx.config
    tab2 = ctx.result("tab2")
    tab4_rows = ctx.result("tab4").get("rows", [])
    distortions = [d for d in cfg.distortions if d in ROBUSTNESS_DISTORTIONS]
    rows = []
    for family, model in cfg.families.items():
        semantic = tab2["checkpoints"][f"{family}-semantic"]
        sets = predict_checkpoint(ctx, semantic, ["none", *distortions])
        clean = {r["task"]: r["metrics"] for r in tab2["rows"] if r["family"] == family}
        row: dict[str, Any] = {"table": "families", "family": family, "model": model,
                               "binary_miou": clean.get("binary", {}).get("binary_miou"),
                               "semantic_miou": clean.get("semantic", {}).get("semantic_miou"),
                               "ratios": {}}
        for name in distortions:
            row["ratios"][name] = paired_ratio(sets["none"], sets[name], resamples=cfg.bootstrap,
                                               seed=cfg.seed)
        holdout = next((r for r in tab4_rows if r["family"] == family and r["setting"] != "baseline"), None)
        if holdout is not None:
            seen = holdout.get("seen_model_same_images") or {}
            row["holdout"] = {"setting": holdout["setting"], "seen_binary_miou": seen.get("binary_miou"),
                              "binary_miou": holdout["metrics"].get("binary_miou")}
        rows.append(row)
    return {"rows": rows, "distortions": distortions}


def render_families(results: dict[str, Any]) -> list[str]:
    """Markdown of the families table (ratios as ``value [lo, hi]``)."""
    data = results.get("families") or {}
    distortions = data.get("distortions", [])
    body = []
    for row in data.get("rows", []):
        ratios = []
        for name in distortions:
            r = row["ratios"].get(name) or {}
            lo, hi = r.get("ci") or (None, None)
            ratios.append(f"{fmt(r.get('ratio'))} [{fmt(lo)}, {fmt(hi)}]")
        holdout = row.get("holdout") or {}
        held = (f"{holdout.get('setting', '–')}: {fmt(holdout.get('binary_miou'))} "
                f"({fmt(holdout.get('seen_binary_miou'))})")
        body.append([model_name(row["family"], row["model"]), fmt(row.get("binary_miou")),
                     fmt(row.get("semantic_miou")), *ratios, held])
    header = ["model", "clean bin mIoU", "clean sem mIoU", *[f"sem mIoU {d} / clean" for d in distortions],
              "hold-out bin mIoU (8-generator model)"]
    return [*md_table(header, body), "",
            "Ratios: plain training; 95 % intervals from a paired bootstrap over validation images."]


#: The report table and its benchmark step: after the paper tables and ``figures``, before ``cross``
#: (no paper numbers: the families beyond the paper's three are not in it).
TABLE = register_report_table(ReportTable(
    "families", 1_005.0,
    "Detector families side by side (beyond the paper): robustness ratios and a hold-out",
    "detector families side by side: robustness ratios, a hold-out", step_families, render_families,
    requires=("tab2", "tab4"),
))
