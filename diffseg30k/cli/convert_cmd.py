"""`diffseg30k convert`: release zips/folders, parquet exports or generation output -> dataset folder."""

from __future__ import annotations

import argparse

HELP = "convert the official release, a parquet export or generation output into a datasets folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="SRC",
                        help="zip archives, folders of NNNNNNNN.image.png/.mask.png pairs (with optional "
                             "metadata.jsonl), or parquet files; the split comes from the archive/folder "
                             "name (train*, val*, test*), else a deterministic 8:2 train/validation split. "
                             "IML layouts (a Tp/+Gt/ folder, an IMDL-BenCo JSON list, a CocoGlide folder) "
                             "are detected and convert as binary-only sets (split 'test' unless named)")
    parser.add_argument("--preset", metavar="NAME",
                        help="dataset preset the sources are (its card, licence and Hub layout), e.g. "
                             "cocoglide, tgif, autosplice; see `diffseg30k evaluate --list-datasets`")
    parser.add_argument("--out", required=True,
                        help="output dataset folder (built in a temporary folder, moved in at the end)")
    parser.add_argument("--extra-real", metavar="DIR",
                        help="folder of unedited real images added to train with all-zero masks")
    parser.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                        help="stop at the first bad file (default) or skip bad files and list them")
    parser.add_argument("--verify", choices=("fast", "full"), default="fast",
                        help="fast: check RGB PNG images by structure and CRC without decoding pixels "
                             "(default); full: decode every image")
    parser.add_argument("--shard-size", default="500MB", help="target parquet shard size (default 500MB)")
    parser.add_argument("--workers", type=int, default=None, help="decoding threads (default: up to 4)")
    parser.add_argument("--id2label", metavar="JSON", help="label mapping overriding the default one")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from diffseg30k.cli import CommandError
    from diffseg30k.data.convert import convert
    from diffseg30k.data.release import ReleaseError
    from diffseg30k.labels import load_label_set

    try:
        label_set = load_label_set(args.id2label) if args.id2label else None
        summary = convert(args.sources, args.out, extra_real=args.extra_real, on_error=args.on_error,
                          shard_size=args.shard_size, overwrite=args.overwrite, workers=args.workers,
                          label_set=label_set, progress=not args.quiet, verify=args.verify,
                          preset=args.preset)
    except (ReleaseError, FileExistsError, ValueError) as err:
        raise CommandError(str(err)) from err
    print(summary.to_text())
    return 0
