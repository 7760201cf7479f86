"""The benchmark plan: every table of the paper as a resumable step.

Steps (each runnable alone; requirements run first when missing):

``data``  build or locate the dataset (the mini dataset is generated and converted once, cached)
``tab2``  each detector family, binary and semantic (trains them; they serve every later table)
``tab3``  robustness under distortions, plain vs ``--augment robust`` training
``tab4``  the 6->2 generator hold-outs, binary pixel and image-level metrics (segmenters; Tab. 6 too)
``tab5``  image level: the 1 % rule vs CNNSpot and UniversalFakeDetect
``tab6``  UniversalFakeDetect under the hold-outs (the segmenter rows come from ``tab4``)
``tab7``  a generator variant (SDXL-LoRA) scored as its parent label
``tab8``  real-base vs AI-base subsets
``figures``  Fig. 5 confusion matrices, Fig. 6 qualitative grid
``cross``  generalisation to other datasets: the Tab. 2 models on each ``--cross-dataset`` set
``report``  report.md and results.json

Checkpoints and prediction sets live under the output folder and are reused by later runs, so an
interrupted step resumes its unfinished trainings (``resume=True``) and skips finished ones.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from diffseg30k.data.distortions import parse_distortions
from diffseg30k.experiments.artifacts import (
    classifier_row,
    current_set,
    device_for,
    predict_checkpoint,
    train_classifier_cached,
    train_detector,
)
from diffseg30k.experiments.bench_data import eval_table, holdout_ids, step_data
from diffseg30k.experiments.config import BenchmarkConfig
from diffseg30k.experiments.cross_dataset import stale_cross_record, step_cross
from diffseg30k.experiments.evaluation import score_prediction_set
from diffseg30k.experiments.plan import Plan, PlanContext, Step, StepFailed
from diffseg30k.experiments.reference import IMAGE_KEYS, SEG_KEYS, holdout_key
from diffseg30k.experiments.scoring import clean
from diffseg30k.labels import LABEL2ID

TASKS = ("binary", "semantic")


def score(path: Path, ctx: PlanContext, by: Iterable[str] = (), bootstrap: int = 0,
          ids: Iterable[str] | None = None) -> dict[str, Any]:
    return score_prediction_set(path, by=by, bootstrap=bootstrap, seed=ctx.config.seed, ids=ids)


def _headline(metrics: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {k: clean(metrics.get(k)) for k in keys if k in metrics}


def _row(table: str, scored: dict[str, Any], keys: Iterable[str], **labels: Any) -> dict[str, Any]:
    row = {"table": table, **labels, "count": scored["count"], "metrics": _headline(scored["metrics"], keys)}
    if "ci" in scored:
        row["ci"] = scored["ci"]
    return row


# -------------------------------------------------------------------------------------------- steps
def step_tab2(ctx: PlanContext) -> dict[str, Any]:
    cfg: BenchmarkConfig = ctx.config
    rows, checkpoints, details = [], {}, {}
    for family in cfg.families:
        for task in TASKS:
            ckpt = train_detector(ctx, family, task)
            checkpoints[ckpt["key"]] = ckpt
            sets = predict_checkpoint(ctx, ckpt, ["none"])
            scored = score(sets["none"], ctx, by=cfg.breakdowns, bootstrap=cfg.bootstrap)
            keys = [k for k in SEG_KEYS if k.startswith(task)] + list(IMAGE_KEYS)
            rows.append(_row("tab2", scored, keys, family=family, model=cfg.families[family], task=task,
                             checkpoint=ckpt["key"]))
            details[ckpt["key"]] = {"breakdowns": scored.get("breakdowns", {}),
                                    "per_class_iou": scored["metrics"].get("per_class_iou"),
                                    "per_class_bf1": scored["metrics"].get("per_class_bf1"),
                                    "confusion_matrix": scored["metrics"].get("confusion_matrix"),
                                    "all_metrics": _headline(scored["metrics"], SEG_KEYS + IMAGE_KEYS),
                                    "spec": scored["metrics"].get("spec")}
    return {"rows": rows, "checkpoints": checkpoints, "details": details}


def _tab2_checkpoint(ctx: PlanContext, family: str, task: str) -> dict[str, Any]:
    return ctx.result("tab2")["checkpoints"][f"{family}-{task}"]


def step_tab3(ctx: PlanContext) -> dict[str, Any]:
    cfg: BenchmarkConfig = ctx.config
    names = [d.name for d in parse_distortions(list(cfg.distortions))]
    rows, checkpoints = [], {}
    for family in cfg.ablation_families:
        for task in TASKS:
            variants = [("plain", _tab2_checkpoint(ctx, family, task))]
            if task in cfg.robust_tasks:
                robust = train_detector(ctx, family, task, augment="robust")
                checkpoints[robust["key"]] = robust
                variants.append(("robust", robust))
            for training, ckpt in variants:
                sets = predict_checkpoint(ctx, ckpt, names)
                keys = [k for k in SEG_KEYS if k.startswith(task)]
                for distortion in names:
                    rows.append(_row("tab3", score(sets[distortion], ctx), keys, family=family,
                                     model=cfg.families[family], task=task, training=training,
                                     distortion=distortion, checkpoint=ckpt["key"]))
    return {"rows": rows, "checkpoints": checkpoints}


def step_tab4(ctx: PlanContext) -> dict[str, Any]:
    cfg: BenchmarkConfig = ctx.config
    table = eval_table(ctx)
    rows, checkpoints = [], {}
    keys = ("binary_accuracy", "binary_miou", "binary_bf1", *IMAGE_KEYS)
    for family in cfg.ablation_families:
        base = _tab2_checkpoint(ctx, family, "binary")
        base_set = predict_checkpoint(ctx, base, ["none"])["none"]
        rows.append(_row("tab4", score(base_set, ctx), keys, family=family, model=cfg.families[family],
                         setting="baseline", checkpoint=base["key"]))
        for pair in cfg.holdouts:
            ids = holdout_ids(table, pair)
            if not any(ids):
                ctx.log(f"  hold-out {holdout_key(pair)}: no validation image holds these generators")
                continue
            ckpt = train_detector(ctx, family, "binary", holdout=pair)
            checkpoints[ckpt["key"]] = ckpt
            subset = table.filter(lambda i, keep=frozenset(ids): str(i) in keep, input_columns="id",
                                  desc="hold-out subset") if len(ids) < len(table) else table
            sets = predict_checkpoint(ctx, ckpt, ["none"], table=subset)
            row = _row("tab4", score(sets["none"], ctx), keys, family=family, model=cfg.families[family],
                       setting=holdout_key(pair), checkpoint=ckpt["key"])
            row["seen_model_same_images"] = _headline(score(base_set, ctx, ids=ids)["metrics"], keys)
            rows.append(row)
    return {"rows": rows, "checkpoints": checkpoints}


def step_tab5(ctx: PlanContext) -> dict[str, Any]:
    cfg: BenchmarkConfig = ctx.config
    table = eval_table(ctx)
    rows, checkpoints = [], {}
    for kind in cfg.classifiers:
        ckpt = train_classifier_cached(ctx, kind)
        checkpoints[ckpt["key"]] = ckpt
        rows.append(classifier_row(ctx, "tab5", ckpt, table, family=kind))
    for family in cfg.families:
        for task in TASKS:
            ckpt = _tab2_checkpoint(ctx, family, task)
            scored = score(predict_checkpoint(ctx, ckpt, ["none"])["none"], ctx)
            rows.append(_row("tab5", scored, IMAGE_KEYS, family=family, model=cfg.families[family], task=task,
                             rule="1 % area", checkpoint=ckpt["key"]))
    return {"rows": rows, "checkpoints": checkpoints}


def step_tab6(ctx: PlanContext) -> dict[str, Any]:
    cfg: BenchmarkConfig = ctx.config
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
        subset = table.filter(lambda i, keep=frozenset(ids): str(i) in keep, input_columns="id",
                              desc="hold-out subset")
        rows.append(classifier_row(ctx, "tab6", ckpt, subset, family="ufd", setting=holdout_key(pair)))
    for row in ctx.result("tab4")["rows"]:
        rows.append({**row, "table": "tab6", "metrics": _headline(row["metrics"], IMAGE_KEYS)})
    return {"rows": rows, "checkpoints": checkpoints}


def variant_rows(ctx: PlanContext, table: Any) -> list[dict[str, Any]]:
    """Validation rows whose parent-generator regions are re-edited by the variant editor.

    The label map is unchanged (the variant is scored as its parent); the rest of the image too.
    """
    import numpy as np

    from diffseg30k.generation.composite import composite
    from diffseg30k.generation.editors.base import EditRequest
    from diffseg30k.generation.editors.registry import create_editor, label_of

    cfg: BenchmarkConfig = ctx.config
    parent = label_of(cfg.variant)
    if parent != cfg.variant_parent:
        raise StepFailed(f"editor {cfg.variant!r} is labelled {parent!r}, not {cfg.variant_parent!r}")
    parent_id = LABEL2ID[parent]
    editor = create_editor(cfg.variant, profile="mini" if cfg.name == "quick" else "paper",
                           device=device_for(cfg))
    editor.load()
    rows: list[dict[str, Any]] = []
    try:
        from tqdm.auto import tqdm

        candidates = [i for i, m in enumerate(table["models"]) if m and parent in m]
        if cfg.variant_limit:
            candidates = candidates[:cfg.variant_limit]
        for index in tqdm(candidates, desc=f"re-edit with {cfg.variant}", leave=False):
            row = table[index]
            mask = np.asarray(row["mask"], np.uint8)
            region = mask == parent_id
            if not region.any():
                continue
            prompt = next((t.get("prompt") or "" for t in (row.get("turns") or [])
                           if t.get("generator") == parent), "")
            image = row["image"].convert("RGB")
            request = EditRequest(image=image, mask=region, prompt=prompt, seed=cfg.seed + index)
            rows.append({**row, "image": composite(image, editor.inpaint(request), region)})
    finally:
        editor.unload()
    return rows


def step_tab7(ctx: PlanContext) -> dict[str, Any]:
    cfg: BenchmarkConfig = ctx.config
    family = "deeplabv3plus" if "deeplabv3plus" in cfg.families else next(iter(cfg.families))
    ckpt = _tab2_checkpoint(ctx, family, "semantic")
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
        rows.append({"table": "tab7", "family": family, "model": cfg.families[family], "setting": setting,
                     "count": scored["count"], "metrics": metrics, "checkpoint": ckpt["key"]})
    return {"rows": rows, "variant": cfg.variant, "parent": cfg.variant_parent}


def step_tab8(ctx: PlanContext) -> dict[str, Any]:
    cfg: BenchmarkConfig = ctx.config
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
            ckpt = _tab2_checkpoint(ctx, family, task)
            path = predict_checkpoint(ctx, ckpt, ["none"])["none"]
            keys = [k for k in SEG_KEYS if k.startswith(task)]
            for base, ids in sorted(groups.items()):
                rows.append(_row("tab8", score(path, ctx, ids=ids), keys, family=family,
                                 model=cfg.families[family], task=task, subset=base, checkpoint=ckpt["key"]))
    return {"rows": rows}


def step_figures(ctx: PlanContext) -> dict[str, Any]:
    from diffseg30k.experiments.figures import confusion_figure, qualitative_grid
    from diffseg30k.experiments.predictions import read_predictions
    from diffseg30k.experiments.reference import DISPLAY

    cfg: BenchmarkConfig = ctx.config
    tab2 = ctx.result("tab2")
    folder = ctx.out_dir / "figures"
    figures = []
    for key, detail in tab2["details"].items():
        ckpt = tab2["checkpoints"][key]
        if ckpt["task"] != "semantic" or not detail.get("confusion_matrix"):
            continue
        matrix = detail["confusion_matrix"]
        names = _class_names(len(matrix))
        title = f"Fig. 5: {DISPLAY.get(ckpt['family'], ckpt['family'])} ({ckpt['model']}), semantic"
        target = folder / f"fig5_confusion_{ckpt['family']}.png"
        figures.append(str(confusion_figure(matrix, names, title, target)))
    count = cfg.qualitative_images
    columns: dict[str, list[Any]] = {}
    references, ids = [], []
    abbreviations = {"segformer": "SEG", "deeplabv3plus": "DPL", "fcn8s": "FCN"}
    for key, ckpt in tab2["checkpoints"].items():
        path = ctx.out_dir / "predictions" / key / "none"
        records = []
        for record in read_predictions(path):
            if len(records) >= count:
                break
            if record.meta.get("edited_fraction", 1) > 0:
                records.append(record)
        column = f"{abbreviations.get(ckpt['family'], ckpt['family'])}-{ckpt['task'][0].upper()}"
        columns[column] = [r.prediction for r in records]
        if not ids:
            ids = [r.id for r in records]
            references = [r.reference for r in records]
    if ids:
        table = eval_table(ctx)
        position = {str(i): n for n, i in enumerate(table["id"])}
        images = [table[position[i]]["image"] for i in ids]
        title = "Fig. 6: image, ground truth, predictions (-S: generator colours; -B binary: edited in white)"
        binary = [c for c in columns if c.endswith("-B")]
        figures.append(str(qualitative_grid(images, references, columns, folder / "fig6_qualitative.png",
                                            title=title, binary_columns=binary)))
    return {"figures": [str(Path(f).relative_to(ctx.out_dir)) for f in figures]}


def class_value(per_class: Any, name: str) -> float | None:
    """One class's entry of a per-class result, keyed by name (a dict) or by id (a list)."""
    if isinstance(per_class, dict):
        return per_class.get(name, per_class.get(str(LABEL2ID.get(name))))
    if isinstance(per_class, list) and name in LABEL2ID and LABEL2ID[name] < len(per_class):
        return per_class[LABEL2ID[name]]
    return None


def _class_names(count: int) -> list[str]:
    from diffseg30k.labels import ID2LABEL

    return [ID2LABEL.get(i, str(i)) for i in range(count)]


STEPS: tuple[Step, ...] = (
    Step("data", "dataset: build or locate, fingerprint", step_data),
    Step("tab2", "Tab. 2: detectors, binary and semantic", step_tab2, ("data",)),
    Step("tab3", "Tab. 3: robustness to distortions, plain vs robust training", step_tab3, ("tab2",)),
    Step("tab4", "Tab. 4: generalization to unseen generators (6->2)", step_tab4, ("tab2",)),
    Step("tab5", "Tab. 5: image-level classification, 1 % rule vs CNNSpot/UFD", step_tab5, ("tab2",)),
    Step("tab6", "Tab. 6: image-level cross-generator generalization", step_tab6, ("tab4", "tab5")),
    Step("tab7", "Tab. 7: a generator variant scored as its parent", step_tab7, ("tab2",)),
    Step("tab8", "Tab. 8: real-base vs AI-base images", step_tab8, ("tab2",)),
    Step("figures", "Fig. 5 confusion matrices and Fig. 6 qualitative grid", step_figures, ("tab2",)),
    Step("cross", "Generalisation to other datasets (--cross-dataset)", step_cross, ("tab2",)),
)
STEP_NAMES = tuple(s.name for s in STEPS) + ("report",)


def build_plan(config: BenchmarkConfig, out_dir: str | Path, log: Any = print) -> Plan:
    """The plan of every step for ``config`` (``report`` is rendered after the steps, see :func:`run`)."""
    return Plan(STEPS, out_dir, config=config, fingerprint=config.fingerprint(), log=log)


def run_benchmark(config: BenchmarkConfig, out_dir: str | Path, steps: Sequence[str] | None = None,
                  force: bool = False, command: str | None = None, progress: bool = True,
                  log: Any = print) -> dict[str, Any]:
    """Run (or resume) the plan, then write report.md and results.json; returns the step records."""
    from diffseg30k.experiments.report import write_report

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    import torch

    if config.torch_threads or not torch.cuda.is_available():
        from diffseg30k import threads

        threads.apply(config.torch_threads)  # the one CPU rule (quick pins 1: tiny models)
    plan = build_plan(config, out_dir, log=log)
    stale_cross_record(plan, config)
    selected = [s for s in steps if s != "report"] if steps else None
    failure: StepFailed | None = None
    try:
        if selected is None or selected:
            records = plan.run(selected, force=force, progress=progress)
        else:
            records = {}
    except StepFailed as err:
        failure, records = err, {}
    records = {n: r for n in plan.names if (r := records.get(n) or _record_any(plan, n))}
    for record in records.values():
        if record.get("status") == "done":
            record.setdefault("reused", True)  # read back from disk, not run now
    write_report(out_dir, config, {n: r["result"] for n, r in records.items() if r.get("status") == "done"},
                 records, command or " ".join(["diffseg30k", *sys.argv[1:]]))
    if failure is not None:
        raise failure
    return records


def _record_any(plan: Plan, name: str) -> dict[str, Any] | None:
    """A step's latest record under this configuration, finished or failed."""
    done = plan.record(name)
    if done is not None:
        return done
    try:
        record = json.loads(plan.record_path(name).read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("fingerprint") == plan.fingerprint else None


def environment() -> dict[str, Any]:
    """Library versions and hardware the numbers were made with."""
    import importlib.metadata as md
    import platform

    versions = {}
    for package in ("diffseg30k", "torch", "transformers", "accelerate", "datasets", "diffusers", "numpy"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpus": os.cpu_count(), "versions": versions}
    try:
        import torch

        info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info
