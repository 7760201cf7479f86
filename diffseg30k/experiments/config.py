"""Benchmark configurations: ``quick`` (mini data, tiny models, CPU, minutes) and ``paper``.

Both build the same plan of steps; only sizes, models and the data source differ.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from itertools import combinations
from typing import Any

from diffseg30k.data.distortions import DISTORTIONS
from diffseg30k.experiments.reference import HOLDOUTS
from diffseg30k.labels import GENERATOR_NAMES

OFFICIAL_DATASET = "Chaos2629/Diffseg30k"


def family_models(config: str) -> dict[str, str]:
    """The registry model of each detector family in configuration ``config`` (``benchmark --families``),
    from the detector specs' ``benchmark`` field (:func:`diffseg30k.models.registry.family_models`)."""
    from diffseg30k.models.registry import family_models as from_registry

    return from_registry(config)


def __getattr__(name: str) -> Any:
    """``FAMILY_MODELS`` ({config: {family: model}}), derived from the registry on first use."""
    if name == "FAMILY_MODELS":
        return {config: family_models(config) for config in CONFIGS}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class BenchmarkConfig:
    """Everything a benchmark run depends on (its fingerprint keys the step records)."""

    name: str
    #: Dataset source (converted folder, release, Hub id); ``None`` builds the mini dataset.
    dataset: str | None = None
    revision: str | None = None
    mini_images: int = 96
    #: Local processes generating the mini data (``None``: one per usable CPU, at most 4).
    generation_workers: int | None = 1
    #: Detectors the ``train`` step trains at once, each in its own process (``None``: one per usable
    #: CPU, at most 4; only with the in-process launcher).
    parallel_trainings: int | None = 1
    mini_size: int | None = None
    #: Unedited photos added to the mini data (3:1 train/validation) as image-level negatives.
    mini_negatives: int = 32
    #: Folder of unedited real images added to training as negatives (paper: 5k COCO images).
    extra_real: str | None = None
    #: Paper family -> registry model.
    families: dict[str, str] = field(default_factory=dict)
    #: The families every ablation (Tab. 3, 4, 6, 7, 8) uses, as in the paper.
    ablation_families: tuple[str, ...] = ("segformer", "deeplabv3plus")
    train_preset: str = "quick"
    #: TrainConfig fields overriding the preset (``max_steps``, ``crop_size``, ``batch_size`` ...).
    train_overrides: dict[str, Any] = field(default_factory=dict)
    from_scratch: bool = False
    #: Semantic detectors (Tab. 2, and Tab. 3's robust ones) start from their family's Tab. 2 binary
    #: detector (``TrainConfig.init_from``) instead of from scratch; hold-out trainings never do.
    semantic_from_binary: bool = False
    mixed_precision: str = "no"
    #: "inprocess" calls ``train()`` here; "accelerate" runs ``accelerate launch -m diffseg30k train``.
    launcher: str = "inprocess"
    num_processes: int | None = None
    distortions: tuple[str, ...] = DISTORTIONS
    #: Tasks of the ``--augment robust`` models of Tab. 3.
    robust_tasks: tuple[str, ...] = ("semantic", "binary")
    holdouts: tuple[tuple[str, str], ...] = HOLDOUTS
    classifiers: dict[str, str] = field(default_factory=dict)
    classifier_steps: int = 60
    classifier_batch_size: int = 16
    classifier_lr: float = 1e-3
    #: Generation profile whose editors re-edit images in Tab. 7 ("mini" stand-in / "paper" models).
    generation_profile: str = "mini"
    #: Tab. 7: a generator variant and the parent label it is scored as.
    variant: str = "sdxl-lora"
    variant_parent: str = "sdxl"
    variant_limit: int | None = None
    eval_limit: int | None = None
    eval_batch_size: int = 8
    breakdowns: tuple[str, ...] = ("turns", "edit_type", "base", "area")
    bootstrap: int = 200
    qualitative_images: int = 4
    seed: int = 0
    device: str | None = None
    #: torch CPU threads for the whole run (tiny models on a shared 2-core CPU: 1 is ~10x faster than 2).
    torch_threads: int | None = None
    #: Other datasets (``NAME[:SPLIT]``: preset, path or Hub id) the ``cross`` step scores the Tab. 2 models
    #: on; not part of the fingerprint (adding one re-runs only that step).
    cross_datasets: tuple[str, ...] = ()

    def with_families(self, names: list[str] | tuple[str, ...]) -> BenchmarkConfig:
        """The same configuration with these detector families in Tab. 2 and in every ablation."""
        from diffseg30k.registry import RegistryError

        table = family_models(self.name)
        if not names:
            raise ValueError(f"--families: name some of {', '.join(table)}")
        for name in names:
            if name not in table:
                raise RegistryError("detector family", name, table, hint=f"--families, {self.name} config")
        return replace(self, families={n: table[n] for n in names}, ablation_families=tuple(names))

    def with_all_pairs(self) -> BenchmarkConfig:
        """The same configuration with all 28 generator pairs held out in Tab. 4/6."""
        return replace(self, holdouts=tuple(combinations(GENERATOR_NAMES, 2)))

    def validate(self) -> BenchmarkConfig:
        """Check every registry name (detectors, classifiers, distortions, the variant editor); a
        mistyped one raises :class:`~diffseg30k.registry.RegistryError` suggesting the near names."""
        from diffseg30k.data.distortions import parse_distortions
        from diffseg30k.generation.editors.registry import EDITORS
        from diffseg30k.models.classifiers import CLASSIFIERS
        from diffseg30k.models.registry import DETECTORS

        for model in self.families.values():
            DETECTORS.get(model)
        for model in self.classifiers.values():
            CLASSIFIERS.get(model)
        parse_distortions(list(self.distortions))
        EDITORS.get(self.variant)
        missing = [f for f in self.ablation_families if f not in self.families]
        if missing:
            raise ValueError(f"ablation families {missing} have no detector in {sorted(self.families)}")
        for name in ("generation_workers", "parallel_trainings"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None (one per CPU), got {value!r}")
        return self

    def with_detectors(self, names: list[str]) -> BenchmarkConfig:
        """The same configuration with these registered detectors added (each replaces the model of
        its family): how a new detector module reaches every table."""
        from diffseg30k.models.registry import DETECTORS

        families = dict(self.families)
        for name in names:
            families[DETECTORS.get(name).family] = name
        return replace(self, families=families)

    def describe(self) -> list[str]:
        """What the plan trains and probes, one line each (``benchmark --dry-run``)."""
        from diffseg30k.data.distortions import parse_distortions

        return [f"detectors: {', '.join(f'{f}={m}' for f, m in self.families.items())} "
                f"(ablations: {', '.join(self.ablation_families)})",
                f"classifiers: {', '.join(f'{k}={m}' for k, m in self.classifiers.items()) or 'none'}",
                f"distortions: {', '.join(d.name for d in parse_distortions(list(self.distortions)))}",
                f"Tab. 7 variant editor: {self.variant} (scored as {self.variant_parent})"]

    def resolved_generation_workers(self) -> int:
        """:attr:`generation_workers`, with ``None`` as one per usable CPU (at most 4)."""
        return _per_cpu(self.generation_workers)

    def resolved_parallel_trainings(self) -> int:
        """:attr:`parallel_trainings`, with ``None`` as one per usable CPU (at most 4)."""
        return _per_cpu(self.parallel_trainings)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))

    def fingerprint(self) -> str:
        values = self.to_dict()
        for name in ("generation_workers", "parallel_trainings"):  # the results do not depend on them
            values.pop(name)
        values.pop("cross_datasets")  # the cross step checks its own datasets (cross_dataset.py)
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def _per_cpu(value: int | None, most: int = 4) -> int:
    """``value``, or for ``None`` the number of CPUs this process may use (at most ``most``)."""
    from diffseg30k.threads import available_cpus

    return int(value) if value is not None else max(1, min(most, available_cpus()))


def quick_config(**overrides: Any) -> BenchmarkConfig:
    """CPU minutes: the mini dataset, tiny detectors from scratch, full-size (128 px) crops.

    Few, longer trainings so detection is learnable within ~10 minutes on 2 cores: one family
    (FCN-8s with the SRM high-pass input stem, :mod:`diffseg30k.models.stem`; every family takes it;
    add it with ``--families fcn8s,segformer``) in every table, 1024 planned mini images (the quality
    filter keeps ~half; generated by one process per CPU), 800 steps each with the quick preset's
    class-balanced loss, the semantic detectors starting from the Tab. 2 binary one, 1 torch thread +
    1 data worker. Chosen from Tab. 2 runs on 512/1024 planned images and 500/800 steps (README).
    """
    values: dict[str, Any] = dict(
        name="quick",
        families={"fcn8s": "fcn8s-tiny"},
        ablation_families=("fcn8s",),
        robust_tasks=("semantic",),
        holdouts=HOLDOUTS[:1],
        mini_images=1024, generation_workers=None, parallel_trainings=None,
        train_preset="quick",
        train_overrides={"max_steps": 800, "stem": "srm", "lr": 3e-3, "crop_size": 128, "batch_size": 8,
                         "eval_split": None, "save_every": 0, "log_with": None, "progress": True,
                         "num_workers": 1, "threads": 1},
        from_scratch=True, semantic_from_binary=True,
        classifiers={"cnnspot": "cnnspot-tiny", "ufd": "ufd-tiny"},
        classifier_steps=100, classifier_batch_size=16, classifier_lr=1e-3,
        # resize1024 is an 8x upscale of the 128-px mini images (64x the pixels, most of the CPU
        # time): the quick run probes the other direction with resize64 instead.
        distortions=("jpeg60", "jpeg80", "resize256", "resize64", "blur", "noise", "webp", "crop"),
        eval_limit=None, bootstrap=100, variant_limit=8, torch_threads=1)
    values.update(overrides)
    return BenchmarkConfig(**values)


def paper_config(**overrides: Any) -> BenchmarkConfig:
    """The reproduction: the official dataset, the paper's model sizes and the ``paper`` preset."""
    values: dict[str, Any] = dict(
        name="paper", dataset=OFFICIAL_DATASET,
        families={"segformer": "segformer-b2", "deeplabv3plus": "deeplabv3plus-r50", "fcn8s": "fcn8s-r50"},
        train_preset="paper", train_overrides={"mixed_precision": "bf16"}, generation_profile="paper",
        mixed_precision="bf16", launcher="accelerate",
        classifiers={"cnnspot": "cnnspot-r50", "ufd": "ufd-vitl14"},
        classifier_steps=20_000, classifier_batch_size=64, classifier_lr=1e-4,
        bootstrap=1000, eval_batch_size=16, qualitative_images=6)
    values.update(overrides)
    return BenchmarkConfig(**values)


CONFIGS = {"quick": quick_config, "paper": paper_config}


def get_config(name: str, **overrides: Any) -> BenchmarkConfig:
    if name not in CONFIGS:
        raise ValueError(f"unknown benchmark config {name!r}; expected one of {tuple(CONFIGS)}")
    return CONFIGS[name](**{k: v for k, v in overrides.items() if v is not None})
