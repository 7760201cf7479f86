"""Benchmark 6a: CPU training-step throughput, DiffSeg30k's data path vs the plain recipe.

Peer ("plain recipe" of transformers' semantic-segmentation example): ``datasets`` decodes PIL
images, per-sample transforms (pad, random crop, flip, normalise to float32, to tensor) via
``with_transform``, the default ``DataLoader`` (no workers, as ``Trainer`` defaults to) and default
collation; transformers' stock SegFormer. Ours: :mod:`diffseg30k.training.data` (only the PNG rows a
crop needs are decoded, in workers; uint8 batches normalised in one op) and the registry's model
(SegFormer with the reordered decode head: same weights, same function). Same initial weights, data,
crop, batch size, optimizer and thread count. Prints JSON.

    python tests/benchmarks/bench_train_cpu.py [--model segformer-tiny] [--size 1024] [--steps 12]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch


def plain_loader(table, crop: int, batch: int, mean, std, workers: int = 0):
    def transform(batch_rows):
        images, labels = [], []
        for image, mask in zip(batch_rows["image"], batch_rows["mask"]):
            pixels, target = np.array(image.convert("RGB")), np.array(mask)
            top = np.random.randint(0, max(1, pixels.shape[0] - crop + 1))
            left = np.random.randint(0, max(1, pixels.shape[1] - crop + 1))
            window = (slice(top, top + crop), slice(left, left + crop))
            pixels, target = pixels[window], target[window]
            if np.random.rand() < 0.5:
                pixels, target = pixels[:, ::-1], target[:, ::-1]
            pixels = (pixels.astype(np.float32) / 255.0 - mean) / std
            images.append(torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))))
            labels.append(torch.from_numpy(np.ascontiguousarray(target)).long())
        return {"pixel_values": images, "labels": labels}

    dataset = table.with_transform(transform)
    return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True,
                                       num_workers=workers)


def stock_model(model):
    """The plain recipe trains transformers' SegFormer as is: the stock decode head, same weights."""
    from transformers.models.segformer.modeling_segformer import SegformerDecodeHead

    head = getattr(model, "decode_head", None)
    if isinstance(head, SegformerDecodeHead) and type(head) is not SegformerDecodeHead:
        stock = SegformerDecodeHead(model.config).to(next(head.parameters()).device)
        stock.load_state_dict(head.state_dict())
        model.decode_head = stock
    return model


def run_steps(model, optimizer, batches, steps: int, prepare, autocast_dtype=None) -> float:
    """Images per second over ``steps`` optimizer steps after 2 warm-up steps."""
    device = next(model.parameters()).device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    iterator = iter(batches)
    start = None
    for index in range(steps + 2):
        if index == 2:
            sync()
            start = time.perf_counter()
        pixels, labels = prepare(next(iterator))
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            loss = model(pixel_values=pixels, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync()
    return steps * pixels.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="segformer-tiny")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--workers", default="0,1,2")
    parser.add_argument("--plain-workers", default="0,2", help="0 = the recipe's default DataLoader")
    args = parser.parse_args()

    from diffseg30k.data.synthetic import synthetic_dataset
    from diffseg30k.models.common import IMAGENET_MEAN, IMAGENET_STD
    from diffseg30k.models.inference import normalize_batch
    from diffseg30k.models.registry import build_model
    from diffseg30k.training.data import CropDataset, make_loader

    table = synthetic_dataset(args.images, (args.size, args.size), seed=0)
    mean_t = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std_t = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    mean_np, std_np = np.array(IMAGENET_MEAN, np.float32), np.array(IMAGENET_STD, np.float32)
    total = (args.steps + 2) * args.batch

    def fresh(stock: bool = False):
        torch.manual_seed(0)
        model = build_model(args.model, from_scratch=True, crop_size=args.crop).train()
        model = stock_model(model) if stock else model
        return model, torch.optim.AdamW(model.parameters(), lr=1e-4)

    results = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        model, optimizer = fresh()
        repeated = table.select(np.arange(total) % len(table))
        for workers in [int(w) for w in args.plain_workers.split(",")]:
            model, optimizer = fresh(stock=True)
            loader = plain_loader(repeated, args.crop, args.batch, mean_np, std_np, workers)
            plain = run_steps(model, optimizer, loader, args.steps,
                              lambda b: (b["pixel_values"], b["labels"]))
            results.append({"pipeline": "plain recipe", "threads": threads, "workers": workers,
                            "img_per_s": plain})
        for workers in [int(w) for w in args.workers.split(",")]:
            model, optimizer = fresh()
            dataset = CropDataset(table, args.crop, "semantic", 9, seed=0)
            loader = make_loader(dataset, args.batch, 0, 0, args.steps + 2, 0, 1, workers)
            ours = run_steps(model, optimizer, loader, args.steps,
                             lambda b: (normalize_batch(b[0], mean_t, std_t), b[1].long()))
            results.append({"pipeline": "diffseg30k", "threads": threads, "workers": workers,
                            "img_per_s": ours})
    best_plain = max(r["img_per_s"] for r in results if r["pipeline"] == "plain recipe" and r["workers"] == 0)
    best_plain_any = max(r["img_per_s"] for r in results if r["pipeline"] == "plain recipe")
    best_ours = max(r["img_per_s"] for r in results if r["pipeline"] == "diffseg30k")
    print(json.dumps({"benchmark": "6a train step throughput (CPU)", "model": args.model,
                      "image_size": args.size, "crop": args.crop, "batch": args.batch,
                      "cpus": len(os.sched_getaffinity(0)), "runs": results,
                      "best_plain_img_per_s": round(best_plain, 2),
                      "best_ours_img_per_s": round(best_ours, 2),
                      "speedup": round(best_ours / best_plain, 2),
                      "best_plain_with_workers_img_per_s": round(best_plain_any, 2),
                      "speedup_vs_plain_with_workers": round(best_ours / best_plain_any, 2)}, indent=2))


if __name__ == "__main__":
    main()
