"""Benchmark 16b: the new detector families against SegFormer on the embedded mini data, same budget.

Runs the quick benchmark plan (``diffseg30k benchmark --families ...``) up to its ``families`` step --
Tab. 2 (binary and semantic trainings), Tab. 4 with one hold-out pair, and the families table: clean
mIoU, semantic mIoU ratios under JPEG 60 / resizing with paired-bootstrap intervals -- every family
with the quick preset's crops, batch size and input stem, and ``--max-steps`` steps per training (three
trainings per family). Prints the families rows and, per training and per family, the wall time and
the CPU seconds (this process + its data workers) as JSON; the full report is in ``OUT/report.md``.

Budget: the defaults (4 families x 3 trainings x 200 steps, 128-px crops, batch 8, 1 thread) take
~20 minutes of one core at low load on the embedded mini data (per-step training cost on one thread
measured here, load ~3.8 on the 2-core VM: TruFor 0.41 s, SegFormer 0.22 s, DCT 0.21 s, foundation
0.09 s); the quick preset's 500 steps took over 30 minutes.

    python tests/benchmarks/bench_families_mini.py --out /tmp/families [--families segformer,trufor,...]
        [--max-steps 200] [--stem srm|bayar|none]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections import defaultdict
from typing import Any

DEFAULT_FAMILIES = "segformer,trufor,dctfreq,foundation"
DEFAULT_STEPS = 200


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (DataLoader workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_trainings(records: dict[str, dict[str, Any]]) -> None:
    """Wrap the plan's ``train_detector`` so each training's wall time and CPU seconds land in ``records``."""
    from diffseg30k.experiments import artifacts

    original = artifacts.train_detector

    def train_detector(ctx, family, task, holdout=(), augment=None):
        wall, cpu = time.perf_counter(), _cpu_seconds()
        info = original(ctx, family, task, holdout=holdout, augment=augment)
        records[info["key"]] = {"family": family, "wall_s": round(time.perf_counter() - wall, 1),
                                "cpu_s": round(_cpu_seconds() - cpu, 1)}
        return info

    artifacts.train_detector = train_detector


def per_family(trainings: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Training wall time and CPU seconds summed per family."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"trainings": 0, "wall_s": 0.0, "cpu_s": 0.0})
    for record in trainings.values():
        total = totals[record["family"]]
        total["trainings"] += 1
        total["wall_s"] = round(total["wall_s"] + record["wall_s"], 1)
        total["cpu_s"] = round(total["cpu_s"] + record["cpu_s"], 1)
    return dict(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--families", default=DEFAULT_FAMILIES, help=f"default {DEFAULT_FAMILIES}")
    parser.add_argument("--max-steps", type=int, default=DEFAULT_STEPS,
                        help=f"optimizer steps per training (default {DEFAULT_STEPS}; the quick preset: 500)")
    parser.add_argument("--stem", choices=("none", "srm", "bayar"),
                        help="input stem of every family (default: the quick config's)")
    parser.add_argument("--dataset", help="dataset folder instead of the embedded mini data")
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    from diffseg30k.experiments.benchmark import run_benchmark
    from diffseg30k.experiments.config import quick_config
    from diffseg30k.experiments.reference import HOLDOUTS

    base = quick_config()
    overrides = {**base.train_overrides, "max_steps": args.max_steps}
    if args.stem:
        overrides["stem"] = args.stem
    config = quick_config(dataset=args.dataset, holdouts=HOLDOUTS[:1], bootstrap=args.bootstrap,
                          train_overrides=overrides)
    config = config.with_families([f.strip() for f in args.families.split(",") if f.strip()])
    trainings: dict[str, dict[str, Any]] = {}
    timed_trainings(trainings)
    load_before, started = os.getloadavg(), time.perf_counter()
    records = run_benchmark(config, args.out, steps=["families"], progress=False)
    data = records["data"]["result"].get("origin")
    print(json.dumps({"families": records["families"]["result"]["rows"], "max_steps": args.max_steps,
                      "stem": overrides.get("stem"), "training": trainings,
                      "training_per_family": per_family(trainings), "data": data,
                      "step_wall_s": {n: r.get("wall_s") for n, r in records.items()},
                      "total_wall_s": round(time.perf_counter() - started, 1),
                      "load_average_before": load_before, "load_average_after": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
