"""Benchmark 6c (GPU, <= 8 minutes on one H100): SegFormer-B2 at 512^2 in bf16.

1. Training img/s: DiffSeg30k's data path (uint8 crops decoded in workers, normalised on the GPU)
   and SegFormer with the reordered decode head vs the plain recipe of transformers'
   semantic-segmentation example (PIL + per-sample float transforms, default DataLoader without
   workers, stock SegFormer), same initial weights, batch, optimizer, bf16 autocast.
2. Inference img/s: ``Detector`` (fused decode head, bf16) on batches of 512^2 images, and
   ``transformers.pipeline("image-segmentation")`` on the same weights.

Synthetic 1024^2 images stand in for DiffSeg30k (same format: PNG RGB + L label map). Prints JSON.

    python tests/benchmarks/gpu_segformer_b2.py            # on a CUDA machine
    python tests/benchmarks/gpu_segformer_b2.py --smoke    # seconds on a CPU: checks the script runs
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_train_cpu import plain_loader, run_steps, stock_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny model on CPU, a few steps")
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=min(12, os.cpu_count() or 1))
    args = parser.parse_args()
    smoke = args.smoke
    device = torch.device("cpu" if smoke else "cuda")
    model_name, size, crop = ("segformer-tiny", 96, 64) if smoke else ("segformer-b2", 1024, 512)
    images, batch, steps = (8, 2, 2) if smoke else (args.images, args.batch, args.steps)
    dtype = torch.bfloat16  # the smoke run exercises the bf16 code paths on the CPU too
    started = time.time()

    from diffseg30k.data.synthetic import synthetic_dataset
    from diffseg30k.detector import Detector
    from diffseg30k.models.common import IMAGENET_MEAN, IMAGENET_STD
    from diffseg30k.models.inference import normalize_batch
    from diffseg30k.models.registry import build_model
    from diffseg30k.training.checkpoints import export_detector
    from diffseg30k.training.data import CropDataset, make_loader

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    table = synthetic_dataset(images, (size, size), seed=0)
    mean_t = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    mean_np, std_np = np.array(IMAGENET_MEAN, np.float32), np.array(IMAGENET_STD, np.float32)

    def fresh(stock: bool = False):
        torch.manual_seed(0)
        model = build_model(model_name, from_scratch=True, crop_size=crop)
        model = (stock_model(model) if stock else model).to(device).train()
        return model, torch.optim.AdamW(model.parameters(), lr=6e-5, weight_decay=0.01)

    report: dict = {"benchmark": "6c SegFormer-B2 512^2 bf16", "device": str(device),
                    "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
                    "batch": batch, "crop": crop, "workers": args.workers}
    total = (steps + 2) * batch
    repeated = table.select(np.arange(total) % len(table))
    model, optimizer = fresh(stock=True)
    report["train_plain_img_per_s"] = run_steps(
        model, optimizer, plain_loader(repeated, crop, batch, mean_np, std_np), steps,
        lambda b: (b["pixel_values"].to(device, non_blocking=True),
                   b["labels"].to(device, non_blocking=True)), dtype)
    model, optimizer = fresh()
    dataset = CropDataset(table, crop, "semantic", 9, seed=0)
    loader = make_loader(dataset, batch, 0, 0, steps + 2, 0, 1, 0 if smoke else args.workers)
    report["train_ours_img_per_s"] = run_steps(
        model, optimizer, loader, steps,
        lambda b: (normalize_batch(b[0].to(device, non_blocking=True), mean_t, std_t),
                   b[1].to(device, non_blocking=True).long()), dtype)
    report["train_speedup"] = report["train_ours_img_per_s"] / report["train_plain_img_per_s"]
    if device.type == "cuda":
        report["train_peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20

    folder = Path(tempfile.mkdtemp(prefix="gpu-b2-")) / "ckpt"
    export_detector(model.eval().float().cpu(), folder, {})
    del model, optimizer
    frames = [np.asarray(table[i]["image"])[:crop, :crop] for i in range(batch)]
    detector = Detector.from_pretrained(folder, device=device, batch_size=batch)
    if dtype is not None:
        detector.model.to(dtype)
    detector.predict_label_maps(frames)  # warm-up
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rounds = 2 if smoke else 10
    sync()
    start = time.perf_counter()
    for _ in range(rounds):
        detector.predict_label_maps(frames)
    sync()
    report["infer_detector_label_maps_img_per_s"] = rounds * batch / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(rounds):
        detector(frames)
    sync()
    report["infer_detector_full_results_img_per_s"] = rounds * batch / (time.perf_counter() - start)

    from PIL import Image
    from transformers import pipeline

    pil_frames = [Image.fromarray(f) for f in frames]
    for pipeline_dtype in (dtype, torch.float32):  # fall back if the pipeline cannot run bf16 inputs
        segmenter = pipeline("image-segmentation", model=str(folder), device=device, dtype=pipeline_dtype)
        try:
            segmenter(pil_frames[:2])
            break
        except RuntimeError as err:
            report["pipeline_bf16_error"] = str(err)[:200]
    report["pipeline_dtype"] = str(pipeline_dtype)
    sync()
    start = time.perf_counter()
    for _ in range(rounds):
        segmenter(pil_frames, batch_size=batch)
    sync()
    report["infer_pipeline_img_per_s"] = rounds * batch / (time.perf_counter() - start)
    report["infer_speedup"] = (report["infer_detector_full_results_img_per_s"]
                               / report["infer_pipeline_img_per_s"])
    report["wall_s"] = time.time() - started
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in report.items()}, indent=2))


if __name__ == "__main__":
    main()
