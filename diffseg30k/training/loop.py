"""The Accelerate training loop: ``train(config) -> Path`` (the best checkpoint folder)."""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any

import torch

from diffseg30k import threads as cpu_threads
from diffseg30k.training.config import TrainConfig


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def _param_groups(model, config: TrainConfig) -> list[dict[str, Any]]:
    """Backbone at ``lr``, heads at ``lr * head_lr_mult``; no weight decay on norms and biases."""
    groups: dict[tuple[bool, bool], list] = {}
    backbone_prefixes = ("segformer.", "backbone.")
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        head = not name.startswith(backbone_prefixes)
        decay = param.ndim > 1
        groups.setdefault((head, decay), []).append(param)
    return [{"params": params, "lr": config.lr * (config.head_lr_mult if head else 1.0),
             "weight_decay": config.weight_decay if decay else 0.0}
            for (head, decay), params in groups.items()]


def _optimizer(model, config: TrainConfig) -> torch.optim.Optimizer:
    groups = _param_groups(model, config)
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
        return _train(config)
    finally:
        AcceleratorState._reset_state(reset_partial_state=False)
        GradientState._reset_state()


def _train(config: TrainConfig) -> Path:
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from diffseg30k.data.transforms import make_augment
    from diffseg30k.models.inference import normalize_batch, preprocessing_tensors
    from diffseg30k.models.registry import build_model, get_spec
    from diffseg30k.training import checkpoints as ckpt
    from diffseg30k.training.data import CropDataset, list_images, make_loader
    from diffseg30k.training.evaluation import evaluate_model, scalar_metrics
    from diffseg30k.training.sources import label_set_for, resolve_splits

    spec = get_spec(config.model)
    config = config.resolved(spec.optimizer)
    out = Path(config.out)
    accelerator = Accelerator(cpu=not _has_accelerator(), mixed_precision=config.mixed_precision,
                              log_with=_trackers(config.log_with) or None,
                              project_dir=str(out / "logs"), step_scheduler_with_optimizer=False)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", accelerator.num_processes))
    shared = accelerator.device.type == "cpu" or accelerator.num_processes > 1
    if config.threads or (shared and "OMP_NUM_THREADS" not in os.environ):
        # one rule (diffseg30k.threads): processes split the cores; on CPUs 1 thread + workers beat 2 threads
        cpu_threads.apply(config.threads, local)
    resume_from = ckpt.latest_checkpoint(out) if config.resume else None
    if not config.resume and ckpt.checkpoint_dirs(out):
        raise FileExistsError(f"{out}: already holds checkpoints; pass --resume to continue, "
                              "or use a new --out")

    set_seed(config.seed)
    train_table, eval_table = resolve_splits(config.dataset, config.task, config.train_split,
                                             config.eval_split, tuple(config.holdout),
                                             config.max_eval_samples)
    id2label = label_set_for(config.dataset, config.task)
    model = build_model(config.model, task=config.task, id2label=id2label, from_scratch=config.from_scratch,
                        crop_size=config.crop_size, pretrained=config.pretrained)
    extra = list_images(config.extra_real) if config.extra_real else []
    dataset = CropDataset(train_table, config.crop_size, config.task, model.config.num_labels, config.seed,
                          make_augment(config.augment), extra)
    optimizer = _optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _poly_schedule(config))
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    state: dict[str, Any] = {"best_metric": None, "best_step": None, "last_eval": None,
                             "loss_first": None, "loss_recent": []}
    step = 0
    if resume_from is not None:
        accelerator.load_state(str(resume_from))
        state.update(ckpt.read_state(resume_from))
        step = int(state.pop("step"))
        accelerator.print(f"resumed from {resume_from} at step {step}")
    elif config.resume:
        accelerator.print(f"--resume: no checkpoint in {out / 'checkpoints'} yet; starting at step 0")
    if accelerator.is_main_process and not resume_from:
        out.mkdir(parents=True, exist_ok=True)
    accelerator.init_trackers("diffseg30k", config=config.to_log_dict())
    accelerator.print(f"training {config.model} ({config.task}) on {accelerator.num_processes} "
                      f"process(es), {accelerator.device}, {len(dataset)} training images, "
                      f"{torch.get_num_threads()} threads")

    best_key = f"{config.task}_miou"
    num_workers = config.num_workers if config.num_workers is not None else cpu_threads.loader_workers(local)
    accum = config.grad_accum
    stop = config.max_steps if config.stop_after is None else min(config.max_steps, config.stop_after)
    loader = make_loader(dataset, config.batch_size, config.seed, step * accum, stop * accum,
                         accelerator.process_index, accelerator.num_processes, num_workers)
    num_labels = accelerator.unwrap_model(model).config.num_labels
    mean, std = preprocessing_tensors(accelerator.unwrap_model(model).config, accelerator.device)
    summary = {"training": config.to_log_dict(), "train_images": len(dataset)}

    def export(target: Path, metrics: dict | None) -> None:
        if accelerator.is_main_process:
            ckpt.export_detector(accelerator.unwrap_model(model), target,
                                 {**summary, "step": step, "loss_first": state["loss_first"],
                                  "loss_last": _mean(state["loss_recent"]),
                                  "eval": metrics and scalar_metrics(metrics)})

    def run_eval() -> None:
        metrics = evaluate_model(accelerator, accelerator.unwrap_model(model), eval_table, config.task,
                                 num_labels, config.eval_batch_size)
        if accelerator.is_main_process:
            scalars = scalar_metrics(metrics)
            accelerator.log({f"eval/{k}": v for k, v in scalars.items()}, step=step)
            state["last_eval"] = {"step": step, **scalars}
            value = scalars.get(best_key, float("nan"))
            best = state["best_metric"]
            if best is None or (not math.isnan(value) and (math.isnan(best) or value > best)):
                state.update(best_metric=value, best_step=step)
                export(out / "best", metrics)
            progress.write(f"step {step}: {best_key}={value:.4f} (best {state['best_metric']:.4f} "
                           f"at step {state['best_step']})")
        accelerator.wait_for_everyone()

    def save() -> Path:
        return ckpt.save_checkpoint(accelerator, out, step, dict(state), config.keep_checkpoints)

    progress = tqdm(total=config.max_steps, initial=step, desc=f"train {config.model}",
                    disable=not (config.progress and accelerator.is_local_main_process))
    model.train()
    batches = iter(loader)
    last_saved = step if resume_from else None
    while step < stop:
        total_loss = torch.zeros((), device=accelerator.device)
        for micro in range(accum):
            pixels, labels = next(batches)
            pixels = normalize_batch(pixels.to(accelerator.device, non_blocking=True), mean, std)
            labels = labels.to(accelerator.device, non_blocking=True).long()
            sync = micro == accum - 1
            with (contextlib.nullcontext() if sync else accelerator.no_sync(model)), accelerator.autocast():
                loss = model(pixel_values=pixels, labels=labels).loss / accum
                accelerator.backward(loss)
            total_loss += loss.detach()
        mean_loss = accelerator.reduce(total_loss, reduction="mean")
        if not torch.isfinite(mean_loss):
            last = ckpt.latest_checkpoint(out)
            raise TrainingDiverged(f"loss became {mean_loss.item()} at step {step + 1} (lr "
                                   f"{scheduler.get_last_lr()[0]:.3g}); stopped without saving. Last good "
                                   f"checkpoint: {last or 'none'} -- lower --lr or use --mixed-precision no")
        if config.max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        state["loss_first"] = state["loss_first"] or mean_loss.item()
        state["loss_recent"] = (state["loss_recent"] + [mean_loss.item()])[-10:]
        progress.update(1)
        progress.set_postfix(loss=f"{mean_loss.item():.4f}")
        accelerator.log({"train/loss": mean_loss.item(), "train/lr": scheduler.get_last_lr()[0]}, step=step)
        if eval_table is not None and config.eval_every and step % config.eval_every == 0:
            run_eval()
        if config.save_every and step % config.save_every == 0:
            save()
            last_saved = step
    evaluated_now = bool(config.eval_every) and step % config.eval_every == 0  # same answer on every rank
    if step >= config.max_steps and eval_table is not None and not evaluated_now:
        run_eval()
    if last_saved != step:
        save()
    if eval_table is None and step >= config.max_steps:
        export(out / "best", None)
    progress.close()
    accelerator.end_training()
    return out / "best"
