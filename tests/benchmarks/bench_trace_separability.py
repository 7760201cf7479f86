"""Benchmark 15c: can the mini editor families' traces be told apart? (a data check, no detector).

Random 64-px crops of the bundled photos (12 photos for training, the other 4 held out) are passed
through every family's shipped component; a small CNN (fixed seed, 1 thread) learns to name the
family -- or "real" for the untouched crop -- from 32-px patches. Reported: held-out accuracy and the
confusion matrix for clean patches; the same classifier on the held-out patches after JPEG quality 60
(``plain_on_jpeg60``: the trace JPEG leaves to a model that never saw JPEG); and, as the peer in the
same run, a classifier trained and tested on JPEG-60 patches (``jpeg60``: what augmentation can get
back).

    python tests/benchmarks/bench_trace_separability.py [--steps 1500]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time

import numpy as np
import torch
from PIL import Image
from torch import nn


def jpeg(batch: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG-compress a batch in [-1, 1] (uint8 round trip through PIL)."""
    out = []
    for image in ((batch.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy():
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=quality)
        out.append(np.asarray(Image.open(buffer).convert("RGB")))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def patches(components: list, photos: list[np.ndarray], per_class: int, seed: int) -> tuple:
    """Crops of ``photos`` (class 0) and their re-synthesis by each component (class i+1), uint8-quantised;
    each component draws its sampler residual (``ComponentSpec.latent_noise``) from a seeded generator,
    as the mini editors do."""
    from diffseg30k.generation.train_mini_components import crops

    source = next(crops(photos, 64, per_class, seed))
    images, labels = [source], [torch.zeros(per_class, dtype=torch.long)]
    with torch.inference_mode():
        for index, component in enumerate(components):
            generator = torch.Generator().manual_seed(1000 * seed + index)
            images.append(component(source, generator).clamp(-1, 1))
            labels.append(torch.full((per_class,), index + 1))
    return ((torch.cat(images) + 1) * 127.5).round() / 127.5 - 1.0, torch.cat(labels)


def classifier(classes: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))


def separability(train: tuple, val: tuple, classes: int, steps: int, also: dict | None = None) -> dict:
    """Train the patch classifier on random 32-px windows; score the held-out centre windows (and
    those of each extra held-out set in ``also``: name -> images)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = classifier(classes)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    images, labels = train
    for _ in range(steps):
        index = torch.from_numpy(rng.integers(len(images), size=32))
        top, left = rng.integers(0, 33, size=2)
        logits = net(images[index][..., top:top + 32, left:left + 32])
        loss = nn.functional.cross_entropy(logits, labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.inference_mode():
        predicted = net(val[0][..., 16:48, 16:48]).argmax(1)
        extra = {name: round(float((net(images[..., 16:48, 16:48]).argmax(1) == val[1]).float().mean()), 3)
                 for name, images in (also or {}).items()}
    confusion = np.zeros((classes, classes), dtype=int)
    np.add.at(confusion, (val[1].numpy(), predicted.numpy()), 1)
    accuracy = round(float((predicted == val[1]).float().mean()), 3)
    return {"accuracy": accuracy, **extra, "confusion": confusion.tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--per-class", type=int, default=96)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from diffseg30k.generation.components import cached_component
    from diffseg30k.generation.editors.registry import get_editor_class, installed_generators
    from diffseg30k.generation.train_mini_components import photo_arrays

    names = installed_generators()
    components = [cached_component(get_editor_class(name).component) for name in names]
    photos = photo_arrays()
    start, load = time.process_time(), os.getloadavg()
    train = patches(components, photos[:12], args.per_class, seed=0)
    val = patches(components, photos[12:], args.per_class // 3, seed=1)
    classes = len(names) + 1
    clean = separability(train, val, classes, args.steps, also={"plain_on_jpeg60": jpeg(val[0], 60)})
    compressed = separability((jpeg(train[0], 60), train[1]), (jpeg(val[0], 60), val[1]), classes, args.steps)
    print(json.dumps({"classes": ["real", *names], "chance": round(1 / classes, 3), "clean": clean,
                      "jpeg60": compressed, "held_out_photos": len(photos) - 12, "steps": args.steps,
                      "cpu_s": round(time.process_time() - start, 1),
                      "load_average": [load, os.getloadavg()]},
                     indent=1))


if __name__ == "__main__":
    main()
