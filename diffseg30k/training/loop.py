"""The Accelerate training loop: ``train(config) -> Path`` (the best checkpoint folder)."""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from diffseg30k import threads as cpu_threads
from diffseg30k.outputs import shared_output_lock
from diffseg30k.training.config import TrainConfig


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def _param_groups(model, config: TrainConfig, backbone_prefixes: tuple[str, ...] = ("backbone.",)
                  ) -> list[dict[str, Any]]:
    """Backbone (the spec's ``backbone_prefixes``) at ``lr``, heads at ``lr * head_lr_mult``; no
    weight decay on norms and biases."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        head = not name.startswith(backbone_prefixes)
        decay = param.ndim > 1
        groups.setdefault((head, decay), []).append(param)
    return [{"params": params, "lr": config.lr * (config.head_lr_mult if head else 1.0),
             "weight_decay": config.weight_decay if decay else 0.0}
            for (head, decay), params in groups.items()]


def _optimizer(model, config: TrainConfig, backbone_prefixes: tuple[str, ...] = ("backbone.",)
               ) -> torch.optim.Optimizer:
    groups = _param_groups(model, config, tuple(backbone_prefixes))
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9)
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.999))


def _poly_schedule(config: TrainConfig):
    """Linear warmup then polynomial decay to 1 % of the base rate (mmsegmentation's poly)."""
    warmup, total, power = config.warmup_steps, config.max_steps, config.poly_power

    def factor(step: int) -> float:
        if step < warmup:
            return 1e-6 + (1 - 1e-6) * step / warmup
        return max((1 - min(step, total) / total) ** power, 0.01)
    return factor


def _has_accelerator() -> bool:
    """CUDA/XPU/MPS present? Without one, ``cpu=True`` lets torchrun-launched processes form a
    gloo process group (Accelerate's MULTI_CPU) instead of training as independent copies."""
    xpu = getattr(torch, "xpu", None)
    return bool(torch.cuda.is_available() or (xpu is not None and xpu.is_available())
                or torch.backends.mps.is_available())


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _trackers(log_with: str | None) -> list[str]:
    if log_with in (None, "none"):
        return []
    if log_with != "auto":
        return [log_with]
    import importlib.util

    return [name for name in ("tensorboard", "trackio") if importlib.util.find_spec(name)][:1]


def train(config: TrainConfig) -> Path:
    """Train a detector and return ``OUT/best``.

    Launch under ``accelerate launch`` for DDP; the same code runs on one CPU. Raises
    :class:`TrainingDiverged` on a non-finite loss (the last good checkpoint stays in place).
    Several calls in one process may use different settings (e.g. mixed precision): Accelerate's
    per-run state is released after each call; the process group, if any, is kept.
    """
    from accelerate.state import AcceleratorState, GradientState

    try:
        with contextlib.ExitStack() as stack:
            return _train(config, stack)
    finally:
        AcceleratorState._reset_state(reset_partial_state=False)
        GradientState._reset_state()


@dataclass
class TrainingRun:
    """One training run's parts and progress (what used to be closures over a shared ``state``).

    ``state`` is the resumable part, saved with every checkpoint: best metric and step, the last
    evaluation, the first and the recent losses.
    """

    config: TrainConfig
    out: Path
    accelerator: Any
    model: Any
    optimizer: Any
    scheduler: Any
    eval_table: Any
    summary: dict[str, Any]
    num_labels: int = 0
    step: int = 0
    resumed: bool = False
    progress: Any = None
    state: dict[str, Any] = field(default_factory=lambda: {"best_metric": None, "best_step": None,
                                                           "last_eval": None, "loss_first": None,
                                                           "loss_recent": []})

    @property
    def unwrapped(self) -> Any:
        return self.accelerator.unwrap_model(self.model)

    def export(self, target: Path, metrics: dict | None) -> None:
        """Write the detector (``best/`` or the final one) with its training summary."""
        from diffseg30k.training import checkpoints as ckpt
        from diffseg30k.training.evaluation import scalar_metrics

        if self.accelerator.is_main_process:
            ckpt.export_detector(self.unwrapped, target,
                                 {**self.summary, "step": self.step, "loss_first": self.state["loss_first"],
                                  "loss_last": _mean(self.state["loss_recent"]),
                                  "eval": metrics and scalar_metrics(metrics)})

    def evaluate(self) -> None:
        """Score the evaluation split; a new best is exported to ``best/``."""
        from diffseg30k.training.evaluation import evaluate_model, scalar_metrics

        config, accelerator = self.config, self.accelerator
        metrics = evaluate_model(accelerator, self.unwrapped, self.eval_table, config.task, self.num_labels,
                                 config.eval_batch_size)
        if accelerator.is_main_process:
            best_key = f"{config.task}_miou"
            scalars = scalar_metrics(metrics)
            accelerator.log({f"eval/{k}": v for k, v in scalars.items()}, step=self.step)
            self.state["last_eval"] = {"step": self.step, **scalars}
            value, best = scalars.get(best_key, float("nan")), self.state["best_metric"]
            if best is None or (not math.isnan(value) and (math.isnan(best) or value > best)):
                self.state.update(best_metric=value, best_step=self.step)
                self.export(self.out / "best", metrics)
            state = self.state
            self.progress.write(f"step {self.step}: {best_key}={value:.4f} (best {state['best_metric']:.4f} "
                                f"at step {state['best_step']})")
        accelerator.wait_for_everyone()

    def save(self) -> Path:
        from diffseg30k.training import checkpoints as ckpt

        return ckpt.save_checkpoint(self.accelerator, self.out, self.step, dict(self.state),
                                    self.config.keep_checkpoints,
                                    (self.model, self.optimizer, self.scheduler))

    def optimizer_step(self, batches: Any, mean: torch.Tensor, std: torch.Tensor) -> float:
        """One optimizer step over ``grad_accum`` micro-batches; returns the mean loss."""
        from diffseg30k.models.inference import normalize_batch
        from diffseg30k.training import checkpoints as ckpt

        accelerator, accum = self.accelerator, self.config.grad_accum
        total_loss = torch.zeros((), device=accelerator.device)
        for micro in range(accum):
            pixels, labels = next(batches)
            pixels = normalize_batch(pixels.to(accelerator.device, non_blocking=True), mean, std)
            labels = labels.to(accelerator.device, non_blocking=True).long()
            sync = contextlib.nullcontext() if micro == accum - 1 else accelerator.no_sync(self.model)
            with sync, accelerator.autocast():
                loss = _loss(self.model, pixels, labels, self.config.loss) / accum
                accelerator.backward(loss)
            total_loss += loss.detach()
        mean_loss = accelerator.reduce(total_loss, reduction="mean")
        if not torch.isfinite(mean_loss):
            last = ckpt.latest_checkpoint(self.out)
            lr = self.scheduler.get_last_lr()[0]
            raise TrainingDiverged(f"loss became {mean_loss.item()} at step {self.step + 1} (lr {lr:.3g}); "
                                   f"stopped without saving. Last good checkpoint: {last or 'none'} -- lower "
                                   "--lr or use --mixed-precision no")
        if self.config.max_grad_norm:
            accelerator.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return mean_loss.item()

    def record_loss(self, loss: float) -> None:
        self.state["loss_first"] = self.state["loss_first"] or loss
        self.state["loss_recent"] = (self.state["loss_recent"] + [loss])[-10:]
        self.progress.update(1)
        self.progress.set_postfix(loss=f"{loss:.4f}")
        lr = self.scheduler.get_last_lr()[0]
        self.accelerator.log({"train/loss": loss, "train/lr": lr}, step=self.step)


def _make_accelerator(config: TrainConfig, out: Path) -> Any:
    """The Accelerator of a run, with the process's CPU threads set."""
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=not _has_accelerator(), mixed_precision=config.mixed_precision,
                              log_with=_trackers(config.log_with) or None,
                              project_dir=str(out / "logs"), step_scheduler_with_optimizer=False)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", accelerator.num_processes))
    shared = accelerator.device.type == "cpu" or accelerator.num_processes > 1
    if config.threads or (shared and "OMP_NUM_THREADS" not in os.environ):
        # one rule (diffseg30k.threads): processes split the cores; on CPUs 1 thread + workers beat 2 threads
        cpu_threads.apply(config.threads, local)
    return accelerator


def _prepare(config: TrainConfig, spec: Any, stack: contextlib.ExitStack) -> tuple[TrainingRun, Any]:
    """Data, model, optimizer and schedule of a run (not yet resumed); returns it and its dataset. The
    output's one-writer lock joins ``stack``."""
    from accelerate.utils import set_seed

    from diffseg30k.data.transforms import make_augment
    from diffseg30k.models.registry import build_model
    from diffseg30k.training import checkpoints as ckpt
    from diffseg30k.training.data import CropDataset, check_crop_size, list_images
    from diffseg30k.training.sources import label_set_for, resolve_splits, shard_files

    out = Path(config.out)
    accelerator = _make_accelerator(config, out)
    stack.enter_context(shared_output_lock(out, "diffseg30k train"))  # one run per --out
    if not config.resume and ckpt.checkpoint_dirs(out):
        raise FileExistsError(f"{out}: already holds checkpoints; pass --resume to continue, "
                              "or use a new --out")
    set_seed(config.seed)
    train_table, eval_table = resolve_splits(config.dataset, config.task, config.train_split,
                                             config.eval_split, tuple(config.holdout),
                                             config.max_eval_samples)
    id2label = label_set_for(config.dataset, config.task)
    stem = config.stem if spec.takes_stem else None
    if config.stem not in (None, "none") and stem is None:  # a benchmark-wide option: said, not fatal
        accelerator.print(f"stem={config.stem}: {config.model} takes no input stem; trained without one")
    model = build_model(config.model, task=config.task, id2label=id2label, from_scratch=config.from_scratch,
                        crop_size=config.crop_size, pretrained=config.pretrained, stem=stem)
    if config.init_from:
        from diffseg30k.training.warm_start import warm_start

        accelerator.print(warm_start(model, config.init_from))
    extra = list_images(config.extra_real) if config.extra_real else []
    dataset = CropDataset(train_table, config.crop_size, config.task, model.config.num_labels, config.seed,
                          make_augment(config.augment), extra,
                          shard_files(config.dataset, config.train_split))
    check_crop_size(dataset, config.crop_size)
    if eval_table is None and config.eval_split:
        accelerator.print(f"warning: the dataset has no {config.eval_split!r} split: nothing is evaluated, "
                          "and best/ is simply the model at the last step")
    optimizer = _optimizer(model, config, spec.backbone_prefixes)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _poly_schedule(config))
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    run = TrainingRun(config, out, accelerator, model, optimizer, scheduler, eval_table,
                      {"training": config.to_log_dict(), "train_images": len(dataset)})
    run.num_labels = run.unwrapped.config.num_labels
    return run, dataset


def _resume(run: TrainingRun) -> None:
    """Continue from the latest checkpoint when ``resume`` finds one."""
    from diffseg30k.training import checkpoints as ckpt

    config, accelerator, out = run.config, run.accelerator, run.out
    resume_from, saved = (ckpt.resume_checkpoint(accelerator, out, (run.model, run.optimizer, run.scheduler))
                          if config.resume else (None, {}))
    if resume_from is not None:
        run.state.update(saved)
        run.step = int(run.state.pop("step"))
        run.resumed = True
        accelerator.print(f"resumed from {resume_from} at step {run.step}")
    elif config.resume and (out / "checkpoints").is_dir():  # a fresh run has nothing to say here
        accelerator.print(f"--resume: no checkpoint in {out / 'checkpoints'} yet; starting at step 0")
    if accelerator.is_main_process and not run.resumed:
        out.mkdir(parents=True, exist_ok=True)


def _loader(run: TrainingRun, dataset: Any, stop: int) -> Any:
    from diffseg30k.training.data import make_loader

    config, accelerator = run.config, run.accelerator
    num_workers = config.num_workers if config.num_workers is not None else cpu_threads.loader_workers(
        int(os.environ.get("LOCAL_WORLD_SIZE", accelerator.num_processes)))
    accum = config.grad_accum
    return make_loader(dataset, config.batch_size, config.seed, run.step * accum, stop * accum,
                       accelerator.process_index, accelerator.num_processes, num_workers)


def _train(config: TrainConfig, stack: contextlib.ExitStack) -> Path:
    from tqdm.auto import tqdm

    from diffseg30k.models.inference import preprocessing_tensors
    from diffseg30k.models.registry import get_spec

    spec = get_spec(config.model)
    config = config.resolved(spec.optimizer)
    run, dataset = _prepare(config, spec, stack)
    accelerator = run.accelerator
    _resume(run)
    accelerator.init_trackers("diffseg30k", config=config.to_log_dict())
    accelerator.print(f"training {config.model} ({config.task}) on {accelerator.num_processes} "
                      f"process(es), {accelerator.device}, {len(dataset)} training images, "
                      f"{torch.get_num_threads()} threads")
    stop = config.max_steps if config.stop_after is None else min(config.max_steps, config.stop_after)
    batches = iter(_loader(run, dataset, stop))
    mean, std = preprocessing_tensors(run.unwrapped.config, accelerator.device)
    run.progress = tqdm(total=config.max_steps, initial=run.step, desc=f"train {config.model}",
                        disable=not (config.progress and accelerator.is_local_main_process))
    run.model.train()
    last_saved = run.step if run.resumed else None
    while run.step < stop:
        run.record_loss(run.optimizer_step(batches, mean, std))
        if run.eval_table is not None and config.eval_every and run.step % config.eval_every == 0:
            run.evaluate()
        if config.save_every and run.step % config.save_every == 0:
            run.save()
            last_saved = run.step
    evaluated_now = bool(config.eval_every) and run.step % config.eval_every == 0  # same answer on every rank
    if run.step >= config.max_steps and run.eval_table is not None and not evaluated_now:
        run.evaluate()
    if last_saved != run.step:
        run.save()
    if run.eval_table is None and run.step >= config.max_steps:
        run.export(run.out / "best", None)
    run.progress.close()
    accelerator.end_training()
    return run.out / "best"


def _loss(model: Any, pixels: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    """The model's own loss ("ce"), or a loss of :data:`diffseg30k.models.common.LOSSES` on its logits."""
    if kind == "ce":
        return model(pixel_values=pixels, labels=labels).loss
    from diffseg30k.models.common import LOSSES

    return LOSSES[kind](model(pixel_values=pixels).logits, labels)
