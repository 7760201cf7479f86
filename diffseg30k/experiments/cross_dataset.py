"""Cross-dataset evaluation: DiffSeg30k detectors on other localized-edit test sets.

:func:`open_eval_dataset` resolves any dataset source (a path in any layout, a preset name such as
``cocoglide``, a Hub id), picks the split to score and says whether the set is binary-only; on a
binary-only set every detector is scored on the binary task (a semantic detector's generator labels
are collapsed to "edited"). The benchmark's ``cross`` step ("generalisation to other datasets") scores
each trained Tab. 2 detector on the sets of ``--cross-dataset`` and keeps every key the metric returns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffseg30k.experiments.evaluation import Predictor
from diffseg30k.experiments.plan import PlanContext
from diffseg30k.experiments.tables import ReportTable, register_report_table
from diffseg30k.labels import to_binary

_SHARD = re.compile(r"^(?P<split>\w+?)-\d{5}-of-\d{5}\.parquet$")


@dataclass
class EvalDataset:
    """A dataset opened for scoring: where it lives, its split, and what the conversion skipped."""

    source: str
    location: str
    split: str
    binary_only: bool
    table: Any = None
    skipped: list[dict[str, str]] = field(default_factory=list)

    def task_for(self, model_task: str) -> str:
        """The task a model trained on ``model_task`` is scored on here."""
        return "binary" if self.binary_only else model_task


def split_names(location: str | Path) -> list[str] | None:
    """The splits of a converted folder (from its shard names); None when not a local folder."""
    data = Path(location) / "data"
    if not data.is_dir():
        return None
    return sorted({m["split"] for p in data.glob("*.parquet") if (m := _SHARD.match(p.name))})


def choose_split(source: str, location: str, split: str | None) -> str:
    """``split`` if given; else validation, the preset's default, or the only split; else an error."""
    from diffseg30k.data.presets import find_preset

    names = split_names(location)
    if split is not None:
        split = {"val": "validation", "valid": "validation"}.get(split, split)
        if names is not None and split not in names:
            raise ValueError(f"{source}: no split {split!r} (splits: {', '.join(names)})")
        return split
    preset = find_preset(source)
    for candidate in ("validation", preset.default_split if preset else None):
        if candidate and (names is None or candidate in names):
            return candidate
    if names and len(names) == 1:
        return names[0]
    raise ValueError(f"{source}: give --split (splits: {', '.join(names or [])})")


def open_eval_dataset(source: str, split: str | None = None, revision: str | None = None,
                      on_error: str = "raise", progress: bool = True) -> EvalDataset:
    """Resolve, convert when needed, and load one split of ``source`` for scoring."""
    from diffseg30k.data.load import is_binary_only, load_benchmark, resolve_source

    location = resolve_source(source, revision, progress=progress, on_error=on_error)
    binary_only = is_binary_only(location)
    chosen = choose_split(str(source), location, split)
    table = load_benchmark(location, task="binary" if binary_only else "semantic", split=chosen,
                           revision=revision if location == source else None, progress=progress)
    record = Path(location) / "conversion.json"
    skipped = json.loads(record.read_text()).get("skipped", []) if record.is_file() else []
    return EvalDataset(str(source), str(location), chosen, binary_only, table, skipped)


def binary_predictor(predictor: Predictor) -> Predictor:
    """A predictor whose label maps are collapsed to the binary task (every generator -> edited); the
    rest of each output (image score, edited probability when given) passes through."""
    def predict(images: list) -> list[tuple]:
        return [(to_binary(output[0]), *output[1:]) for output in predictor(images)]
    return predict


def scalar_metrics(metrics: dict[str, Any], task: str) -> dict[str, Any]:
    """Every scalar key of a metric result that applies to ``task`` (whatever keys the metric has)."""
    skip = ("semantic_",) if task == "binary" else ()
    return {k: v for k, v in metrics.items() if (v is None or isinstance(v, int | float))
            and not isinstance(v, bool) and not k.startswith(skip)}


# -------------------------------------------------------------------------------------------- benchmark step
def parse_cross(specs: Sequence[str]) -> list[tuple[str, str | None]]:
    """``NAME[:SPLIT]`` items (a Windows drive letter is not a split)."""
    out = []
    for spec in specs:
        name, _, split = spec.rpartition(":") if re.search(r":\w+$", spec) and not re.match(
            r"^[A-Za-z]:[\\/]", spec) else (spec, "", "")
        out.append((name or spec, split or None))
    return out


def _dataset_fingerprint(location: str) -> str:
    from diffseg30k.experiments.bench_data import _dataset_fingerprint as shards_sha

    path = Path(location)
    return shards_sha(path) if (path / "data").is_dir() else location


def _predict(ctx: PlanContext, ckpt: dict[str, Any], data: EvalDataset, fingerprint: str) -> Path:
    """A checkpoint's prediction set on one cross dataset (reused when saved for the same data)."""
    from diffseg30k.detector import Detector
    from diffseg30k.experiments.artifacts import current_set, device_for
    from diffseg30k.experiments.evaluation import detector_predictor, predict_dataset

    cfg = ctx.config
    slug = re.sub(r"[^\w.-]+", "_", f"{data.source}-{data.split}")
    root = ctx.out_dir / "predictions" / f"{ckpt['key']}-cross-{slug}"
    if not current_set(root / "none", ckpt.get("sha256"), fingerprint, len(data.table)):
        detector = Detector.from_pretrained(ckpt["path"], device=device_for(cfg))
        predictor = detector_predictor(detector, cfg.eval_batch_size)
        task = data.task_for(ckpt["task"])
        if task != ckpt["task"]:
            predictor = binary_predictor(predictor)
        meta = {"task": task, "checkpoint": ckpt["key"], "checkpoint_sha256": ckpt.get("sha256"),
                "id2label": detector.id2label, "dataset_fingerprint": fingerprint, "split": data.split,
                "dataset": data.source}
        from diffseg30k.data.distortions import parse_distortions

        predict_dataset(predictor, data.table, parse_distortions(["none"]), root, meta,
                        batch_size=cfg.eval_batch_size, total=len(data.table),
                        desc=f"predict {ckpt['key']} on {data.source}")
    return root / "none"


def step_cross(ctx: PlanContext) -> dict[str, Any]:
    """Generalisation to other datasets: each Tab. 2 detector on each ``cross_datasets`` set."""
    from diffseg30k.experiments.evaluation import score_prediction_set

    cfg = ctx.config
    specs = list(getattr(cfg, "cross_datasets", ()) or ())
    if not specs:
        return {"rows": [], "datasets": [], "note": "no other dataset given (--cross-dataset NAMES)"}
    rows = []
    checkpoints = ctx.result("tab2")["checkpoints"]
    for name, split in parse_cross(specs):
        data = open_eval_dataset(name, split, progress=False)
        if cfg.eval_limit and len(data.table) > cfg.eval_limit:  # the same cap as the DiffSeg30k tables
            data.table = data.table.select(range(cfg.eval_limit))
        fingerprint = _dataset_fingerprint(data.location)
        for ckpt in checkpoints.values():
            scored = score_prediction_set(_predict(ctx, ckpt, data, fingerprint), seed=cfg.seed)
            rows.append({"table": "cross", "dataset": name, "split": data.split, "family": ckpt["family"],
                         "model": ckpt["model"], "task": ckpt["task"], "scored_as": scored["task"],
                         "count": scored["count"], "checkpoint": ckpt["key"],
                         "metrics": scalar_metrics(scored["metrics"], scored["task"])})
    return {"rows": rows, "datasets": specs}


def stale_cross_record(plan: Any, config: Any) -> None:
    """Forget a finished ``cross`` step made for other datasets (they are not in the config fingerprint)."""
    record = plan.record("cross")
    wanted = list(getattr(config, "cross_datasets", ()) or ())
    if record is not None and record.get("result", {}).get("datasets") != wanted:
        plan.record_path("cross").unlink(missing_ok=True)


def render_cross(results: dict[str, Any]) -> list[str]:
    """The "generalisation to other datasets" table: one row per dataset x detector, every metric key."""
    from diffseg30k.experiments.tables.common import fmt, md_table, name

    rows = (results.get("cross") or {}).get("rows", [])
    if not rows:
        return []
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row["metrics"] if k not in keys]
    body = [[row["dataset"], row["split"], name(row["family"], row.get("model")), row["task"],
             str(row["count"]), *[fmt(row["metrics"].get(k)) for k in keys]] for row in rows]
    return md_table(["dataset", "split", "model", "trained on", "images", *keys], body)


#: The report table and its benchmark step, after ``figures`` (no paper numbers: not in the paper).
TABLE = register_report_table(ReportTable(
    "cross", 1_010.0, "Generalisation to other datasets (binary task on binary-only sets)",
    "Generalisation to other datasets (--cross-dataset)", step_cross, render_cross,
    forget_stale=stale_cross_record,
))
