"""`diffseg30k push model|dataset|space`: publish a checkpoint, a converted dataset or the demo Space."""

from __future__ import annotations

import argparse

HELP = "publish a checkpoint, a converted dataset or the Gradio Space to the Hugging Face Hub"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo-id", required=True, help="target repository, 'owner/name'")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--revision", help="branch to push to (created if missing); default main")
    parser.add_argument("--token", help="Hub token (default: HF_TOKEN or the `hf auth login` token)")
    parser.add_argument("--dry-run", action="store_true",
                        help="stage the exact repository folder and list its files; upload nothing")
    parser.add_argument("--out", help="where to write the staged repository folder (kept)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    model = kinds.add_parser("model", help="a checkpoint folder (config.json + model.safetensors) + card")
    model.add_argument("checkpoint", help="checkpoint folder, or a training run folder (its best/)")
    model.add_argument("--license", default="apache-2.0", help="license id for the card (default apache-2.0)")
    model.add_argument("--dataset-id", help="Hub dataset the checkpoint was evaluated on (default: the "
                       "training run's dataset when it is a Hub id)")
    _common(model)
    dataset = kinds.add_parser("dataset", help="a folder written by `diffseg30k convert`")
    dataset.add_argument("folder", help="converted dataset folder (README.md, id2label.json, data/)")
    _common(dataset)
    space = kinds.add_parser("space", help="the Gradio demo in spaces/ (with the diffseg30k package)")
    space.add_argument("--checkpoint",
                       help="default detector: a local checkpoint folder (bundled) or a Hub model id "
                            "(linked in the card and set as the Space variable DIFFSEG_CHECKPOINT)")
    _common(space)


def run(args: argparse.Namespace) -> int:
    from diffseg30k.cli import CommandError
    from diffseg30k.hub import HubError, format_manifest, publish

    source = getattr(args, "checkpoint", None) if args.kind == "model" else getattr(args, "folder", None)
    try:
        plan = publish(args.kind, args.repo_id, source, out=args.out, dry_run=args.dry_run,
                       private=args.private, revision=args.revision, token=args.token,
                       license=getattr(args, "license", "apache-2.0"),
                       checkpoint=getattr(args, "checkpoint", None) if args.kind == "space" else None,
                       overwrite=args.overwrite, dataset_id=getattr(args, "dataset_id", None))
    except FileExistsError as err:
        raise CommandError(f"{args.out}: already exists (add --overwrite to replace it)") from err
    except HubError as err:
        raise CommandError(str(err)) from err
    target = f"{args.kind} {args.repo_id}" + (f" (branch {args.revision})" if args.revision else "")
    visibility = "private" if args.private else "public"
    print(("dry run: would upload to " if args.dry_run else "uploaded to ") + f"{target}, {visibility}:")
    print(format_manifest(plan.files))
    for name in plan.skipped:
        print(f"left out: {name}")
    if args.out:
        print(f"repository folder: {plan.folder}")
    if plan.url:
        print(f"commit: {plan.url}")
    return 0
