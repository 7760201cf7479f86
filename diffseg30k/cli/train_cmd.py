"""`diffseg30k train`: fine-tune a detector with Accelerate (also `accelerate launch -m diffseg30k train`)."""

from __future__ import annotations

import argparse

HELP = "train a detector (SegFormer, DeepLabV3+, FCN-8s) on DiffSeg30k with Accelerate"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list-models", action="store_true", help="list the registry's detectors and exit")
    parser.add_argument("--dataset", help="converted dataset folder, Hub dataset id or raw release")
    parser.add_argument("--model", default="segformer-tiny", help="registry name (see --list-models)")
    parser.add_argument("--task", choices=("semantic", "binary"), default="semantic")
    parser.add_argument("--out", help="output folder: best/, checkpoints/step_N/, logs/")
    parser.add_argument("--preset", choices=("quick", "paper"), default="quick",
                        help="quick: CPU, 128 px crops, 200 steps; paper: 512 px crops, mmseg defaults")
    parser.add_argument("--from-scratch", action="store_true", help="no pretrained backbone weights")
    parser.add_argument("--pretrained", help="backbone weights (Hub id or folder) instead of the default")
    parser.add_argument("--holdout", default="", help="GEN1,GEN2: drop training images edited by them")
    parser.add_argument("--extra-real", help="folder of unedited real images added as negatives")
    parser.add_argument("--augment", choices=("none", "robust"), default="none",
                        help="robust: random JPEG 50-100, rescale 0.25-2x, blur")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, help="per device")
    parser.add_argument("--crop-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--optimizer", choices=("adamw", "sgd"))
    parser.add_argument("--warmup-steps", type=int)
    parser.add_argument("--max-steps", type=int, help="optimizer steps")
    parser.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    parser.add_argument("--max-grad-norm", type=float)
    parser.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no")
    parser.add_argument("--eval-every", type=int, help="evaluate every N steps (0: only at the end)")
    parser.add_argument("--save-every", type=int, help="save a resumable checkpoint every N steps")
    parser.add_argument("--keep-checkpoints", type=int, default=2)
    parser.add_argument("--max-eval-samples", type=int)
    parser.add_argument("--num-workers", type=int, help="data-loader workers per process")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads per process (default on CPUs: half of each process's cores, "
                             "the rest for data-loader workers; see diffseg30k.threads)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints' latest step")
    parser.add_argument("--stop-after", type=int, help="stop (with a checkpoint) after N steps; resume later")
    parser.add_argument("--log-with", default="auto", help="Accelerate tracker: auto, none, tensorboard, ...")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def list_models() -> str:
    from diffseg30k.models.registry import REGISTRY

    lines = [f"{'name':<20} {'family':<14} {'weights':<22} description"]
    for spec in REGISTRY.values():
        lines.append(f"{spec.name:<20} {spec.family:<14} {spec.pretrained or 'random init':<22} "
                     f"{spec.description}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from diffseg30k.cli import CommandError

    if args.list_models:
        print(list_models())
        return 0
    if not args.dataset or not args.out:
        raise CommandError("--dataset and --out are required (or pass --list-models)")
    from diffseg30k.models.registry import REGISTRY
    from diffseg30k.train import TrainConfig, TrainingDiverged, train

    if args.model not in REGISTRY:
        raise CommandError(f"unknown --model {args.model!r}; available: {', '.join(REGISTRY)}")
    config = TrainConfig(
        dataset=args.dataset, out=args.out, model=args.model, task=args.task, preset=args.preset,
        from_scratch=args.from_scratch, pretrained=args.pretrained,
        holdout=tuple(g for g in args.holdout.split(",") if g.strip()), extra_real=args.extra_real,
        augment=None if args.augment == "none" else args.augment, seed=args.seed,
        batch_size=args.batch_size, crop_size=args.crop_size, lr=args.lr, weight_decay=args.weight_decay,
        optimizer=args.optimizer, warmup_steps=args.warmup_steps, max_steps=args.max_steps,
        grad_accum=args.grad_accum, max_grad_norm=args.max_grad_norm, mixed_precision=args.mixed_precision,
        eval_every=args.eval_every, save_every=args.save_every, keep_checkpoints=args.keep_checkpoints,
        max_eval_samples=args.max_eval_samples, num_workers=args.num_workers, threads=args.threads,
        resume=args.resume,
        stop_after=args.stop_after, log_with=args.log_with, progress=not args.no_progress)
    try:
        best = train(config)
    except (TrainingDiverged, FileExistsError, FileNotFoundError, ValueError, OSError) as err:
        raise CommandError(str(err)) from err
    from accelerate import PartialState

    if PartialState().is_main_process:  # `accelerate launch` runs: one summary, not one per process
        print(best)
    return 0
