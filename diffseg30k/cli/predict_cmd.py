"""`diffseg30k predict`: run a detector on images; write an overlay PNG and a JSON per image."""

from __future__ import annotations

import argparse

HELP = "run a trained detector on images (overlay PNG with legend + JSON per image)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from diffseg30k.cli.runtime_option import add_runtime_argument

    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--checkpoint", required=True,
                        help="checkpoint folder, training run folder (its best/) or Hub model id")
    parser.add_argument("--revision", help="Hub revision of --checkpoint")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--tile-size", type=int, default=1024, help="sliding window above this side length")
    parser.add_argument("--area-threshold", type=float, default=0.01, help="image-level rule (1 %%)")
    add_runtime_argument(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    from diffseg30k.cli import CommandError
    from diffseg30k.detector import Detector
    from diffseg30k.io import ImageError
    from diffseg30k.outputs import check_output_dir
    from diffseg30k.predict import predict_images

    check_output_dir(args.out, "--out folder", create=True)  # one line for a file, a read-only fs...
    try:
        detector = Detector.from_pretrained(args.checkpoint, revision=args.revision, device=args.device,
                                            tile_size=args.tile_size, area_threshold=args.area_threshold,
                                            runtime=args.runtime)
    except (OSError, ValueError) as err:
        raise CommandError(f"cannot load --checkpoint {args.checkpoint}: {err}") from err
    print(f"checkpoint: {detector.loaded_from}", file=sys.stderr)
    try:
        for path, result, record in predict_images(detector, args.images, args.out, args.checkpoint):
            integrity = "" if result.integrity is None else f", integrity {result.integrity:.3f}"
            print(f"{path}: {'edited' if result.is_edited else 'not edited'} "
                  f"({100 * result.edited_fraction:.1f}% of pixels{integrity}) -> {record}")
    except ImageError as err:
        raise CommandError(str(err)) from err
    return 0
