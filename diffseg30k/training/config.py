"""``TrainConfig``: every training option, and the ``quick``/``paper`` presets that fill the gaps."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # CPU-sized: small crops, a few hundred steps, AdamW for every family (fast from scratch).
    "quick": dict(crop_size=128, batch_size=8, max_steps=200, eval_every=100, save_every=100,
                  max_eval_samples=64, optimizer="adamw", lr=1e-3, weight_decay=0.01, warmup_steps=10,
                  poly_power=1.0, head_lr_mult=1.0),
    # The paper: 512x512 crops and the public mmsegmentation defaults of each family.
    "paper": dict(crop_size=512, batch_size=8, max_steps=80_000, eval_every=8_000, save_every=4_000,
                  max_eval_samples=None),
}
#: mmsegmentation defaults per optimizer family (SegFormer: AdamW + warmup; CNNs: SGD + poly 0.9).
PAPER_OPTIMIZERS: dict[str, dict[str, Any]] = {
    "adamw": dict(optimizer="adamw", lr=6e-5, weight_decay=0.01, warmup_steps=1500, poly_power=1.0,
                  head_lr_mult=10.0),
    "sgd": dict(optimizer="sgd", lr=0.01, weight_decay=5e-4, warmup_steps=0, poly_power=0.9,
                head_lr_mult=1.0),
}
OPTIMIZERS = ("adamw", "sgd")
MIXED_PRECISION = ("no", "fp16", "bf16")


@dataclass
class TrainConfig:
    """Options of :func:`diffseg30k.train.train`; ``None`` means "take it from the preset".

    ``dataset`` is a converted dataset folder, a Hub id or raw release (anything
    :func:`diffseg30k.load_benchmark` accepts), or an in-memory ``datasets.Dataset``/``DatasetDict``
    with ``image`` and ``mask`` columns (and ``models`` for ``holdout``).
    """

    dataset: Any
    out: str | Path
    model: str = "segformer-tiny"
    task: str = "semantic"
    preset: str = "quick"
    from_scratch: bool = False
    pretrained: str | None = None
    holdout: tuple[str, ...] = ()
    extra_real: str | Path | None = None
    augment: str | None = None
    seed: int = 0
    batch_size: int | None = None
    crop_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    optimizer: str | None = None
    warmup_steps: int | None = None
    poly_power: float | None = None
    head_lr_mult: float | None = None
    max_steps: int | None = None
    grad_accum: int = 1
    max_grad_norm: float | None = None
    mixed_precision: str = "no"
    eval_every: int | None = None
    save_every: int | None = None
    keep_checkpoints: int = 2
    max_eval_samples: int | None = None
    eval_batch_size: int = 4
    train_split: str = "train"
    eval_split: str | None = "validation"
    num_workers: int | None = None
    threads: int | None = None
    resume: bool = False
    stop_after: int | None = None
    log_with: str | None = "auto"
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def resolved(self, optimizer_family: str) -> TrainConfig:
        """A copy with every ``None`` filled from the preset (and the family's optimizer defaults)."""
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; expected one of {tuple(PRESETS)}")
        defaults = dict(PRESETS[self.preset])
        if self.preset == "paper":
            defaults.update(PAPER_OPTIMIZERS[self.optimizer or optimizer_family])
        values = {f.name: defaults[f.name] for f in fields(self)
                  if getattr(self, f.name) is None and f.name in defaults}
        config = replace(self, **values)
        config.validate()
        return config

    def validate(self) -> None:
        from diffseg30k.labels import TASKS

        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}")
        for name in ("batch_size", "crop_size", "max_steps", "grad_accum"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("eval_every", "save_every", "stop_after", "warmup_steps", "max_eval_samples",
                     "num_workers"):
            value = getattr(self, name)
            if value is not None and int(value) < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.keep_checkpoints < 1:
            raise ValueError(f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}")

    def to_log_dict(self) -> dict[str, Any]:
        """Flat scalar/str values for trackers and ``diffseg30k.json``."""
        out = {}
        for key, value in asdict(self).items():
            if key in ("dataset", "extra"):
                value = value if isinstance(value, str | Path) else type(value).__name__
            if isinstance(value, list | tuple):
                value = ",".join(map(str, value))
            out[key] = value if isinstance(value, int | float | str | bool) else str(value)
        return out
