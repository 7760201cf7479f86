"""report.md and results.json of a benchmark run: our numbers beside the paper's, and how each was made."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from diffseg30k.data.distortions import DISPLAY as DISTORTION_DISPLAY
from diffseg30k.experiments import reference as paper
from diffseg30k.experiments.cross_dataset import render_cross
from diffseg30k.experiments.plan import utc_now
from diffseg30k.io import atomic_write_text

SCHEMA = "diffseg30k-benchmark/1"
SHORT = {"binary_accuracy": "Acc", "binary_miou": "mIoU", "binary_bf1": "bF1", "semantic_accuracy": "Acc",
         "semantic_miou": "mIoU", "semantic_bf1": "bF1", "image_accuracy": "Acc", "image_ap": "AP"}
BIN = ("binary_accuracy", "binary_miou", "binary_bf1")
SEM = ("semantic_accuracy", "semantic_miou", "semantic_bf1")
TABLE_TITLES = {
    "tab2": "Tab. 2: segmentation baselines (binary and semantic)",
    "tab3": "Tab. 3: robustness to image transformations",
    "tab4": "Tab. 4: generalization to unseen generators (binary segmentation)",
    "tab5": "Tab. 5: whole-image classification",
    "tab6": "Tab. 6: cross-generator generalization, image level",
    "tab7": "Tab. 7: a generator variant scored as its parent",
    "tab8": "Tab. 8: real-base vs AI-base images",
    "cross": "Generalisation to other datasets (binary task on binary-only sets)",
}


def fmt(value: Any) -> str:
    return "–" if value is None else f"{float(value):.3f}"


def cell(ours: Any, ref: float | None) -> str:
    """``ours (paper)``; ``–`` marks a missing number."""
    return fmt(ours) if ref is None else f"{fmt(ours)} ({ref:.3f})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _name(family: str, model: str | None = None) -> str:
    display = paper.DISPLAY.get(family, family)
    return f"{display} (`{model}`)" if model else display


def _rows(results: dict[str, Any], step: str) -> list[dict[str, Any]]:
    return list((results.get(step) or {}).get("rows", []))


def _by(rows: Iterable[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def _metric(row: dict[str, Any] | None, key: str) -> Any:
    return None if row is None else row.get("metrics", {}).get(key)


def render_tab2(results: dict[str, Any]) -> list[str]:
    rows = _rows(results, "tab2")
    out = []
    for family in dict.fromkeys(r["family"] for r in rows):
        b, s = _by(rows, family=family, task="binary"), _by(rows, family=family, task="semantic")
        model = (b or s or {}).get("model")
        ref = paper.TAB2.get(family, {})
        out.append([_name(family, model), *[cell(_metric(b, k), ref.get(k)) for k in BIN],
                    *[cell(_metric(s, k), ref.get(k)) for k in SEM]])
    lines = _table(["model", "bin Acc", "bin mIoU", "bin bF1", "sem Acc", "sem mIoU", "sem bF1"], out)
    ci_lines = []
    for row in rows:
        if row.get("ci"):
            keys = BIN if row["task"] == "binary" else SEM
            spans = ", ".join(f"{SHORT[k]} [{fmt(row['ci'][k][0])}, {fmt(row['ci'][k][1])}]"
                              for k in keys if k in row["ci"])
            ci_lines.append(f"- {_name(row['family'])} {row['task']}: {spans} (n = {row['count']} images)")
    if ci_lines:
        lines += ["", "95 % bootstrap intervals (images resampled):", "", *ci_lines]
    return lines


def render_breakdowns(results: dict[str, Any]) -> list[str]:
    details = (results.get("tab2") or {}).get("details", {})
    lines: list[str] = []
    for key, detail in details.items():
        for by, groups in (detail.get("breakdowns") or {}).items():
            task = "semantic" if key.endswith("semantic") else "binary"
            keys = SEM if task == "semantic" else BIN
            body = [[str(g), str(v["count"]), *[fmt(v["metrics"].get(k)) for k in keys]]
                    for g, v in groups.items()]
            lines += ["", f"`{key}` by {by}:", "", *_table([by, "images", *[SHORT[k] for k in keys]], body)]
    return lines


def render_tab3(results: dict[str, Any]) -> list[str]:
    rows = _rows(results, "tab3")
    out = []
    combos = dict.fromkeys((r["family"], r["training"], r["distortion"]) for r in rows)
    for family, training, distortion in combos:
        b = _by(rows, family=family, training=training, distortion=distortion, task="binary")
        s = _by(rows, family=family, training=training, distortion=distortion, task="semantic")
        ref = paper.TAB3.get(family, {}).get(distortion, {}) if training == "plain" else {}
        out.append([_name(family), training, DISTORTION_DISPLAY.get(distortion, distortion),
                    *[cell(_metric(b, k), ref.get(k)) for k in BIN],
                    *[cell(_metric(s, k), ref.get(k)) for k in SEM]])
    return _table(["model", "training", "distortion", "bin Acc", "bin mIoU", "bin bF1", "sem Acc", "sem mIoU",
                   "sem bF1"], out)


def _holdout_label(setting: str) -> str:
    pair = tuple(setting.split("+"))
    return paper.HOLDOUT_NAMES.get(pair, setting) if setting != "baseline" else "Baseline"


def render_tab4(results: dict[str, Any]) -> list[str]:
    out = []
    for row in _rows(results, "tab4"):
        ref = paper.TAB4.get(row["family"], {}).get(row["setting"], {})
        seen = row.get("seen_model_same_images") or {}
        out.append([_name(row["family"]), _holdout_label(row["setting"]), str(row["count"]),
                    *[cell(_metric(row, k), ref.get(k)) for k in BIN], fmt(seen.get("binary_miou"))])
    return _table(["model", "generalize to", "images", "Acc", "mIoU", "bF1",
                   "mIoU of the 8-generator model, same images"], out)


def render_tab5(results: dict[str, Any]) -> list[str]:
    out = []
    for row in _rows(results, "tab5"):
        ref = paper.TAB5.get(row["family"], {}) if row.get("task") in (None, "binary") else {}
        how = "classifier" if row.get("task") is None else f"{row['task']} segmenter, 1 % rule"
        out.append([_name(row["family"], row.get("model")), how,
                    *[cell(_metric(row, k), ref.get(k)) for k in ("image_accuracy", "image_ap")]])
    return _table(["model", "decision", "Acc", "AP"], out)


def render_tab6(results: dict[str, Any]) -> list[str]:
    out = []
    for row in _rows(results, "tab6"):
        ref = paper.TAB6.get(row["family"], {}).get(row["setting"], {})
        out.append([_name(row["family"]), _holdout_label(row["setting"]), str(row["count"]),
                    *[cell(_metric(row, k), ref.get(k)) for k in ("image_accuracy", "image_ap")]])
    return _table(["model", "generalize to", "images", "Acc", "AP"], out)


def render_tab7(results: dict[str, Any]) -> list[str]:
    data = results.get("tab7") or {}
    parent = data.get("parent", "sdxl")
    out = []
    for row in data.get("rows", []):
        ref = paper.TAB7.get(row["family"], {}).get(row["setting"], {}).get("sdxl_iou")
        out.append([_name(row["family"]), row["setting"], str(row["count"]),
                    cell(row["metrics"].get(f"{parent}_iou"), ref)])
    return _table(["model", "edit model (in val)", "images", f"IoU ({parent})"], out)


def render_tab8(results: dict[str, Any]) -> list[str]:
    rows = _rows(results, "tab8")
    out = []
    for family, subset in dict.fromkeys((r["family"], r["subset"]) for r in rows):
        b = _by(rows, family=family, subset=subset, task="binary")
        s = _by(rows, family=family, subset=subset, task="semantic")
        ref = paper.TAB8.get(family, {}).get(subset, {})
        count = (b or s or {}).get("count")
        out.append([_name(family), f"{subset}-base", str(count),
                    *[cell(_metric(b, k), ref.get(k)) for k in BIN],
                    *[cell(_metric(s, k), ref.get(k)) for k in SEM]])
    return _table(["model", "subset", "images", "bin Acc", "bin mIoU", "bin bF1", "sem Acc", "sem mIoU",
                   "sem bF1"], out)


RENDERERS = {"tab2": render_tab2, "tab3": render_tab3, "tab4": render_tab4, "tab5": render_tab5,
             "tab6": render_tab6, "tab7": render_tab7, "tab8": render_tab8, "cross": render_cross}


def _caveat(config: Any) -> list[str]:
    if config.name == "quick":
        steps = config.train_overrides.get("max_steps", "a few hundred")
        crop = config.train_overrides.get("crop_size", "small")
        return ["> **Quick configuration.** Tiny randomly initialised detectors trained from scratch for "
                f"{steps} steps on {crop}-px crops of the mini dataset (made by tiny random diffusion "
                "editors on CPU). "
                "The numbers check that every stage of the protocol runs end to end; they are **not** "
                "comparable with the paper's, which are shown in parentheses. Run `diffseg30k benchmark "
                "--config paper` on GPUs for the reproduction.", ""]
    return ["> **Paper configuration** on the official dataset; the paper's numbers are in parentheses.", ""]


def render_markdown(config: Any, results: dict[str, Any], records: dict[str, Any], command: str | None,
                    figures: list[str]) -> str:
    data = results.get("data") or {}
    lines = [f"# DiffSeg30k benchmark report ({config.name})", "", *_caveat(config),
             f"- command: `{command}`" if command else "- command: (Python API)",
             f"- dataset: {data.get('origin', '–')} → `{data.get('path', '–')}`",
             f"- dataset fingerprint (sha256 of the parquet shards): `{data.get('fingerprint', '–')}`",
             f"- revision: {data.get('revision') or 'local / latest'}; seed {config.seed}; "
             f"config fingerprint `{config.fingerprint()}`",
             "- cells: ours (paper); metrics per DESIGN.md (dataset-level confusion, per-image bF1, "
             "1 % rule)",
             ""]
    splits = data.get("splits") or {}
    if splits:
        lines += ["Splits: " + ", ".join(f"{k} {v['rows']} images ({v.get('unedited', '?')} unedited)"
                                         for k, v in splits.items()), ""]
    for step, title in TABLE_TITLES.items():
        lines += [f"## {title}", ""]
        record = records.get(step) or {}
        if step not in results:
            status = record.get("status")
            reason = record.get("error") if status == "failed" else "not run"
            lines += [f"*{reason}*", ""]
            continue
        if results[step].get("note"):
            lines += [f"*{results[step]['note']}*", ""]
        lines += RENDERERS[step](results)
        lines.append("")
    if figures:
        lines += ["## Figures", "", *[f"![{Path(f).stem}]({f})" for f in figures], ""]
    breakdowns = render_breakdowns(results)
    if breakdowns:
        lines += ["## Breakdowns of the Tab. 2 models (validation metadata)", *breakdowns, ""]
    lines += ["## Steps", "", *_table(["step", "status", "wall time (s)", "finished"], [
        [name, rec.get("status", "–") + (" (reused)" if rec.get("reused") else ""),
         f"{rec.get('wall_s', 0):.1f}", rec.get("finished", "–")] for name, rec in records.items()]), ""]
    return "\n".join(lines)


def collect_checkpoints(results: dict[str, Any]) -> dict[str, Any]:
    checkpoints: dict[str, Any] = {}
    for result in results.values():
        checkpoints.update((result or {}).get("checkpoints", {}))
    return checkpoints


def build_results(config: Any, results: dict[str, Any], records: dict[str, Any], command: str | None,
                  figures: list[str]) -> dict[str, Any]:
    """The machine-readable record: every number, with what it was made from."""
    from diffseg30k.experiments.benchmark import environment

    tab2 = results.get("tab2") or {}
    checkpoints = tab2.get("checkpoints", {})
    spec = {checkpoints[key]["task"]: d["spec"] for key, d in tab2.get("details", {}).items()
            if d.get("spec") and key in checkpoints} or None
    steps = {name: {k: rec.get(k) for k in ("status", "wall_s", "started", "finished", "reused", "error")
                    if rec.get(k) is not None} for name, rec in records.items()}
    return {
        "schema": SCHEMA,
        "generated": utc_now(),
        "command": command,
        "config_name": config.name,
        "config": config.to_dict(),
        "config_fingerprint": config.fingerprint(),
        "seeds": {"data": config.seed, "training": config.seed, "bootstrap": config.seed},
        "dataset": results.get("data"),
        "metric_spec": spec,
        "environment": environment(),
        "steps": steps,
        "total_wall_s": round(sum(r.get("wall_s") or 0 for r in records.values()), 3),
        "tables": {step: (results.get(step) or {}).get("rows", []) for step in TABLE_TITLES},
        "details": {"tab2": tab2.get("details", {})},
        "notes": {step: results[step]["note"] for step in TABLE_TITLES
                  if (results.get(step) or {}).get("note")},
        "checkpoints": collect_checkpoints(results),
        "figures": figures,
        "paper": {step: getattr(paper, step.upper(), None) for step in TABLE_TITLES},
    }


def write_report(out_dir: str | Path, config: Any, results: dict[str, Any], records: dict[str, Any],
                 command: str | None) -> list[Path]:
    """Write ``report.md`` and ``results.json`` (atomically) into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    figures = list((results.get("figures") or {}).get("figures", []))
    payload = build_results(config, results, records, command, figures)
    atomic_write_text(out_dir / "results.json", json.dumps(payload, indent=2, default=str) + "\n")
    atomic_write_text(out_dir / "report.md", render_markdown(config, results, records, command, figures))
    return [out_dir / "report.md", out_dir / "results.json"]


def render_evaluation(scores: dict[str, Any], meta: dict[str, Any]) -> str:
    """Markdown summary of ``diffseg30k evaluate``: one row per distortion, then breakdowns and CIs."""
    lines = ["# DiffSeg30k evaluation", ""]
    lines += [f"- {k}: `{v}`" for k, v in meta.items() if v is not None and not isinstance(v, dict | list)]
    lines.append("")
    task = next(iter(scores.values()))["task"] if scores else "semantic"
    keys = [*BIN, *(SEM if task == "semantic" else ()), "image_accuracy", "image_ap"]
    header = ["distortion", "images", *[("sem " if k in SEM else "bin " if k in BIN else "img ") + SHORT[k]
                                        for k in keys]]
    body = [[DISTORTION_DISPLAY.get(name, name), str(s["count"]), *[fmt(s["metrics"].get(k)) for k in keys]]
            for name, s in scores.items()]
    lines += _table(header, body)
    for name, s in scores.items():
        if s.get("ci"):
            spec = s.get("ci_spec", {})
            level = int(spec.get("confidence", 0.95) * 100)
            lines += ["", f"{DISTORTION_DISPLAY.get(name, name)}: {level} % "
                      f"bootstrap intervals ({spec.get('resamples')} resamples over images):", ""]
            lines += [f"- {k}: [{fmt(lo)}, {fmt(hi)}]" for k, (lo, hi) in s["ci"].items()]
        for by, groups in (s.get("breakdowns") or {}).items():
            gkeys = [k for k in keys if k in next(iter(groups.values()))["metrics"]]
            body = [[g, str(v["count"]), *[fmt(v["metrics"].get(k)) for k in gkeys]]
                    for g, v in groups.items()]
            lines += ["", f"{DISTORTION_DISPLAY.get(name, name)} by {by}:", "",
                      *_table([by, "images", *[SHORT[k] for k in gkeys]], body)]
    return "\n".join(lines) + "\n"
