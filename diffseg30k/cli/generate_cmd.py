"""`diffseg30k generate`: multi-turn diffusion editing into a DiffSeg30k-style release (paper §3.1)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

HELP = "generate DiffSeg30k-style edited images, label maps and metadata (mini profile on CPU, paper on GPUs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=("mini", "tiny", "paper"), default="mini",
                        help="mini: CPU stand-in (classical edits + trained tiny components), offline; "
                             "tiny: the real diffusers pipelines with tiny random weights (code-path "
                             "tests); paper: real Hub models on GPUs")
    parser.add_argument("--num-images", type=int, default=10, help="samples to generate (ids 1..N)")
    parser.add_argument("--seed", type=int, default=0, help="run seed; sample i uses (seed, i)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (resumed when it exists)")
    parser.add_argument("--editors", default=None,
                        help="comma-separated editors to draw from (default: the eight generators; "
                             "variants such as sdxl-lora only when listed)")
    parser.add_argument("--source", type=Path, default=None,
                        help="folder of real photos for real bases (mini default: scikit-image's photos)")
    parser.add_argument("--captions", type=Path, default=None,
                        help="text file, one caption a line, for AI bases (e.g. COCO captions)")
    parser.add_argument("--size", type=int, default=None, help="output side (default 1024 paper / 128 mini)")
    parser.add_argument("--real-fraction", type=float, default=0.5, help="share of real bases (rest: AI)")
    parser.add_argument("--editor-option", action="append", default=[], metavar="EDITOR.KEY=VALUE",
                        help="per-editor option, e.g. sdxl.repo_id=/path, flux.revision=<sha>, sd2.steps=25")
    parser.add_argument("--vlm", default=None, help="Qwen2.5-VL Hub id[@revision] or folder (paper profile)")
    parser.add_argument("--detector", default=None,
                        help="Grounding DINO Hub id[@revision] or folder (paper profile)")
    parser.add_argument("--segmenter", default=None, help="SAM Hub id[@revision] or folder (paper profile)")
    parser.add_argument("--exemplar-images", default=None,
                        help="comma-separated images of Fig. 7's two quality exemplars (paper profile)")
    parser.add_argument("--device", default=None, help="torch device (default: accelerate's)")
    parser.add_argument("--dtype", default=None, help="torch dtype of the paper models (default fp16/bf16)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads while generating (mini default 1: tiny models)")
    parser.add_argument("--workers", type=int, default=1,
                        help="local processes sharing the samples, without accelerate (CPU; e.g. one per "
                             "core with --threads 1); the output is the same bytes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _editor_options(items: list[str]) -> dict[str, dict[str, object]]:
    from diffseg30k.cli import CommandError

    options: dict[str, dict[str, object]] = {}
    for item in items:
        name, _, rest = item.partition(".")
        key, eq, value = rest.partition("=")
        if not (name and key and eq):
            raise CommandError(f"--editor-option {item!r}: expected EDITOR.KEY=VALUE")
        try:
            parsed: object = json.loads(value)
        except ValueError:
            parsed = value
        options.setdefault(name, {})[key] = parsed
    return options


def run(args: argparse.Namespace) -> int:
    from diffseg30k.cli import CommandError
    from diffseg30k.generation.mini import read_metadata
    from diffseg30k.generation.pipeline import (
        DEFAULT_DETECTOR,
        DEFAULT_SEGMENTER,
        DEFAULT_VLM,
        GenerationConfig,
        generate,
    )

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    captions = None
    if args.captions is not None:
        try:
            captions = tuple(line.strip() for line in args.captions.read_text(encoding="utf-8").splitlines()
                             if line.strip())
        except (OSError, UnicodeDecodeError) as err:
            raise CommandError(f"{args.captions}: cannot read captions ({err})") from err
        if not captions:
            raise CommandError(f"{args.captions}: no captions (expected one caption a line)")
    try:
        config = GenerationConfig(
            out=args.out, profile=args.profile, num_images=args.num_images, seed=args.seed, size=args.size,
            editors=tuple(e.strip() for e in args.editors.split(",") if e.strip()) if args.editors else None,
            source=args.source, real_fraction=args.real_fraction, captions=captions,
            editor_options=_editor_options(args.editor_option), vlm=args.vlm or DEFAULT_VLM,
            detector=args.detector or DEFAULT_DETECTOR, segmenter=args.segmenter or DEFAULT_SEGMENTER,
            exemplar_images=tuple(args.exemplar_images.split(",")) if args.exemplar_images else (),
            device=args.device, dtype=args.dtype, threads=args.threads, workers=args.workers,
            progress=not args.no_progress)
        out = generate(config)
    except ValueError as err:
        raise CommandError(str(err)) from err
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return 0
    rows = read_metadata(out)
    log = out / "failures.jsonl"
    failures = log.read_text(encoding="utf-8").count("\n") if log.exists() else 0
    skipped = f" ({failures} skipped, see {log})" if failures else ", none skipped"
    print(f"{len(rows)} samples in {out}{skipped}")
    return 0
