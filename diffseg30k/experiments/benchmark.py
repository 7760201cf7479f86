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
``families``  every family side by side: clean mIoU, robustness ratios (paired bootstrap), a hold-out
``cross``  generalisation to other datasets: the Tab. 2 models on each ``--cross-dataset`` set
``report``  report.md and results.json

Each step is registered in :data:`diffseg30k.experiments.steps.STEPS` (the tables by their module
under :mod:`diffseg30k.experiments.tables`, ``families`` by :mod:`diffseg30k.experiments.families`,
``cross`` by :mod:`diffseg30k.experiments.cross_dataset`, ``data`` and ``figures`` here), so a new
table is a new module. Checkpoints and prediction sets live under the output folder and are reused
by later runs, so an interrupted step resumes its unfinished trainings (``resume=True``) and skips
finished ones.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diffseg30k.experiments.bench_data import eval_table, step_data
from diffseg30k.experiments.config import BenchmarkConfig
from diffseg30k.experiments.plan import Plan, PlanContext, Step, StepFailed
from diffseg30k.experiments.steps import STEPS, plan_steps
from diffseg30k.experiments.tables.common import TASKS, class_value, display_of, score  # noqa: F401

__all__ = ["STEPS", "build_plan", "environment", "plan_steps", "run_benchmark", "step_names"]


def step_figures(ctx: PlanContext) -> dict[str, Any]:
    from diffseg30k.experiments.figures import confusion_figure, qualitative_grid
    from diffseg30k.experiments.predictions import read_predictions
    from diffseg30k.models.registry import DETECTORS

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
        title = f"Fig. 5: {display_of(ckpt['family'], ckpt['model'])} ({ckpt['model']}), semantic"
        target = folder / f"fig5_confusion_{ckpt['family']}.png"
        figures.append(str(confusion_figure(matrix, names, title, target)))
    count = cfg.qualitative_images
    columns: dict[str, list[Any]] = {}
    references, ids = [], []
    for key, ckpt in tab2["checkpoints"].items():
        path = ctx.out_dir / "predictions" / key / "none"
        records = []
        for record in read_predictions(path):
            if len(records) >= count:
                break
            if record.meta.get("edited_fraction", 1) > 0:
                records.append(record)
        short = DETECTORS.get(ckpt["model"]).short_name if ckpt["model"] in DETECTORS else ckpt["family"]
        column = f"{short}-{ckpt['task'][0].upper()}"
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


def _class_names(count: int) -> list[str]:
    from diffseg30k.labels import ID2LABEL

    return [ID2LABEL.get(i, str(i)) for i in range(count)]


STEPS.register(Step("data", "dataset: build or locate, fingerprint", step_data, order=0.0))
STEPS.register(Step("figures", "Fig. 5 confusion matrices and Fig. 6 qualitative grid", step_figures,
                    ("tab2",), order=1_000.0))


def step_names() -> tuple[str, ...]:
    """Every step a ``--steps`` list may name: the registered steps, then ``report``."""
    return tuple(s.name for s in plan_steps()) + ("report",)


def __getattr__(name: str) -> Any:
    """``STEP_NAMES``: :func:`step_names` when asked (the registry may grow after import)."""
    if name == "STEP_NAMES":
        return step_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_plan(config: BenchmarkConfig, out_dir: str | Path, log: Any = print) -> Plan:
    """The plan of every step for ``config`` (``report`` is rendered after the steps, see :func:`run`)."""
    config.validate()
    return Plan(plan_steps(), out_dir, config=config, fingerprint=config.fingerprint(), log=log)


def run_benchmark(config: BenchmarkConfig, out_dir: str | Path, steps: Sequence[str] | None = None,
                  force: bool = False, command: str | None = None, progress: bool = True,
                  log: Any = print) -> dict[str, Any]:
    """Run (or resume) the plan, then write report.md and results.json; returns the step records. One
    run per output folder: a second one raises :class:`~diffseg30k.outputs.OutputBusy` at once."""
    from diffseg30k.outputs import output_lock

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with output_lock(out_dir, "diffseg30k benchmark"):
        return _run_locked(config, out_dir, steps, force, command, progress, log)


def _run_locked(config: BenchmarkConfig, out_dir: Path, steps: Sequence[str] | None, force: bool,
                command: str | None, progress: bool, log: Any) -> dict[str, Any]:
    import torch

    from diffseg30k.experiments.report import write_report

    if config.torch_threads or not torch.cuda.is_available():
        from diffseg30k import threads

        threads.apply(config.torch_threads)  # the one CPU rule (quick pins 1: tiny models)
    plan = build_plan(config, out_dir, log=log)
    _forget_stale_records(plan, config)
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


def _forget_stale_records(plan: Plan, config: BenchmarkConfig) -> None:
    """Let each report table drop a finished record made stale by inputs outside the fingerprint
    (``cross``: another ``--cross-dataset`` list)."""
    from diffseg30k.experiments.tables import REPORT_TABLES

    for table in REPORT_TABLES.values():
        if table.forget_stale is not None:
            table.forget_stale(plan, config)


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
