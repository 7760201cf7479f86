"""`diffseg30k benchmark`: every table of the paper as one resumable plan (default: the quick config)."""

from __future__ import annotations

import argparse
import sys

HELP = "reproduce the paper's tables (quick: mini data on CPU in minutes; paper: official data on GPUs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", choices=("quick", "paper"), default="quick",
                        help="quick (default): mini dataset, tiny models, CPU; paper: the reproduction")
    parser.add_argument("--out", help="output folder (default: ./benchmark-<config>); rerun to resume")
    parser.add_argument("--steps", default="",
                        help="comma-separated steps to run (requirements run first when missing); "
                             "see --list-steps")
    parser.add_argument("--list-steps", action="store_true", help="list the plan's steps and exit")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (steps, status, training commands) without running it")
    parser.add_argument("--force", action="store_true", help="re-run the selected steps even if finished")
    parser.add_argument("--dataset", help="dataset source instead of the config's (quick: the mini data)")
    parser.add_argument("--revision", help="Hub revision of the dataset")
    parser.add_argument("--extra-real", help="folder of unedited real images added to training as negatives")
    parser.add_argument("--mini-images", type=int, help="quick: number of mini images to generate")
    parser.add_argument("--max-steps", type=int,
                        help="training steps per detector and classifier (overrides the config)")
    parser.add_argument("--eval-limit", type=int, help="score only the first N validation images")
    parser.add_argument("--bootstrap", type=int, help="bootstrap resamples for the Tab. 2 intervals")
    parser.add_argument("--detectors", default="",
                        help="NAME,...: registered detectors added to the plan (each replaces its family's "
                             "model); see `diffseg30k list detectors`")
    parser.add_argument("--distortions", default="",
                        help="NAME,...: the Tab. 3 distortions instead of the config's (jpeg60,resize512)")
    parser.add_argument("--variant", help="Tab. 7: the registered variant editor (default: sdxl-lora)")
    parser.add_argument("--all-pairs", action="store_true", help="Tab. 4/6: hold out all 28 generator pairs")
    parser.add_argument("--families", default="",
                        help="FAMILY,...: the detector families of Tab. 2 and every ablation, each with the "
                             "config's model (segformer, deeplabv3plus, fcn8s, trufor, dctfreq, foundation); "
                             "--detectors then swaps in specific models")
    parser.add_argument("--num-processes", type=int, help="paper: GPUs per training (default: all visible)")
    parser.add_argument("--seed", type=int, help="seed of data generation, training and bootstrap")
    parser.add_argument("--device", help="inference device (default: cuda when available)")
    parser.add_argument("--cross-dataset", metavar="NAMES",
                        help="comma-separated other datasets (preset, path or Hub id, optionally NAME:SPLIT) "
                             "for the 'generalisation to other datasets' table of the trained detectors")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in (text or "").split(",") if s.strip())


def build_config(args: argparse.Namespace):
    """The BenchmarkConfig the arguments ask for."""
    from diffseg30k.experiments.config import get_config

    config = get_config(args.config, dataset=args.dataset, revision=args.revision, extra_real=args.extra_real,
                        mini_images=args.mini_images, eval_limit=args.eval_limit, bootstrap=args.bootstrap,
                        num_processes=args.num_processes, seed=args.seed, device=args.device,
                        variant=args.variant, distortions=_names(args.distortions) or None,
                        cross_datasets=_names(args.cross_dataset) or None)
    if args.max_steps:
        config.train_overrides = {**config.train_overrides, "max_steps": args.max_steps}
        config.classifier_steps = args.max_steps
    config = config.with_families(list(_names(args.families))) if args.families else config
    config = config.with_detectors(list(_names(args.detectors))) if args.detectors else config
    return (config.with_all_pairs() if args.all_pairs else config).validate()


def command_line(args: argparse.Namespace, defaults: dict | None = None) -> str:
    """The command that reproduces a run: the subcommand and the options that differ from defaults."""
    parts = ["diffseg30k", args.command]
    defaults = {"config": "quick", **(defaults or {})}
    for key, value in sorted(vars(args).items()):
        if key.startswith("_") or key in ("command", "no_progress") or value in (None, False, ""):
            continue
        if defaults.get(key) == value:
            continue
        flag = "--" + key.replace("_", "-")
        parts += [flag] if value is True else [flag, str(value)]
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from diffseg30k.cli import CommandError
    from diffseg30k.experiments.artifacts import train_command
    from diffseg30k.experiments.benchmark import build_plan, run_benchmark, step_names
    from diffseg30k.experiments.plan import StepFailed
    from diffseg30k.experiments.steps import STEPS
    from diffseg30k.registry import RegistryError

    if args.list_steps:
        print(STEPS.listing())
        print(f"{'report':8s} report.md and results.json (always written at the end)")
        return 0
    try:
        config = build_config(args)
    except ValueError as err:
        raise CommandError(str(err)) from err
    out = Path(args.out or f"benchmark-{config.name}")
    steps = [s.strip() for s in args.steps.split(",") if s.strip()] or None
    for unknown in [s for s in steps or [] if s not in step_names()]:
        raise CommandError(f"--steps: {RegistryError('benchmark step', unknown, step_names())}")
    plan = build_plan(config, out)
    if args.dry_run:
        order = plan.order([s for s in steps if s != "report"] if steps else None)
        print(f"config {config.name} (fingerprint {config.fingerprint()}), output {out}")
        for name in plan.names:
            state = "done" if plan.record(name) else ("to run" if name in order else "skipped")
            print(f"  {name:8s} {state:7s} {plan.steps[name].title}")
        print("\n".join(config.describe()))
        if config.launcher == "accelerate":
            family = next(iter(config.families))
            example = train_command(config, config.dataset or "<mini>", config.families[family], "semantic",
                                    out / "checkpoints" / f"{family}-semantic")
            print("trainings run as: " + " ".join(example))
        return 0
    command = command_line(args)
    try:
        records = run_benchmark(config, out, steps, force=args.force, command=command,
                                progress=not args.no_progress)
    except StepFailed as err:
        print(f"report with the finished steps: {out / 'report.md'}", file=sys.stderr)
        raise CommandError(str(err)) from err
    total = sum(r.get("wall_s") or 0 for r in records.values())
    reused = [n for n, r in records.items() if r.get("reused")]
    print(f"benchmark {config.name}: {len(records)} steps ({len(reused)} reused), {total:.1f} s of step time")
    print(f"report: {out / 'report.md'}  results: {out / 'results.json'}")
    return 0
