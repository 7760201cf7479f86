"""Evaluation during training: full-resolution predictions scored with ``DiffSegMetric``.

Each process scores a strided shard of the evaluation table; the per-image ``PairStats`` are
gathered and added up on the main process. Images of equal size are batched together.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from diffseg30k.labels import map_for_task
from diffseg30k.models.inference import (
    equal_size_batches,
    normalize_batch,
    predict_label_maps,
    preprocessing_tensors,
)
from diffseg30k.models.segformer import fuse_for_inference
from diffseg30k.training.data import decode_image, undecoded


def _pairs(table, indices: list[int]):
    """(uint8 image, label map) of each row, decoded one at a time."""
    for index in indices:
        row = table[index]
        name = str(row.get("id", index))
        yield (np.asarray(decode_image(row["image"], f"sample {name} image").convert("RGB")),
               np.asarray(decode_image(row["mask"], f"sample {name} mask")))


def _batches(table, indices: list[int], batch_size: int):
    """Lists of (uint8 image, label map) of one size, at most ``batch_size`` long (the Detector's rule)."""
    return equal_size_batches(_pairs(table, indices), batch_size, lambda pair: pair[0].shape)


def evaluate_model(accelerator, model, table, task: str, num_labels: int,
                   batch_size: int = 4) -> dict[str, Any] | None:
    """Metrics of ``model`` on ``table`` (dict on the main process, ``None`` elsewhere)."""
    from accelerate.utils import gather_object

    from diffseg30k.metrics import DiffSegMetric

    table = undecoded(undecoded(table, "image"), "mask")
    metric = DiffSegMetric(num_classes=num_labels, task="both" if task == "semantic" else "binary",
                           id2label=dict(model.config.id2label))
    mean, std = preprocessing_tensors(model.config, accelerator.device)
    indices = list(range(accelerator.process_index, len(table), accelerator.num_processes))
    was_training = model.training
    model.eval()
    runner = fuse_for_inference(model)  # SegFormer: folded decode head, same maps, ~2x faster
    stats = []
    for group in _batches(table, indices, batch_size):
        pixels = torch.from_numpy(np.stack([g[0] for g in group])).to(accelerator.device)
        with accelerator.autocast():
            maps = predict_label_maps(runner, normalize_batch(pixels, mean, std)).cpu().numpy()
        for prediction, (_, reference) in zip(maps, group):
            stats.append(metric.pair_stats(prediction, map_for_task(reference, task)))
    model.train(was_training)
    if accelerator.num_processes > 1:
        stats = gather_object(stats)
    if not accelerator.is_main_process:
        return None
    for item in stats:
        metric.add_stats(item)
    return metric.compute()


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The loggable scalars of a metrics dict."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, int | float | np.floating | np.integer) and not isinstance(v, bool)}
