"""Benchmark 6b: Detector latency for SegFormer-B2 (random init) vs transformers' pipeline.

Both read the same checkpoint folder (``config.json`` + ``model.safetensors`` +
``preprocessor_config.json`` with ``do_resize=False``), so both run at the image's native resolution.
The pipeline is ``transformers.pipeline("image-segmentation", model=folder)`` with its default
image processor and post-processing; ours is ``Detector.from_pretrained(folder)`` returning the label
map, full-resolution probabilities and per-generator areas. Each (method, size, threads) case runs in
its own process so peak RSS is per case. Prints JSON.

    python tests/benchmarks/bench_detector_cpu.py [--sizes 512,1024] [--threads 1,2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _case(folder: str, method: str, size: int, threads: int, repeats: int) -> dict:
    import numpy as np
    import torch
    from PIL import Image

    torch.set_num_threads(threads)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8))
    if method == "pipeline":
        from transformers import pipeline

        runner = pipeline("image-segmentation", model=folder, device=-1)
        run = lambda: runner(image)  # noqa: E731
    else:
        from diffseg30k.detector import Detector

        runner = Detector.from_pretrained(folder, device="cpu", fuse=(method == "detector"))
        run = lambda: runner(image)  # noqa: E731
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"method": method, "size": size, "threads": threads, "latency_s": min(times),
            "latency_median_s": sorted(times)[len(times) // 2], "peak_rss_mib": peak / 1024,
            "peak_rss_growth_mib": (peak - before) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        folder, method, size, threads, repeats = args.case
        print(json.dumps(_case(folder, method, int(size), int(threads), int(repeats))))
        return

    import torch

    from diffseg30k.models.registry import build_model
    from diffseg30k.training.checkpoints import export_detector

    torch.manual_seed(0)
    folder = Path(tempfile.mkdtemp(prefix="bench-b2-")) / "segformer-b2"
    export_detector(build_model("segformer-b2", from_scratch=True), folder, {})
    runs = []
    for size in [int(s) for s in args.sizes.split(",")]:
        for threads in [int(t) for t in args.threads.split(",")]:
            for method in ("pipeline", "detector", "detector-unfused"):
                out = subprocess.run([sys.executable, __file__, "--case", str(folder), method, str(size),
                                      str(threads), str(args.repeats)], capture_output=True, text=True)
                if out.returncode != 0:
                    raise SystemExit(out.stderr[-2000:])
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    summary = {}
    for size in {r["size"] for r in runs}:
        best = {m: min(r["latency_s"] for r in runs if r["size"] == size and r["method"] == m)
                for m in ("pipeline", "detector", "detector-unfused")}
        summary[str(size)] = {**{f"{m}_best_s": round(v, 3) for m, v in best.items()},
                              "speedup_vs_pipeline": round(best["pipeline"] / best["detector"], 2)}
    print(json.dumps({"benchmark": "6b Detector latency, SegFormer-B2 random init, CPU", "runs": runs,
                      "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
