"""``TrainConfig``: every training option, and the ``quick``/``paper`` presets that fill the gaps."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # CPU-sized: small crops, a few hundred steps, AdamW for every family (fast from scratch).
    "quick": dict(crop_size=128, batch_size=8, max_steps=200, eval_every=100, save_every=100,
                  max_eval_samples=64, optimizer="adamw", lr=1e-3, weight_decay=0.01, warmup_steps=10,
                  poly_power=1.0, head_lr_mult=1.0, loss="balanced"),
    # The paper: 512x512 crops and the public mmsegmentation defaults of each family.
    "paper": dict(crop_size=512, batch_size=8, max_steps=80_000, eval_every=8_000, save_every=4_000,
                  max_eval_samples=None, loss="ce"),
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
#: Training losses (:data:`diffseg30k.models.common.LOSSES`).
LOSS_NAMES = ("ce", "balanced", "sqrt-balanced")


def _opt(default: Any, help: str, **metadata: Any) -> Any:
    """A field with its command-line help (HfArgumentParser's ``metadata`` convention)."""
    return field(default=default, metadata={"help": help, **metadata})


@dataclass
class TrainConfig:
    """Options of :func:`diffseg30k.train.train`; ``None`` means "take it from the preset".

    The single schema of training: ``diffseg30k train``'s flags are generated from these fields
    (:mod:`diffseg30k.cli.schema`), and ``--config FILE`` reads a JSON object of them (what the
    benchmark hands to ``accelerate launch``).

    ``dataset`` is a converted dataset folder, a Hub id or raw release (anything
    :func:`diffseg30k.load_benchmark` accepts), or an in-memory ``datasets.Dataset``/``DatasetDict``
    with ``image`` and ``mask`` columns (and ``models`` for ``holdout``).
    """

    dataset: Any = field(metadata={"help": "converted dataset folder, Hub dataset id or raw release"})
    out: str | Path = field(metadata={"help": "output folder: best/, checkpoints/step_N/, logs/"})
    model: str = _opt("segformer-tiny", "registry name (see --list-models or `diffseg30k list detectors`)")
    task: str = _opt("semantic", "semantic (9 classes) or binary (edited vs not)",
                     choices=("semantic", "binary"))
    preset: str = _opt("quick", "quick: CPU, 128 px crops, 200 steps; paper: 512 px crops, mmseg defaults",
                       choices=tuple(PRESETS))
    from_scratch: bool = _opt(False, "no pretrained backbone weights")
    pretrained: str | None = _opt(None, "backbone weights (Hub id or folder) instead of the default")
    init_from: str | None = _opt(None, "a trained detector of the same model (folder or Hub id) whose "
                                       "weights start this run, e.g. the binary one for the semantic task; "
                                       "layers of another shape (the other task's classifier) start afresh")
    holdout: tuple[str, ...] = _opt((), "GEN1,GEN2: drop training images edited by them")
    extra_real: str | Path | None = _opt(None, "folder of unedited real images added as negatives")
    augment: str | None = _opt(None, "robust: random JPEG 50-100, rescale 0.25-2x, blur; trufor: JPEG "
                               "30-100, rescale 0.5-1.5x, crops aligned to the 8x8 JPEG grid (any model)",
                               choices=("none", "robust", "trufor"))
    seed: int = _opt(0, "seed of crops, augmentation and initialisation")
    batch_size: int | None = _opt(None, "per device")
    crop_size: int | None = _opt(None, "square training crop side")
    lr: float | None = _opt(None, "base learning rate (heads: lr * head_lr_mult)")
    weight_decay: float | None = _opt(None, "weight decay (none on norms and biases)")
    optimizer: str | None = _opt(None, "adamw or sgd (default: the preset's, per family)", choices=OPTIMIZERS)
    warmup_steps: int | None = _opt(None, "linear warmup steps")
    poly_power: float | None = _opt(None, "power of the polynomial decay after warmup")
    head_lr_mult: float | None = _opt(None, "learning-rate multiplier of the heads (non-backbone parameters)")
    max_steps: int | None = _opt(None, "optimizer steps")
    grad_accum: int = _opt(1, "gradient accumulation steps")
    max_grad_norm: float | None = _opt(None, "clip gradients to this norm")
    loss: str | None = _opt(None, "ce (pixel cross-entropy, the paper), balanced (inverse class "
                                  "frequency per batch) or sqrt-balanced (its square root)",
                            choices=LOSS_NAMES)
    stem: str | None = _opt(None, "input stem before the encoder, any detector: none, srm (fixed SRM "
                                  "high-pass residuals) or bayar (constrained convolution), each + a "
                                  "learned full-resolution block", choices=("none", "srm", "bayar"))
    mixed_precision: str = _opt("no", "Accelerate mixed precision", choices=MIXED_PRECISION)
    eval_every: int | None = _opt(None, "evaluate every N steps (0: only at the end)")
    save_every: int | None = _opt(None, "save a resumable checkpoint every N steps")
    keep_checkpoints: int = _opt(2, "resumable checkpoints kept")
    max_eval_samples: int | None = _opt(None, "evaluate on at most N validation images")
    eval_batch_size: int = _opt(4, "evaluation batch size")
    train_split: str = _opt("train", "split trained on")
    eval_split: str | None = _opt("validation", "split evaluated on ('none': no evaluation)")
    num_workers: int | None = _opt(None, "data-loader workers per process")
    threads: int | None = _opt(None, "torch CPU threads per process (default on CPUs: half of each process's "
                                     "cores, the rest for data-loader workers; see diffseg30k.threads)")
    resume: bool = _opt(False, "continue from OUT/checkpoints' latest step")
    stop_after: int | None = _opt(None, "stop (with a checkpoint) after N steps; resume later")
    log_with: str | None = _opt("auto", "Accelerate tracker: auto, none, tensorboard, ...")
    progress: bool = _opt(True, "show the progress bar")
    extra: dict[str, Any] = field(default_factory=dict, metadata={"help": "free-form settings (JSON object)"})

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
        if self.loss not in LOSS_NAMES:
            raise ValueError(f"loss must be one of {LOSS_NAMES}, got {self.loss!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("eval_every", "save_every", "stop_after", "warmup_steps", "max_eval_samples",
                     "num_workers"):
            value = getattr(self, name)
            if value is not None and int(value) < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.keep_checkpoints < 1:
            raise ValueError(f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}")

    def to_json_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (``--config FILE`` reads it back); ``dataset`` must be a path or id."""
        if not isinstance(self.dataset, str | Path):
            raise ValueError("an in-memory dataset cannot be written to a config file; pass its folder")
        values = asdict(self)
        values.update(dataset=str(self.dataset), out=str(self.out), holdout=list(self.holdout),
                      extra_real=None if self.extra_real is None else str(self.extra_real))
        return values

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
