"""Build the DiffSeg30k dataset repository (parquet shards + card) from a raw release.

A thin shell over ``diffseg30k.data.convert`` (``datasets`` >= 4 no longer runs loading scripts, so the
published form is parquet + a card whose YAML ``configs`` name the files of each split)::

    python dataset_script/build.py train.zip val.zip --out diffseg30k-parquet [--extra-real coco_real/]
    python dataset_script/build.py --card-template dataset_script/README.md

The first form is ``diffseg30k convert`` with the same arguments; the second rewrites the card template
kept in this folder (the card the converter writes, with split sizes left to the converter).
"""

from __future__ import annotations

import sys
from pathlib import Path


def write_card_template(path: str | Path) -> None:
    """Write the card template: the converter's card for the official splits, sizes left open."""
    from diffseg30k.data.card import render_card
    from diffseg30k.data.convert import features
    from diffseg30k.io import atomic_write_text
    from diffseg30k.labels import LabelSet

    counts = {"train": None, "validation": None}
    atomic_write_text(path, render_card(features(True), counts, {}, LabelSet(), repo="<user>/diffseg30k"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--card-template"]:
        write_card_template(argv[1] if len(argv) > 1 else Path(__file__).with_name("README.md"))
        return 0
    from diffseg30k.cli import main as cli_main

    return cli_main(["convert", *argv])


if __name__ == "__main__":
    sys.exit(main())
