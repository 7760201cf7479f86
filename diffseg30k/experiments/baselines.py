"""Training and scoring of the whole-image classifier baselines (CNNSpot, UniversalFakeDetect).

Both learn "does this image hold an edit?" from edited vs unedited images, with Accelerate (one CPU,
one GPU or many). UniversalFakeDetect's backbone is frozen, so its features are computed once and
only the linear probe is trained, as in Ojha et al. 2023.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from diffseg30k.io import IMAGE_SUFFIXES, image_files
from diffseg30k.models.classifiers import WholeImageClassifier, build_classifier, cnnspot_augment


@dataclass
class ClassifierTrainConfig:
    """Options of :func:`train_classifier` (Adam, BCE with positive-class balancing)."""

    name: str = "cnnspot-tiny"
    steps: int = 60
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    from_scratch: bool = False
    mixed_precision: str = "no"
    augment: bool = True
    num_workers: int = 0
    progress: bool = True


def is_edited(row: dict[str, Any]) -> bool:
    """Truth of a row: any reference pixel with a generator id (``edited_fraction`` when present)."""
    if row.get("edited_fraction") is not None:
        return float(row["edited_fraction"]) > 0
    mask = np.asarray(row["mask"])
    return bool(((mask > 0) & (mask != 255)).any())


def edited_labels(dataset: Any) -> np.ndarray:
    """0/1 truth per row of a ``datasets.Dataset`` (fast path through ``edited_fraction``)."""
    if "edited_fraction" in dataset.column_names:
        return (np.asarray(dataset["edited_fraction"], np.float64) > 0).astype(np.float32)
    return np.asarray([is_edited(row) for row in dataset], np.float32)


class _ImageRows(torch.utils.data.Dataset):
    def __init__(self, dataset: Any, labels: np.ndarray, model: WholeImageClassifier, augment: bool,
                 seed: int) -> None:
        self.dataset, self.labels, self.model, self.augment, self.seed = dataset, labels, model, augment, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.dataset[int(index)]["image"].convert("RGB")
        if self.augment:
            image = cnnspot_augment(image, np.random.default_rng([self.seed, self.epoch, int(index)]))
        return self.model.preprocess([image])[0], torch.tensor(self.labels[index])


def _loader(data: torch.utils.data.Dataset, batch_size: int, seed: int, workers: int
            ) -> torch.utils.data.DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=False,
                                       generator=generator, num_workers=workers)


@torch.no_grad()
def extract_features(model: WholeImageClassifier, dataset: Any, batch_size: int = 32,
                     progress: bool = True) -> torch.Tensor:
    """Frozen-backbone features of every row (UniversalFakeDetect's probe input)."""
    model.eval()
    device = next(model.parameters()).device
    chunks = []
    for start in tqdm(range(0, len(dataset), batch_size), desc="features", disable=not progress, leave=False):
        rows = dataset[start:start + batch_size]["image"]
        chunks.append(model.features(model.preprocess(rows).to(device)).float().cpu())
    return torch.cat(chunks)


def train_classifier(dataset: Any, out: str | Path, config: ClassifierTrainConfig) -> Path:
    """Train a classifier on ``dataset`` rows (``image`` + ``edited_fraction``/``mask``); returns ``out``."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    set_seed(config.seed)
    labels = edited_labels(dataset)
    positives = float(labels.sum())
    if positives in (0.0, float(len(labels))):
        raise ValueError(f"{config.name}: training needs edited and unedited images; got {int(positives)} "
                         f"edited of {len(labels)} (add unedited negatives, e.g. --extra-real)")
    model = build_classifier(config.name, from_scratch=config.from_scratch).to(accelerator.device)
    pos_weight = torch.tensor((len(labels) - positives) / positives, device=accelerator.device)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    if model.frozen:
        feats = extract_features(model, dataset, progress=config.progress and accelerator.is_main_process)
        data: torch.utils.data.Dataset = torch.utils.data.TensorDataset(feats, torch.from_numpy(labels))
        trainable: torch.nn.Module = model.head
    else:
        data = _ImageRows(dataset, labels, model, config.augment, config.seed)
        trainable = model
    optimizer = torch.optim.Adam([p for p in trainable.parameters() if p.requires_grad], lr=config.lr,
                                 weight_decay=config.weight_decay)
    loader = _loader(data, config.batch_size, config.seed, config.num_workers)
    trainable, optimizer, loader = accelerator.prepare(trainable, optimizer, loader)
    trainable.train()
    step, epoch, losses = 0, 0, []
    bar = tqdm(total=config.steps, desc=f"train {config.name}", leave=False,
               disable=not (config.progress and accelerator.is_local_main_process))
    while step < config.steps:
        if isinstance(data, _ImageRows):
            data.epoch = epoch
        for inputs, targets in loader:
            with accelerator.autocast():
                logits = trainable(inputs).squeeze(-1)
                loss = loss_fn(logits.float(), targets.float())
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{config.name}: loss became {loss.item()} at step {step}")
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
            step += 1
            bar.update()
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if step >= config.steps:
                break
        epoch += 1
    bar.close()
    accelerator.wait_for_everyone()
    out = Path(out)
    if accelerator.is_main_process:
        if model.frozen:
            model.head.load_state_dict(accelerator.unwrap_model(trainable).state_dict())
        model.save_pretrained(out)
        summary = {"config": asdict(config), "train_images": len(labels), "train_edited": int(positives),
                   "first_loss": losses[0], "last_loss": losses[-1], "steps": step}
        (out / "training.json").write_text(json.dumps(summary, indent=2))
    accelerator.wait_for_everyone()
    return out


def classifier_scores(model: WholeImageClassifier | str | Path, dataset: Any, batch_size: int = 32,
                      progress: bool = True) -> np.ndarray:
    """Edited-probability of every row of ``dataset``."""
    if not isinstance(model, WholeImageClassifier):
        model = WholeImageClassifier.from_pretrained(model, "cuda" if torch.cuda.is_available() else "cpu")
    scores = []
    for start in tqdm(range(0, len(dataset), batch_size), desc=f"classify {model.name}", leave=False,
                      disable=not progress):
        scores.append(model.predict_proba(dataset[start:start + batch_size]["image"], batch_size))
    return np.concatenate(scores) if scores else np.zeros(0, np.float32)


def with_negatives(dataset: Any, folder: str | Path | None) -> Any:
    """``dataset`` (``image`` + ``edited_fraction``) plus every image under ``folder`` as an unedited
    negative (the paper adds real COCO images to the classifiers' training set)."""
    import datasets

    table = dataset.select_columns(["image", "edited_fraction"])
    if folder is None:
        return table
    paths = [str(p) for p in image_files(folder)]
    if not paths:
        raise ValueError(f"{folder}: no images found (expected {', '.join(IMAGE_SUFFIXES)} files)")
    negatives = datasets.Dataset.from_dict({"image": paths, "edited_fraction": [0.0] * len(paths)},
                                           features=table.features)
    return datasets.concatenate_datasets([table, negatives])
