"""`diffseg30k evaluate`: score a checkpoint on a dataset split, under distortions, with breakdowns."""

from __future__ import annotations

import argparse

HELP = "score a detector on a dataset split (distortions, breakdowns, bootstrap CIs, saved predictions)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from diffseg30k.cli.runtime_option import add_runtime_argument

    parser.add_argument("--checkpoint", help="checkpoint folder, training run folder (its best/) or Hub id")
    parser.add_argument("--revision", help="Hub revision of the checkpoint")
    parser.add_argument("--dataset", metavar="NAME_OR_PATH",
                        help="converted folder, raw release, IML layout (Tp/+Gt/ folder, IMDL-BenCo JSON, "
                             "CocoGlide folder), dataset preset (see --list-datasets) or Hub dataset id")
    parser.add_argument("--dataset-revision", help="Hub revision of the dataset")
    parser.add_argument("--split", help="split to score (default: validation, else the preset's or the "
                                        "dataset's only split)")
    parser.add_argument("--list-datasets", action="store_true", help="list the dataset presets and exit")
    parser.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                        help="bad dataset items or prediction files: stop at the first (default) or skip "
                             "and list them")
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
    add_runtime_argument(parser)
    parser.add_argument("--from-predictions", metavar="DIR",
                        help="re-score saved predictions (a report's predictions/ folder); or, with "
                             "--dataset, score a folder of another toolkit's masks / probability maps "
                             "named like the dataset's images (PNG 0/255 or 0..8, float .npy/.png); no model "
                             "needed")
    parser.add_argument("--prediction-kind", choices=("auto", "binary", "labels", "probability"),
                        default="auto", help="how --from-predictions reads 8-bit PNGs (default auto: 0/255 "
                                             "binary, 0..8 labels, else probability v/255)")
    parser.add_argument("--report", metavar="DIR",
                        help="output: evaluation.json, evaluation.md, predictions/<distortion>/")


def run(args: argparse.Namespace) -> int:

    from diffseg30k.cli import CommandError
    from diffseg30k.experiments.evaluation import rescore
    from diffseg30k.experiments.report import write_evaluation
    from diffseg30k.experiments.scoring import BREAKDOWNS
    from diffseg30k.outputs import check_output_dir
    from diffseg30k.registry import RegistryError

    if args.list_datasets:
        _list_datasets()
        return 0
    if not args.report:
        raise CommandError("--report DIR is required")
    by = [b.strip() for b in args.by.split(",") if b.strip()]
    for unknown in [b for b in by if b not in BREAKDOWNS]:
        raise CommandError(f"--by: {RegistryError('breakdown', unknown, BREAKDOWNS)}")
    report = check_output_dir(args.report, "--report folder", create=True)
    if args.from_predictions and args.dataset:
        if args.checkpoint:
            raise CommandError("--from-predictions with --dataset scores those files: drop --checkpoint")
        scores, meta = _foreign(args, by, report)
    elif args.from_predictions:
        if args.checkpoint:
            raise CommandError("--from-predictions re-scores saved predictions: drop --checkpoint")
        try:
            scores = rescore(args.from_predictions, by=by, bootstrap=args.bootstrap, seed=args.seed)
        except FileNotFoundError as err:
            raise CommandError(f"{err} (a folder of another toolkit's masks needs --dataset)") from err
        except ValueError as err:
            raise CommandError(str(err)) from err
        meta = {"predictions": str(args.from_predictions)}
    else:
        if not args.checkpoint or not args.dataset:
            raise CommandError("give --checkpoint and --dataset (or --from-predictions DIR)")
        scores, meta = _evaluate(args, by, report)
    from diffseg30k.cli.benchmark_cmd import command_line

    command = command_line(args, {"by": "turns,edit_type,base,area", "bootstrap": 1000,
                                  "seed": 0, "batch_size": 8, "on_error": "raise",
                                  "prediction_kind": "auto"})
    markdown, paths = write_evaluation(report, scores, meta, command)
    print(markdown)
    print(f"wrote {paths[0]} and {paths[1]}")
    return 0


def _evaluate(args: argparse.Namespace, by: list[str], report) -> tuple[dict, dict]:
    import sys

    from diffseg30k.cli import CommandError
    from diffseg30k.data.distortions import parse_distortions
    from diffseg30k.detector import Detector
    from diffseg30k.experiments.cross_dataset import binary_predictor
    from diffseg30k.experiments.evaluation import detector_predictor, evaluate_predictor

    try:
        distortions = [d.name for d in parse_distortions(args.distortions, include_baseline=False)]
    except ValueError as err:
        raise CommandError(f"--distortions: {err}") from err
    try:
        detector = Detector.from_pretrained(args.checkpoint, revision=args.revision, device=args.device,
                                            runtime=args.runtime)
    except (OSError, ValueError) as err:
        raise CommandError(f"--checkpoint {args.checkpoint}: {err}") from err
    print(f"checkpoint: {detector.loaded_from}", file=sys.stderr)
    data = _open_dataset(args)
    table, task = data.table, data.task_for(detector.task)
    predictor = detector_predictor(detector, args.batch_size)
    if task != detector.task:  # a binary-only dataset: generator labels collapse to "edited"
        predictor = binary_predictor(predictor)
    meta = {"checkpoint": detector.checkpoint, "revision": args.revision, "dataset": str(args.dataset),
            "dataset_revision": args.dataset_revision, "split": data.split, "task": task,
            "model_task": detector.task, "binary_only": data.binary_only, "skipped": len(data.skipped),
            "runtime": detector.runtime, "id2label": detector.id2label,
            "dataset_fingerprint": getattr(table, "_fingerprint", None)}
    count = len(table) if args.limit is None else min(args.limit, len(table))
    scores = evaluate_predictor(predictor, table, report / "predictions", task, distortions, by=by,
                                bootstrap=args.bootstrap, seed=args.seed, meta=meta,
                                batch_size=args.batch_size, limit=args.limit, total=count)
    return scores, {k: v for k, v in meta.items() if k != "id2label"}


def _open_dataset(args: argparse.Namespace):
    from diffseg30k.cli import CommandError
    from diffseg30k.data.release import ReleaseError
    from diffseg30k.experiments.cross_dataset import open_eval_dataset

    try:
        data = open_eval_dataset(args.dataset, args.split, args.dataset_revision, on_error=args.on_error)
    except (OSError, ValueError, ReleaseError) as err:
        raise CommandError(f"--dataset {args.dataset}: {err}") from err
    for item in data.skipped:
        print(f"skipped {item['file']}: {item['reason']}")
    return data


def _foreign(args: argparse.Namespace, by: list[str], report) -> tuple[dict, dict]:
    from diffseg30k.cli import CommandError
    from diffseg30k.experiments.foreign_predictions import PredictionError, score_foreign

    data = _open_dataset(args)
    try:
        scores, problems = score_foreign(args.from_predictions, data, report / "predictions" / "none", by=by,
                                         bootstrap=args.bootstrap, seed=args.seed, on_error=args.on_error,
                                         limit=args.limit, kind=args.prediction_kind)
    except PredictionError as err:
        raise CommandError(str(err)) from err
    for problem in problems:
        print(f"skipped {problem}")
    meta = {"predictions": str(args.from_predictions), "dataset": str(args.dataset), "split": data.split,
            "task": scores["none"]["task"], "binary_only": data.binary_only,
            "skipped": len(problems) + len(data.skipped)}
    return scores, meta


def _list_datasets() -> None:
    from diffseg30k.data.presets import PRESETS

    for preset in PRESETS.values():
        where = f"Hub {preset.hub_id}" if preset.hub_id else f"download {preset.download}"
        print(f"{preset.name:14s} {preset.title}: {where}; layout {preset.layout}")
