"""Benchmark 6b: Detector latency on CPU, torch vs the exported runtimes (issue 18), same weights.

SegFormer-B0 and -B2 (random init from config, no download) are saved once as checkpoints; every
runtime reads the same folder. Images are crops of one 12 MP photo (scikit-image's ``coffee``,
upscaled to 4000x3000): 512^2, 1024^2 and the whole photo (24 windows of 1024^2). The peer is
today's torch Detector (``runtime="torch"``, one window per forward pass, ``tile_batch=1``); the
runtimes run with ``tile_batch=2`` (the Detector default is 1). Exports are built (and timed) before the
cases, so each case loads from the cache. Each (model, size, runtime, threads) case runs in its own
process, so its peak RSS (VmHWM) is its own. Agreement is against the torch case of the same model, size
and thread count: the share of identical labels and the largest probability difference. Prints JSON.

    python tests/benchmarks/bench_detector_cpu.py [--models b0,b2] [--sizes 512,1024,12mp]
        [--threads 1,2] [--runtimes onnx,onnx-int8,openvino] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHOTO = (3000, 4000)  # 12 MP, height x width


def _image(size: str):
    import numpy as np
    from PIL import Image

    from diffseg30k.generation.profiles import MINI

    load_photo = MINI.load_photo

    photo = load_photo("coffee").resize(PHOTO[::-1], Image.BICUBIC)
    if size == "12mp":
        return np.asarray(photo)
    side = int(size)
    return np.ascontiguousarray(np.asarray(photo)[1000:1000 + side, 1500:1500 + side])


def _peak_rss_mib() -> float:
    """This process's peak RSS: VmHWM (per address space, so fresh after exec; ``ru_maxrss`` would
    include the parent's peak, inherited across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _case(folder: str, runtime: str, size: str, threads: int, repeats: int, work: str) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from diffseg30k.detector import Detector

    image = _image(size)
    tile_batch = 1 if runtime == "torch" else 2
    detector = Detector.from_pretrained(folder, device="cpu", runtime=runtime, tile_batch=tile_batch)
    if detector.runtime != runtime:
        raise SystemExit(f"{runtime}: fell back to torch: {detector.runtime_note}")
    detector(image if size != "12mp" else image[:1024, :1024])  # warm-up (a 12 MP photo: one tile)
    times = []
    for _ in range(1 if size == "12mp" else repeats):
        start = time.perf_counter()
        result = detector(image)
        times.append(time.perf_counter() - start)
    peak = _peak_rss_mib()
    reference = Path(work) / f"{Path(folder).name}-{size}-{threads}.npz"
    if runtime == "torch":
        np.savez(reference, labels=result.label_map, probs=result.probabilities)
        agreement = {"label_agreement": 1.0, "max_prob_diff": 0.0}
    else:
        torch_out = np.load(reference)
        agreement = {"label_agreement": float((torch_out["labels"] == result.label_map).mean()),
                     "max_prob_diff": float(np.abs(torch_out["probs"] - result.probabilities).max())}
    return {"model": Path(folder).name, "runtime": runtime, "size": size, "threads": threads,
            "tiles": detector.tile_count(*image.shape[:2]), "tile_batch": tile_batch,
            "latency_s": round(min(times), 3), "latency_median_s": round(sorted(times)[len(times) // 2], 3),
            "peak_rss_mib": round(peak), **agreement}


def _prepare(models: list[str], runtimes: list[str], root: Path) -> tuple[dict[str, Path], dict]:
    """Checkpoints saved once, every export built before timing (export seconds reported)."""
    import torch

    from diffseg30k.detector import Detector
    from diffseg30k.models.registry import build_model
    from diffseg30k.training.checkpoints import export_detector

    torch.set_num_threads(1)
    folders, export_s = {}, {}
    for variant in models:
        torch.manual_seed(0)
        folders[variant] = export_detector(build_model(f"segformer-{variant}", from_scratch=True),
                                           root / f"segformer-{variant}", {})
        for runtime in runtimes:
            start = time.perf_counter()
            detector = Detector.from_pretrained(folders[variant], device="cpu", runtime=runtime)
            export_s[f"segformer-{variant}/{runtime}"] = round(time.perf_counter() - start, 1)
            if detector.runtime != runtime:
                raise SystemExit(f"{runtime}: export failed: {detector.runtime_note}")
    return folders, export_s


def _summary(runs: list[dict]) -> dict:
    summary = {}
    for run in runs:
        if run["runtime"] == "torch":
            continue
        peer = next(r for r in runs if r["runtime"] == "torch" and all(
            r[k] == run[k] for k in ("model", "size", "threads")))
        key = f"{run['model']}/{run['size']}/{run['threads']}t/{run['runtime']}"
        summary[key] = {"torch_s": peer["latency_s"], "runtime_s": run["latency_s"],
                        "speedup_vs_torch": round(peer["latency_s"] / run["latency_s"], 2),
                        "label_agreement": round(run["label_agreement"], 5),
                        "max_prob_diff": float(f"{run['max_prob_diff']:.2g}"),
                        "peak_rss_mib": {"torch": peer["peak_rss_mib"], "runtime": run["peak_rss_mib"]}}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="b0,b2")
    parser.add_argument("--sizes", default="512,1024,12mp")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runtimes", default="onnx,onnx-int8,openvino")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        folder, runtime, size, threads, repeats, work = args.case
        print(json.dumps(_case(folder, runtime, size, int(threads), int(repeats), work)))
        return
    models, runtimes = args.models.split(","), args.runtimes.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench-detector-"))
    folders, export_s = _prepare(models, runtimes, work)
    runs = []
    for size in args.sizes.split(","):  # small sizes first: their figures arrive first
        for variant in models:
            for threads in args.threads.split(","):
                for runtime in ["torch", *runtimes]:
                    out = subprocess.run([sys.executable, __file__, "--case", str(folders[variant]), runtime,
                                          size, threads, str(args.repeats), str(work)],
                                         capture_output=True, text=True)
                    if out.returncode != 0:
                        raise SystemExit(out.stderr[-3000:])
                    runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                    print(json.dumps({**runs[-1], "loadavg": os.getloadavg()}), file=sys.stderr, flush=True)
    print(json.dumps({"benchmark": "6b Detector latency: torch vs exported runtimes, CPU",
                      "uptime": os.getloadavg(), "export_s": export_s, "runs": runs,
                      "summary": _summary(runs)}, indent=2))


if __name__ == "__main__":
    main()
