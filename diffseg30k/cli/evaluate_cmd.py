"""`diffseg30k evaluate`: not implemented yet."""

from __future__ import annotations

import argparse
import sys

HELP = "evaluate (not implemented yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    print("diffseg30k evaluate: not implemented yet", file=sys.stderr)
    return 3
