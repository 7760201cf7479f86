"""`diffseg30k train`: fine-tune a detector with Accelerate (also `accelerate launch -m diffseg30k train`)."""

from __future__ import annotations

import argparse

HELP = "train a detector (SegFormer, DeepLabV3+, FCN-8s) on DiffSeg30k with Accelerate"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from diffseg30k.cli.schema import add_dataclass_arguments
    from diffseg30k.training.config import TrainConfig

    parser.add_argument("--list-models", action="store_true", help="list the registry's detectors and exit")
    add_dataclass_arguments(parser, TrainConfig)  # every TrainConfig field, one flag each


def list_models() -> str:
    from diffseg30k.models.registry import DETECTORS

    return DETECTORS.listing()


def run(args: argparse.Namespace) -> int:
    from diffseg30k.cli import CommandError

    if args.list_models:
        print(list_models())
        return 0
    from diffseg30k.cli.schema import config_from_args
    from diffseg30k.models.registry import get_spec
    from diffseg30k.registry import RegistryError
    from diffseg30k.train import TrainConfig, TrainingDiverged, train

    try:
        config = config_from_args(TrainConfig, args)
    except ValueError as err:
        raise CommandError(f"{err} (or pass --list-models)" if "required" in str(err) else str(err)) from err
    try:
        get_spec(config.model)
    except RegistryError as err:
        raise CommandError(f"--model: {err}") from err
    try:
        best = train(config)
    except (TrainingDiverged, FileExistsError, FileNotFoundError, ValueError, OSError) as err:
        raise CommandError(str(err)) from err
    from accelerate import PartialState

    if PartialState().is_main_process:  # `accelerate launch` runs: one summary, not one per process
        print(best)
    return 0
