"""`diffseg30k predict`: run a detector on images; write an overlay PNG and a JSON per image."""

from __future__ import annotations

import argparse

HELP = "run a trained detector on images (overlay PNG with legend + JSON per image)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--checkpoint", required=True,
                        help="checkpoint folder, training run folder (its best/) or Hub model id")
    parser.add_argument("--revision", help="Hub revision of --checkpoint")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--tile-size", type=int, default=1024, help="sliding window above this side length")
    parser.add_argument("--area-threshold", type=float, default=0.01, help="image-level rule (1 %%)")


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from tqdm.auto import tqdm

    from diffseg30k.cli import CommandError
    from diffseg30k.detector import Detector, to_rgb_array
    from diffseg30k.io import ImageError, atomic_write_bytes, atomic_write_text
    from diffseg30k.render import label_map_image, png_bytes, render_overlay, result_colors

    try:
        detector = Detector.from_pretrained(args.checkpoint, revision=args.revision, device=args.device,
                                            tile_size=args.tile_size, area_threshold=args.area_threshold)
    except (OSError, ValueError) as err:
        raise CommandError(f"cannot load --checkpoint {args.checkpoint}: {err}") from err
    print(f"checkpoint: {detector.loaded_from}", file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for path in tqdm(args.images, desc="predict", disable=len(args.images) < 2):
        try:  # decoded and normalised once, for the detector and the overlay alike
            image = to_rgb_array(path)
        except ImageError as err:
            raise CommandError(str(err)) from err
        result = detector(image)
        stem = Path(path).stem
        name, k = stem, 1
        while name in used:
            name, k = f"{stem}-{k}", k + 1
        used.add(name)
        overlay = render_overlay(image, result, threshold=detector.area_threshold)
        atomic_write_bytes(out / f"{name}.overlay.png", png_bytes(overlay))
        atomic_write_bytes(out / f"{name}.mask.png", png_bytes(label_map_image(result.label_map,
                                                                               result_colors(result))))
        record = {"image": str(path), "checkpoint": detector.checkpoint, **result.to_dict()}
        atomic_write_text(out / f"{name}.json", json.dumps(record, indent=2))
        print(f"{path}: {'edited' if result.is_edited else 'not edited'} "
              f"({100 * result.edited_fraction:.1f}% of pixels) -> {out / (name + '.json')}")
    return 0
