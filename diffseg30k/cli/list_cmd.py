"""`diffseg30k list`: what the registries hold (detectors, classifiers, editors, distortions, steps)."""

from __future__ import annotations

import argparse

HELP = "list the registered detectors, classifiers, editors, distortions and benchmark steps"
KINDS = ("detectors", "classifiers", "editors", "distortions", "steps", "tables")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kinds", nargs="*", metavar="KIND",
                        help=f"what to list: {', '.join(KINDS)} (default: all)")


def run(args: argparse.Namespace) -> int:
    from diffseg30k.cli import CommandError
    from diffseg30k.registries import registries
    from diffseg30k.registry import RegistryError

    found = registries()
    for kind in args.kinds:
        if kind not in found:
            raise CommandError(str(RegistryError("registry", kind, found)))
    chosen = args.kinds or list(found)
    for number, kind in enumerate(chosen):
        print(("\n" if number else "") + f"{kind}:")
        print("\n".join("  " + line for line in found[kind].listing().splitlines()))
    return 0
