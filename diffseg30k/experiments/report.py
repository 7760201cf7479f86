"""report.md and results.json of a benchmark run: our numbers beside the paper's, and how each was made."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from diffseg30k.data.distortions import display_name, distortion_order
from diffseg30k.experiments.plan import utc_now
from diffseg30k.experiments.tables import paper_tables, report_tables
from diffseg30k.experiments.tables.common import (  # noqa: F401  (re-exported: the report's cells)
    BIN,
    IMG,
    LEGEND,
    SEM,
    SHORT,
    cell,
    fmt,
    header,
    md_table,
)
from diffseg30k.io import atomic_write_text

__all__ = ["build_results", "render_evaluation", "render_markdown", "write_evaluation", "write_report"]

SCHEMA = "diffseg30k-benchmark/1"
_table = md_table


def table_titles() -> dict[str, str]:
    """Step name -> report heading of every registered table (paper tables and the others), in order."""
    return {table.name: table.title for table in report_tables()}


def renderers() -> dict[str, Any]:
    """Step name -> ``render(results) -> lines`` of every registered table, in order."""
    return {table.name: table.render for table in report_tables()}


def __getattr__(name: str) -> Any:
    """``TABLE_TITLES`` and ``RENDERERS`` as they were: built from the registered tables."""
    if name == "TABLE_TITLES":
        return table_titles()
    if name == "RENDERERS":
        return renderers()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _group_order(by: str, groups: dict[str, Any]) -> list[str]:
    """Breakdown groups in reading order: area bins by size, distortions as everywhere, else as given."""
    if by == "area":
        from diffseg30k.experiments.scoring import AREA_BINS

        rank = {label: i for i, (_, label) in enumerate(AREA_BINS)}
        return sorted(groups, key=lambda g: (rank.get(g, len(rank)), g))
    if by == "turns":
        return sorted(groups, key=lambda g: (not str(g).isdigit(), int(g) if str(g).isdigit() else 0, str(g)))
    return list(groups)


def render_breakdowns(results: dict[str, Any]) -> list[str]:
    details = (results.get("tab2") or {}).get("details", {})
    lines: list[str] = []
    for key, detail in details.items():
        for by, groups in (detail.get("breakdowns") or {}).items():
            task = "semantic" if key.endswith("semantic") else "binary"
            keys = SEM if task == "semantic" else BIN
            body = [[str(g), str(groups[g]["count"]), *[fmt(groups[g]["metrics"].get(k)) for k in keys]]
                    for g in _group_order(by, groups)]
            lines += ["", f"`{key}` by {by}:", "", *md_table([by, "images", *header(keys)], body)]
    return lines


#: Issue 15's learnability bar for the quick run: best binary / semantic mIoU on the mini validation split.
LEARNABLE = {"binary_miou": 0.7, "semantic_miou": 0.4}


def learnability(results: dict[str, Any]) -> str:
    """One sentence: this run's best Tab. 2 binary and semantic mIoU against :data:`LEARNABLE`."""
    rows = (results.get("tab2") or {}).get("rows") or []
    parts = []
    for key, bar in LEARNABLE.items():
        values = [r["metrics"][key] for r in rows if (r.get("metrics") or {}).get(key) is not None]
        if values:
            best = max(values)
            parts.append(f"best {key.replace('_', ' ')} {best:.3f} ({'meets' if best >= bar else 'BELOW'} "
                         f"the {bar} bar)")
    return ("Learnability in this run: " + "; ".join(parts) + ".") if parts else ""


def _caveat(config: Any, results: dict[str, Any] | None = None) -> list[str]:
    if config.name == "quick":
        steps = config.train_overrides.get("max_steps", "a few hundred")
        crop = config.train_overrides.get("crop_size", "small")
        stem = config.train_overrides.get("stem")
        stem_text = f" with the {stem.upper()} high-pass input stem" if stem not in (None, "none") else ""
        warm = (" (each semantic detector starting from the binary one)"
                if getattr(config, "semantic_from_binary", False) else "")
        learned = learnability(results or {})
        return ["> **Quick configuration.** Tiny randomly initialised detectors trained from scratch"
                f"{stem_text} for "
                f"{steps} steps{warm} on {crop}-px crops of the mini dataset, a CPU stand-in for DiffSeg30k: "
                "no diffusion model runs; edits are classical (fills, recolouring, pasted crops) passed "
                "through small *trained* per-family components (AutoencoderKL / VQModel round trips, a "
                "GLIDE-like upsampler), a seeded noise residual in the latent standing in for the sampler, "
                "and composited inside the mask (see `editor_backend` in the data). "
                "The numbers show whether detectors learn such traces and how the protocol's findings "
                "behave on them; they are **not** comparable with the paper's, which are shown in "
                "parentheses. Run `diffseg30k benchmark --config paper` on GPUs for the reproduction."
                + (f" {learned}" if learned else ""), ""]
    return ["> **Paper configuration** on the official dataset; the paper's numbers are in parentheses.", ""]


def render_markdown(config: Any, results: dict[str, Any], records: dict[str, Any], command: str | None,
                    figures: list[str]) -> str:
    data = results.get("data") or {}
    lines = [f"# DiffSeg30k benchmark report ({config.name})", "", *_caveat(config, results),
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
    lines += [LEGEND, ""]
    for table in report_tables():
        step, title = table.name, table.title
        lines += [f"## {title}", ""]
        record = records.get(step) or {}
        if step not in results:
            status = record.get("status")
            reason = record.get("error") if status == "failed" else "not run"
            lines += [f"*{reason}*", ""]
            continue
        if results[step].get("note"):
            lines += [f"*{results[step]['note']}*", ""]
        lines += table.render(results)
        lines.append("")
    if figures:
        lines += ["## Figures", "", *[f"![{Path(f).stem}]({f})" for f in figures], ""]
    breakdowns = render_breakdowns(results)
    if breakdowns:
        lines += ["## Breakdowns of the Tab. 2 models (validation metadata)", "", LEGEND, *breakdowns, ""]
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

    titles = table_titles()
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
        "tables": {step: (results.get(step) or {}).get("rows", []) for step in titles},
        "details": {"tab2": tab2.get("details", {})},
        "notes": {step: results[step]["note"] for step in titles if (results.get(step) or {}).get("note")},
        "checkpoints": collect_checkpoints(results),
        "figures": figures,
        "paper": {table.name: table.paper for table in paper_tables()},
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


def write_evaluation(report: str | Path, scores: dict[str, Any], meta: dict[str, Any], command: str | None
                     ) -> tuple[str, list[Path]]:
    """Write ``evaluation.json`` and ``evaluation.md`` (atomically) into ``report``; returns the
    markdown and the two paths (what ``diffseg30k evaluate`` prints)."""
    report = Path(report)
    payload = {"command": command, **meta, "scores": scores}
    markdown = render_evaluation(scores, meta)
    atomic_write_text(report / "evaluation.json", json.dumps(payload, indent=2, default=str) + "\n")
    atomic_write_text(report / "evaluation.md", markdown)
    return markdown, [report / "evaluation.json", report / "evaluation.md"]


def render_evaluation(scores: dict[str, Any], meta: dict[str, Any]) -> str:
    """Markdown summary of ``diffseg30k evaluate``: one row per distortion (Baseline first, then the
    one fixed order), then intervals and breakdowns, every metric column named with its group."""
    lines = ["# DiffSeg30k evaluation", ""]
    lines += [f"- {k}: `{v}`" for k, v in meta.items() if v is not None and not isinstance(v, dict | list)]
    lines.append("")
    task = next(iter(scores.values()))["task"] if scores else "semantic"
    keys = [*BIN, *(SEM if task == "semantic" else ()), *IMG]
    ordered = sorted(scores, key=distortion_order)
    body = [[display_name(n), str(scores[n]["count"]), *[fmt(scores[n]["metrics"].get(k)) for k in keys]]
            for n in ordered]
    lines += [LEGEND, "", *md_table(["distortion", "images", *header(keys)], body)]
    lines += _imdl_table(scores, ordered)
    for name in ordered:
        s = scores[name]
        if s.get("ci"):
            spec = s.get("ci_spec", {})
            level = int(spec.get("confidence", 0.95) * 100)
            lines += ["", f"{display_name(name)}: {level} % "
                      f"bootstrap intervals ({spec.get('resamples')} resamples over images):", ""]
            lines += [f"- {header([k])[0]}: [{fmt(lo)}, {fmt(hi)}]" for k, (lo, hi) in s["ci"].items()]
        for by, groups in (s.get("breakdowns") or {}).items():
            gkeys = [k for k in keys if k in next(iter(groups.values()))["metrics"]]
            body = [[g, str(groups[g]["count"]), *[fmt(groups[g]["metrics"].get(k)) for k in gkeys]]
                    for g in _group_order(by, groups)]
            lines += ["", f"{display_name(name)} by {by}:", "",
                      *md_table([by, "images", *header(gkeys)], body)]
    return "\n".join(lines) + "\n"



IMDL_COLUMNS = {"pixel_f1_per_image": "pixel F1", "pixel_iou_per_image": "pixel IoU",
                "pixel_auc": "pixel AUC", "pixel_f1_best_per_image": "pixel F1 (best thr.)",
                "image_auc": "img AUC", "image_f1": "img F1", "image_balanced_accuracy": "img bal. Acc",
                "image_mcc": "img MCC"}


def _imdl_table(scores: dict[str, Any], ordered: list[str]) -> list[str]:
    """The IMDL-convention keys, one row per distortion (absent when no result carries them)."""
    rows = [name for name in ordered if "pixel_f1_per_image" in scores[name].get("metrics", {})]
    if not rows:
        return []
    body = [[display_name(name), str(scores[name]["count"]),
             *[fmt(scores[name]["metrics"].get(k)) for k in IMDL_COLUMNS]] for name in rows]
    return ["", "IMDL conventions (binary view; pixel F1/IoU per image over edited images, pixel AUC "
            "pooled over pixels, best threshold per image; see the metric card):", "",
            *md_table(["distortion", "images", *IMDL_COLUMNS.values()], body)]
