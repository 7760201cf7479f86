"""What the table modules share: scoring a prediction set into a row, and markdown cells."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from diffseg30k.experiments.plan import PlanContext
from diffseg30k.experiments.reference import IMAGE_KEYS, SEG_KEYS
from diffseg30k.labels import LABEL2ID

TASKS = ("binary", "semantic")
SHORT = {
    "binary_accuracy": "Acc",
    "binary_miou": "mIoU",
    "binary_bf1": "bF1",
    "semantic_accuracy": "Acc",
    "semantic_miou": "mIoU",
    "semantic_bf1": "bF1",
    "image_accuracy": "Acc",
    "image_ap": "AP",
}
BIN = ("binary_accuracy", "binary_miou", "binary_bf1")
SEM = ("semantic_accuracy", "semantic_miou", "semantic_bf1")
IMG = tuple(IMAGE_KEYS)
#: Column-group prefixes of the report's headers, and the legend that explains them.
GROUP = {**dict.fromkeys(BIN, "bin"), **dict.fromkeys(SEM, "sem"), **dict.fromkeys(IMG, "img")}
LEGEND = (
    "Column groups: **bin** = binary pixel task (edited vs not), **sem** = semantic pixel task "
    "(which generator), **img** = image level (edited image or not)."
)


# ---------------------------------------------------------------------------------------- running
def score(
    path: Path, ctx: PlanContext, by: Iterable[str] = (), bootstrap: int = 0, ids: Iterable[str] | None = None
) -> dict[str, Any]:
    """Score a saved prediction set (optionally a subset, breakdowns, bootstrap intervals)."""
    from diffseg30k.experiments.evaluation import score_prediction_set

    return score_prediction_set(path, by=by, bootstrap=bootstrap, seed=ctx.config.seed, ids=ids)


def headline(metrics: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    from diffseg30k.experiments.scoring import clean

    return {k: clean(metrics.get(k)) for k in keys if k in metrics}


def row(table: str, scored: dict[str, Any], keys: Iterable[str], **labels: Any) -> dict[str, Any]:
    """A results row: its labels, image count, headline metrics (and intervals when scored)."""
    out = {"table": table, **labels, "count": scored["count"], "metrics": headline(scored["metrics"], keys)}
    if "ci" in scored:
        out["ci"] = scored["ci"]
    return out


def task_keys(task: str) -> list[str]:
    return [k for k in SEG_KEYS if k.startswith(task)]


def tab2_checkpoint(ctx: PlanContext, family: str, task: str) -> dict[str, Any]:
    """The Tab. 2 model of ``family`` and ``task`` (every later table reuses them)."""
    return ctx.result("tab2")["checkpoints"][f"{family}-{task}"]


def class_value(per_class: Any, name: str) -> float | None:
    """One class's entry of a per-class result, keyed by name (a dict) or by id (a list)."""
    if isinstance(per_class, dict):
        return per_class.get(name, per_class.get(str(LABEL2ID.get(name))))
    if isinstance(per_class, list) and name in LABEL2ID and LABEL2ID[name] < len(per_class):
        return per_class[LABEL2ID[name]]
    return None


# ---------------------------------------------------------------------------------------- rendering
def fmt(value: Any) -> str:
    return "–" if value is None else f"{float(value):.3f}"


def cell(ours: Any, ref: float | None) -> str:
    """``ours (paper)``; ``–`` marks a missing number."""
    return fmt(ours) if ref is None else f"{fmt(ours)} ({ref:.3f})"


def md_table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in body]


def header(keys: Iterable[str]) -> list[str]:
    """Metric column names with their group: ``bin Acc``, ``sem mIoU``, ``img AP``."""
    return [f"{GROUP.get(k, '')} {SHORT.get(k, k)}".strip() for k in keys]


def display_of(family: str, model: str | None = None) -> str:
    """A family's report name from its registry spec (detector or classifier), else the family."""
    from diffseg30k.models.classifiers import CLASSIFIERS
    from diffseg30k.models.registry import DETECTORS, spec_of_family

    for registry in (DETECTORS, CLASSIFIERS):
        if model and model in registry:
            return registry.get(model).display_name
    spec = spec_of_family(family)
    if spec is not None:
        return spec.display_name
    classifier = next((s for s in CLASSIFIERS.values() if s.kind == family), None)
    return classifier.display_name if classifier else family


def name(family: str, model: str | None = None) -> str:
    display = display_of(family, model)
    return f"{display} (`{model}`)" if model else display


def rows_of(results: dict[str, Any], step: str) -> list[dict[str, Any]]:
    return list((results.get(step) or {}).get("rows", []))


def find(rows: Iterable[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for candidate in rows:
        if all(candidate.get(k) == v for k, v in match.items()):
            return candidate
    return None


def metric(found: dict[str, Any] | None, key: str) -> Any:
    return None if found is None else found.get("metrics", {}).get(key)


def holdout_label(setting: str) -> str:
    from diffseg30k.experiments.reference import HOLDOUT_NAMES

    pair = tuple(setting.split("+"))
    return HOLDOUT_NAMES.get(pair, setting) if setting != "baseline" else "Baseline"


def ci_lines(found: Iterable[dict[str, Any]], label: Any) -> list[str]:
    """``- label: Acc [lo, hi], ...`` for rows that carry bootstrap intervals."""
    lines = []
    for entry in found:
        if entry.get("ci"):
            spans = ", ".join(
                f"{GROUP.get(k, '')} {SHORT.get(k, k)} [{fmt(lo)}, {fmt(hi)}]".strip()
                for k, (lo, hi) in entry["ci"].items()
                if k in entry.get("metrics", {})
            )
            if spans:
                lines.append(f"- {label(entry)}: {spans} (n = {entry['count']} images)")
    return lines
