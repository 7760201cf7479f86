"""Benchmark 16b: the new detector families against SegFormer on the embedded mini data, same budget.

Runs the quick benchmark plan (``diffseg30k benchmark --families ...``) up to its ``families`` step --
Tab. 2 (binary and semantic trainings), Tab. 4 with one hold-out pair, and the families table: clean
mIoU, semantic mIoU ratios under JPEG 60 / resizing with paired-bootstrap intervals -- every family
with the quick preset's steps, crops and batch size. Prints the families rows and each training's
wall time as JSON (the full report is in ``OUT/report.md``).

    python tests/benchmarks/bench_families_mini.py --out /tmp/families [--families segformer,trufor,...]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--families", default="segformer,trufor,dctfreq,foundation")
    parser.add_argument("--dataset", help="dataset folder instead of the embedded mini data")
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    from diffseg30k.experiments.benchmark import run_benchmark
    from diffseg30k.experiments.config import quick_config
    from diffseg30k.experiments.reference import HOLDOUTS

    config = quick_config(dataset=args.dataset, holdouts=HOLDOUTS[:1], bootstrap=args.bootstrap)
    config = config.with_families([f.strip() for f in args.families.split(",") if f.strip()])
    load_before = os.getloadavg()
    records = run_benchmark(config, args.out, steps=["families"], progress=False)
    rows = records["families"]["result"]["rows"]
    trainings = {}
    for marker in Path(args.out, "checkpoints").glob("*/benchmark-done.json"):
        started = (marker.parent / "benchmark-settings.json").stat().st_mtime  # written when it began
        trainings[marker.parent.name] = round(marker.stat().st_mtime - started, 1)
    data = records["data"]["result"].get("origin")
    print(json.dumps({"families": rows, "training_wall_s": trainings, "data": data,
                      "step_wall_s": {n: r.get("wall_s") for n, r in records.items()},
                      "load_average_before": load_before, "load_average_after": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
