"""``python -m diffseg30k.generation.worker_main ARGUMENTS INDEX``: one local worker's share of a
generation run (started by :func:`diffseg30k.generation.local_workers.generate_with_workers`)."""

from __future__ import annotations

import sys

from diffseg30k.generation.local_workers import read_arguments
from diffseg30k.generation.pipeline import run_share


def main(argv: list[str]) -> None:
    config = read_arguments(argv[0])
    run_share(config, int(argv[1]), config.workers, config.device or "cpu")


if __name__ == "__main__":
    main(sys.argv[1:])
