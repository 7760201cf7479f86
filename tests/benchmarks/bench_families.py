"""Benchmark 16: parameters and FLOPs at 512^2 of every registry detector, CPU latency at 512^2 of the
full-size configs of the new families against SegFormer-B2 measured in the same run.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (one forward, batch 1, eval mode; a
multiply-add counts 2); models are built from their configs with random weights (no download).
Latency: ``Detector`` (the inference path: padding, softmax, fused SegFormer head where it applies)
on one 512x512 image, median of ``--repeats`` after one warm-up, ``--threads`` torch threads. Prints
JSON with each latency also as a ratio to the SegFormer-B2 peer.

    python tests/benchmarks/bench_families.py [--threads 1] [--repeats 3] [--skip-latency]
"""

from __future__ import annotations

import argparse
import json
import os
import time

LATENCY_MODELS = ("segformer-b2", "trufor-b2", "dctfreq-b2", "foundation-dinov2-b", "foundation-clip-b16")


def count(name: str, size: int = 512) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from diffseg30k.models.registry import build_model

    model = build_model(name, task="semantic", from_scratch=True).eval()
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(pixel_values=torch.randn(1, 3, size, size))
    return {"params_m": round(params / 1e6, 3), "trainable_params_m": round(trainable / 1e6, 3),
            "gflops_512": round(counter.get_total_flops() / 1e9, 2)}


def latency(name: str, repeats: int, size: int = 512) -> float:
    import numpy as np

    from diffseg30k.detector import Detector
    from diffseg30k.models.registry import build_model

    detector = Detector(build_model(name, task="semantic", from_scratch=True), device="cpu")
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    detector(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        detector(image)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--models", help="comma-separated registry names (default: all; latency: "
                                         "segformer-b2 plus those of LATENCY_MODELS listed)")
    args = parser.parse_args()
    import torch

    from diffseg30k.models.registry import available_models

    torch.set_num_threads(args.threads)
    chosen = [m for m in (args.models or "").split(",") if m] or available_models()
    models = {name: count(name) for name in chosen}
    result: dict = {"size": 512, "threads": args.threads, "load_average": list(os.getloadavg()),
                    "models": models}
    if not args.skip_latency:
        timed = [n for n in LATENCY_MODELS if n == "segformer-b2" or not args.models or n in chosen]
        seconds = {name: latency(name, args.repeats) for name in timed}
        peer = seconds["segformer-b2"]
        result["latency_512_s"] = {n: {"seconds": round(s, 3), "ratio_to_segformer_b2": round(s / peer, 2)}
                                   for n, s in seconds.items()}
        result["load_average_after"] = list(os.getloadavg())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
