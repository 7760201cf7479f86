"""Learning curve of the quick recipe on the mini data: validation mIoU every ``--eval-every`` steps.

    python tests/benchmarks/bench_quick_learning.py --dataset CONVERTED_MINI [--model fcn8s-tiny]
        [--task binary] [--steps 1500] [--eval-every 250] [--loss balanced]

Trains one detector with the ``quick`` preset plus the benchmark's quick overrides
(:func:`diffseg30k.experiments.config.quick_config`), evaluating on the validation split during
training (TensorBoard events, read back), and prints one JSON object: the curve, the wall time and the
load average (the machine is shared). The peer is the same run with ``--loss ce``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def curve(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points = []
    for events in run_dir.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events.parent))
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            points += [(e.step, round(e.value, 4)) for e in acc.Scalars(tag)]
    return sorted(points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", default="fcn8s-tiny")
    parser.add_argument("--task", default="binary")
    parser.add_argument("--steps", type=int, default=None, help="default: the quick config's max_steps")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--loss", default=None, help="ce | balanced (default: the quick preset's)")
    parser.add_argument("--augment", default=None)
    args = parser.parse_args()
    import torch

    from diffseg30k.experiments.config import quick_config
    from diffseg30k.train import train
    from diffseg30k.training.config import TrainConfig

    torch.set_num_threads(1)
    overrides = dict(quick_config().train_overrides)
    overrides.update(eval_split="validation", eval_every=args.eval_every, log_with="tensorboard",
                     progress=False, max_eval_samples=None)
    if args.steps:
        overrides["max_steps"] = args.steps
    if args.loss:
        overrides["loss"] = args.loss
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        load = os.getloadavg()[0]
        train(TrainConfig(dataset=args.dataset, out=Path(tmp) / "run", model=args.model, task=args.task,
                          preset="quick", from_scratch=True, augment=args.augment, **overrides))
        seconds = time.perf_counter() - start
        tag = f"eval/{args.task}_miou"
        print(json.dumps({"model": args.model, "task": args.task,
                          "loss": overrides.get("loss", "preset"),
                          "augment": args.augment, "steps": overrides["max_steps"],
                          "wall_s": round(seconds, 1),
                          "loadavg_start": load, "loadavg_end": os.getloadavg()[0],
                          "curve": curve(Path(tmp) / "run", tag)}, indent=1))


if __name__ == "__main__":
    main()
