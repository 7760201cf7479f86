"""What the benchmark's steps make once and reuse: trained checkpoints (detectors and classifiers) and
saved prediction sets. A folder made under other settings is removed, never resumed."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffseg30k.data.distortions import parse_distortions
from diffseg30k.experiments.bench_data import eval_table, split_table
from diffseg30k.experiments.config import BenchmarkConfig
from diffseg30k.experiments.plan import PlanContext, StepFailed
from diffseg30k.experiments.scoring import clean
from diffseg30k.io import atomic_write_text, sha256_file


def _checkpoint_info(key: str, path: Path) -> dict[str, Any]:
    weights = path / "model.safetensors"
    return {"key": key, "path": str(path), "sha256": sha256_file(weights) if weights.is_file() else None}


def train_config(cfg: BenchmarkConfig, dataset: str, model: str, task: str, out: Path,
                 holdout: Sequence[str] = (), augment: str | None = None,
                 init_from: str | None = None) -> Any:
    """The one :class:`~diffseg30k.training.config.TrainConfig` of a benchmark training, whichever
    launcher runs it (in this process, or ``accelerate launch`` reading it from a JSON file)."""
    from diffseg30k.training.config import TrainConfig

    return TrainConfig(dataset=dataset, out=Path(out), model=model, task=task, preset=cfg.train_preset,
                       from_scratch=cfg.from_scratch, holdout=tuple(holdout), extra_real=cfg.extra_real,
                       augment=augment, seed=cfg.seed, resume=True, init_from=init_from,
                       **{"mixed_precision": cfg.mixed_precision, **cfg.train_overrides})


#: The file ``accelerate launch -m diffseg30k train --config`` reads, inside the training folder.
TRAIN_CONFIG_FILE = "train-config.json"
#: Fields repeated as flags on the launcher's command line, so a log shows what trains.
_READABLE = ("dataset", "model", "task", "out", "preset", "seed", "holdout", "augment", "resume")


def train_command(cfg: BenchmarkConfig, dataset: str, model: str, task: str, out: Path,
                  holdout: Sequence[str] = (), augment: str | None = None,
                  init_from: str | None = None) -> list[str]:
    """The ``accelerate launch`` command line the paper config trains with (one per detector).

    The whole configuration travels as ``--config OUT/train-config.json`` (written by
    :func:`train_detector`); the readable flags repeat some of its fields with the same values."""
    from diffseg30k.cli.schema import to_flags

    config = train_config(cfg, dataset, model, task, out, holdout, augment, init_from)
    return ["accelerate", "launch", "--num_processes", str(cfg.num_processes or _gpu_count()),
            "--mixed_precision", config.mixed_precision, "-m", "diffseg30k", "train",
            "--config", str(Path(out) / TRAIN_CONFIG_FILE), *to_flags(config, _READABLE)]


def _gpu_count() -> int:
    try:
        import torch

        return max(1, torch.cuda.device_count())
    except ImportError:
        return 1


def prepare_folder(folder: Path, settings: dict[str, Any]) -> None:
    """Make ``folder`` hold work of ``settings`` only: a folder made under other settings (or of
    unknown origin) is removed, never resumed; the settings are recorded before any work starts."""
    path = folder / "benchmark-settings.json"
    wanted = json.loads(json.dumps(settings, default=str))
    if folder.exists():
        try:
            same = json.loads(path.read_text()) == wanted
        except (OSError, ValueError):
            same = False
        if same:
            return
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    path.write_text(json.dumps(wanted, indent=2))


@dataclass(frozen=True)
class TrainingJob:
    """One detector training of the plan: family, task and setting (hold-out pair, augmentation)."""

    family: str
    task: str
    holdout: tuple[str, ...] = ()
    augment: str | None = None

    @property
    def key(self) -> str:
        holdout = ["holdout", *self.holdout] if self.holdout else []
        return "-".join([self.family, self.task, *holdout, *([self.augment] if self.augment else [])])

    def warm_start(self, cfg: BenchmarkConfig) -> TrainingJob | None:
        """The job whose detector this one starts from (``semantic_from_binary``), or None."""
        if cfg.semantic_from_binary and self.task == "semantic" and not self.holdout:
            return TrainingJob(self.family, "binary")
        return None


@dataclass
class PreparedTraining:
    """A job's folder (settings recorded), its TrainConfig and its warm start's checkpoint info."""

    job: TrainingJob
    folder: Path
    config: Any
    start: dict[str, Any] | None

    @property
    def marker(self) -> Path:
        return self.folder / "benchmark-done.json"

    def finish(self, best: Path) -> dict[str, Any]:
        """Record the trained checkpoint (the marker later calls reuse) and return its info."""
        job = self.job
        info = {**_checkpoint_info(job.key, Path(best)), "model": self.config.model, "family": job.family,
                "task": job.task, "holdout": list(job.holdout), "augment": job.augment}
        atomic_write_text(self.marker, json.dumps(info, indent=2))
        return info


def prepare_training(ctx: PlanContext, job: TrainingJob) -> PreparedTraining:
    """Make ``job``'s folder hold only its own settings (its warm start is trained first if missing)."""
    cfg: BenchmarkConfig = ctx.config
    model = cfg.families[job.family]
    dataset = ctx.result("data")["path"]
    start_job = job.warm_start(cfg)
    start = train_detector(ctx, start_job.family, start_job.task) if start_job else None
    settings = {"model": model, "task": job.task, "holdout": list(job.holdout), "augment": job.augment,
                **({"init_from_sha256": start["sha256"]} if start else {}),  # older folders stay valid
                "preset": cfg.train_preset, "overrides": cfg.train_overrides,
                "from_scratch": cfg.from_scratch,
                "seed": cfg.seed, "extra_real": cfg.extra_real, "mixed_precision": cfg.mixed_precision,
                "dataset_fingerprint": ctx.result("data")["fingerprint"]}
    folder = ctx.out_dir / "checkpoints" / job.key
    prepare_folder(folder, settings)
    config = train_config(cfg, dataset, model, job.task, folder, job.holdout, job.augment,
                          start["path"] if start else None)
    return PreparedTraining(job, folder, config, start)


def describe_training(prepared: PreparedTraining) -> str:
    """The log line announcing a training (and what it starts from)."""
    start = prepared.start
    return (f"  training {prepared.job.key} ({prepared.config.model}"
            + (f", starting from {start['key']})" if start else ")"))


def train_detector(ctx: PlanContext, family: str, task: str, holdout: Sequence[str] = (),
                   augment: str | None = None) -> dict[str, Any]:
    """Train (or reuse) one detector; its key names family, task and setting."""
    return run_training(ctx, prepare_training(ctx, TrainingJob(family, task, tuple(holdout), augment)))


def run_training(ctx: PlanContext, prepared: PreparedTraining) -> dict[str, Any]:
    """Train a prepared job here (or with ``accelerate launch``), unless it is done; its info."""
    cfg: BenchmarkConfig = ctx.config
    if prepared.marker.is_file():
        return json.loads(prepared.marker.read_text())
    ctx.log(describe_training(prepared))
    job = prepared.job
    config, folder = prepared.config, prepared.folder
    if cfg.launcher == "accelerate":
        atomic_write_text(folder / TRAIN_CONFIG_FILE, json.dumps(config.to_json_dict(), indent=2))
        command = train_command(cfg, config.dataset, config.model, job.task, folder, job.holdout,
                                job.augment, config.init_from)
        ctx.log("  $ " + shlex.join(command))
        completed = subprocess.run(command, check=False)
        if completed.returncode != 0:
            raise StepFailed(f"training {job.key} failed (exit {completed.returncode}): "
                             f"{shlex.join(command)}")
        best = folder / "best"
    else:
        from diffseg30k.train import train

        best = train(config)
    return prepared.finish(Path(best))


def device_for(cfg: BenchmarkConfig) -> str:
    if cfg.device:
        return cfg.device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def current_set(path: Path, checkpoint_sha256: str | None, dataset_fingerprint: str,
                count: int | None = None) -> bool:
    """A saved prediction set made by this checkpoint on this dataset (on ``count`` images when given,
    e.g. not one made under another ``eval_limit``)."""
    from diffseg30k.experiments.predictions import read_meta

    try:
        meta = read_meta(path)
    except (FileNotFoundError, ValueError):
        return False
    return (meta.get("checkpoint_sha256") == checkpoint_sha256
            and meta.get("dataset_fingerprint") == dataset_fingerprint
            and (count is None or meta.get("count") == count))


def predict_checkpoint(ctx: PlanContext, checkpoint: dict[str, Any], distortions: Sequence[str],
                       table: Any = None, name: str | None = None) -> dict[str, Path]:
    """Prediction sets of a checkpoint under each distortion (reused when already saved)."""
    from diffseg30k.detector import Detector
    from diffseg30k.experiments.evaluation import detector_predictor, predict_dataset

    cfg: BenchmarkConfig = ctx.config
    root = ctx.out_dir / "predictions" / (name or checkpoint["key"])
    chosen = parse_distortions(list(distortions), include_baseline=False)
    fingerprint = ctx.result("data")["fingerprint"]
    table = eval_table(ctx) if table is None else table
    missing = [d for d in chosen
               if not current_set(root / d.name, checkpoint.get("sha256"), fingerprint, len(table))]
    if missing:
        detector = Detector.from_pretrained(checkpoint["path"], device=device_for(cfg))
        meta = {"task": checkpoint["task"], "checkpoint": checkpoint["key"],
                "checkpoint_sha256": checkpoint.get("sha256"), "id2label": detector.id2label,
                "dataset_fingerprint": fingerprint, "split": "validation"}
        predict_dataset(detector_predictor(detector, cfg.eval_batch_size), table, missing, root, meta,
                        batch_size=cfg.eval_batch_size, total=len(table),
                        desc=f"predict {name or checkpoint['key']}")
    return {d.name: root / d.name for d in chosen}


def image_level(scores: Sequence[float], truths: Sequence[bool], threshold: float = 0.5) -> dict[str, Any]:
    """Image accuracy (score > ``threshold``) and average precision of classifier scores."""
    import numpy as np

    from diffseg30k.metrics import average_precision

    scores_arr, truth_arr = np.asarray(scores, np.float64), np.asarray(truths, bool)
    return clean({"image_accuracy": float(np.mean((scores_arr > threshold) == truth_arr)),
                  "image_ap": average_precision(truth_arr, scores_arr)})


def train_classifier_cached(ctx: PlanContext, kind: str, holdout: Sequence[str] = ()) -> dict[str, Any]:
    from diffseg30k.experiments.baselines import ClassifierTrainConfig, train_classifier, with_negatives

    cfg: BenchmarkConfig = ctx.config
    name = cfg.classifiers[kind]
    key = "-".join([kind, *(["holdout", *holdout] if holdout else [])])
    folder = ctx.out_dir / "checkpoints" / key
    fingerprint = ctx.result("data")["fingerprint"]
    prepare_folder(folder, {"model": name, "holdout": list(holdout), "steps": cfg.classifier_steps,
                            "batch_size": cfg.classifier_batch_size, "lr": cfg.classifier_lr,
                            "seed": cfg.seed, "from_scratch": cfg.from_scratch,
                            "precision": cfg.mixed_precision, "dataset_fingerprint": fingerprint})
    weights = folder / "model"
    if not (weights / "model.safetensors").is_file():
        table = split_table(ctx, "train")
        if holdout:
            held = set(holdout)
            table = table.filter(lambda models: not held & set(models or []), input_columns="models",
                                 desc="hold-out train")  # reads one column: no image is decoded
        ctx.log(f"  training {key} ({name})")
        train_classifier(with_negatives(table, cfg.extra_real), weights, ClassifierTrainConfig(
            name=name, steps=cfg.classifier_steps, batch_size=cfg.classifier_batch_size, lr=cfg.classifier_lr,
            seed=cfg.seed, from_scratch=cfg.from_scratch, mixed_precision=cfg.mixed_precision))
    return {**_checkpoint_info(key, weights), "model": name, "family": kind, "holdout": list(holdout)}


def classifier_row(ctx: PlanContext, table_name: str, ckpt: dict[str, Any], table: Any,
                   **labels: Any) -> dict[str, Any]:
    from diffseg30k.experiments.baselines import classifier_scores, edited_labels

    scores = classifier_scores(ckpt["path"], table)
    truths = edited_labels(table) > 0
    return {"table": table_name, **labels, "model": ckpt["model"], "count": len(table),
            "edited": int(truths.sum()), "metrics": image_level(scores, truths),
            "checkpoint": ckpt["key"]}


