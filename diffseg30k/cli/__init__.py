"""The ``diffseg30k`` command line: argument parsing only.

Each subcommand is one module in this package exposing ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Modules import heavy libraries inside ``run`` so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from diffseg30k import __version__
from diffseg30k.outputs import OUTPUT_ERRNOS, OutputError, output_error

__all__ = ["SUBCOMMANDS", "CommandError", "build_parser", "main"]

SUBCOMMANDS = ("convert", "generate", "train", "evaluate", "benchmark", "predict", "push", "demo", "list")


class CommandError(Exception):
    """A user-facing failure: printed without a traceback, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffseg30k", description="DiffSeg30k toolkit: localized AI-edit detection and attribution."
    )
    parser.add_argument("--version", action="version", version=f"diffseg30k {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"diffseg30k.cli.{name}_cmd")
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    try:
        return int(args._run(args) or 0)
    except CommandError as err:
        print(f"diffseg30k {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (OSError, OutputError) as err:  # unwritable outputs (read-only, disk full...): one line
        if isinstance(err, OSError):
            if err.errno not in OUTPUT_ERRNOS:
                raise
            err = output_error(err)
        print(f"diffseg30k {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"diffseg30k {args.command}: interrupted", file=sys.stderr)
        return 130
