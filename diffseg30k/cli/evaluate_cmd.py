"""`diffseg30k evaluate`: score a checkpoint on a dataset split, under distortions, with breakdowns."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "score a detector on a dataset split (distortions, breakdowns, bootstrap CIs, saved predictions)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", help="checkpoint folder, training run folder (its best/) or Hub id")
    parser.add_argument("--revision", help="Hub revision of the checkpoint")
    parser.add_argument("--dataset", help="converted folder, raw release or Hub dataset id")
    parser.add_argument("--dataset-revision", help="Hub revision of the dataset")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--distortions", default="",
                        help="comma-separated: jpeg60,jpeg80,resize256,resize1024,blur,noise,webp,crop "
                             "(also jpegQ, resizeN, 'paper', 'all'); the baseline is always scored")
    parser.add_argument("--by", default="turns,edit_type,base,area",
                        help="breakdowns where metadata exists: turns, edit_type, base, area, generator "
                             "('' for none)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for CIs (0: off)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--limit", type=int, help="score only the first N images")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--from-predictions", metavar="DIR",
                        help="re-score saved predictions (a report's predictions/ folder); no model needed")
    parser.add_argument("--report", required=True, metavar="DIR",
                        help="output: evaluation.json, evaluation.md, predictions/<distortion>/")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from diffseg30k.cli import CommandError
    from diffseg30k.experiments.evaluation import rescore
    from diffseg30k.experiments.report import render_evaluation
    from diffseg30k.experiments.scoring import BREAKDOWNS
    from diffseg30k.io import atomic_write_text

    by = [b.strip() for b in args.by.split(",") if b.strip()]
    unknown = [b for b in by if b not in BREAKDOWNS]
    if unknown:
        raise CommandError(f"--by: unknown breakdown {unknown}; expected some of {', '.join(BREAKDOWNS)}")
    report = Path(args.report)
    if args.from_predictions:
        if args.checkpoint or args.dataset:
            raise CommandError("--from-predictions re-scores saved predictions: drop --checkpoint/--dataset")
        try:
            scores = rescore(args.from_predictions, by=by, bootstrap=args.bootstrap, seed=args.seed)
        except (FileNotFoundError, ValueError) as err:
            raise CommandError(str(err)) from err
        meta = {"predictions": str(args.from_predictions)}
    else:
        if not args.checkpoint or not args.dataset:
            raise CommandError("give --checkpoint and --dataset (or --from-predictions DIR)")
        scores, meta = _evaluate(args, by, report)
    from diffseg30k.cli.benchmark_cmd import command_line

    command = command_line(args, {"split": "validation", "by": "turns,edit_type,base,area", "bootstrap": 1000,
                                  "seed": 0, "batch_size": 8})
    payload = {"command": command, **meta, "scores": scores}
    atomic_write_text(report / "evaluation.json", json.dumps(payload, indent=2, default=str) + "\n")
    atomic_write_text(report / "evaluation.md", render_evaluation(scores, meta))
    print(render_evaluation(scores, meta))
    print(f"wrote {report / 'evaluation.json'} and {report / 'evaluation.md'}")
    return 0


def _evaluate(args: argparse.Namespace, by: list[str], report) -> tuple[dict, dict]:
    from diffseg30k.cli import CommandError
    from diffseg30k.data.distortions import parse_distortions
    from diffseg30k.data.load import load_benchmark
    from diffseg30k.detector import Detector
    from diffseg30k.experiments.evaluation import detector_predictor, evaluate_predictor

    try:
        distortions = [d.name for d in parse_distortions(args.distortions, include_baseline=False)]
    except ValueError as err:
        raise CommandError(f"--distortions: {err}") from err
    try:
        detector = Detector.from_pretrained(args.checkpoint, revision=args.revision, device=args.device)
    except (OSError, ValueError) as err:
        raise CommandError(f"--checkpoint {args.checkpoint}: {err}") from err
    print(f"checkpoint: {detector.loaded_from}", file=sys.stderr)
    try:
        table = load_benchmark(args.dataset, split=args.split, revision=args.dataset_revision)
    except (OSError, ValueError) as err:
        raise CommandError(f"--dataset {args.dataset}: {err}") from err
    meta = {"checkpoint": detector.checkpoint, "revision": args.revision, "dataset": str(args.dataset),
            "dataset_revision": args.dataset_revision, "split": args.split, "task": detector.task,
            "id2label": detector.id2label, "dataset_fingerprint": getattr(table, "_fingerprint", None)}
    count = len(table) if args.limit is None else min(args.limit, len(table))
    scores = evaluate_predictor(detector_predictor(detector, args.batch_size), table, report / "predictions",
                                detector.task, distortions, by=by, bootstrap=args.bootstrap, seed=args.seed,
                                meta=meta, batch_size=args.batch_size, limit=args.limit, total=count)
    return scores, {k: v for k, v in meta.items() if k != "id2label"}
