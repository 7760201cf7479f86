"""What a generation run is asked (:class:`GenerationConfig`) and what it decides for each sample.

Every decision about sample *i* (real/AI base, turn count 1:2:3 ~ 1:4:5, editors drawn without
repeating a generator, edit types, seeds) is drawn from ``(seed, i)``, so any sample is reproducible
alone and the work can be scheduled and sharded freely.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from diffseg30k.generation.editors.registry import EDITORS, installed_generators, is_variant, label_of
from diffseg30k.generation.profiles import PROFILES, GenerationProfile, get_profile
from diffseg30k.generation.prompts import EDIT_TYPES
from diffseg30k.generation.quality import THRESHOLD

LOG = logging.getLogger("diffseg30k.generation")
TURN_WEIGHTS = (1, 4, 5)
#: Bumped when the same arguments would produce other bytes (part of ``generation.json``).
#: 3: mini stand-in editors (classical content + trained components); 4: + the seeded sampler residual.
PIPELINE_VERSION = 4
STEPS_PER_SAMPLE = 3 + 3 * 3  # base, regions, finalize + (prompt, edit, quality) per turn: progress units
DEFAULT_VLM = "Qwen/Qwen2.5-VL-7B-Instruct"
DEFAULT_DETECTOR = "IDEA-Research/grounding-dino-base"
DEFAULT_SEGMENTER = "facebook/sam-vit-huge"


#: Editor options read as integers, with their smallest allowed value (checked before any work).
INTEGER_OPTIONS = {"steps": 1, "resolution": 8, "tiny_seed": 0}


@dataclass
class GenerationConfig:
    """Arguments of one generation run (those in :meth:`fingerprint` decide the output bytes)."""

    out: Path
    profile: str = "mini"
    num_images: int = 10
    seed: int = 0
    size: int | None = None  # output side: 1024 (paper) / 128 (mini)
    editors: tuple[str, ...] | None = None  # default: the eight generators registered
    source: Path | None = None  # folder of real photos (mini default: scikit-image's photos)
    real_fraction: float = 0.5
    turn_weights: tuple[int, int, int] = TURN_WEIGHTS
    quality_threshold: float = THRESHOLD
    captions: tuple[str, ...] | None = None
    first_id: int = 1
    editor_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # repo_id/revision/steps
    vlm: str = DEFAULT_VLM
    detector: str = DEFAULT_DETECTOR
    segmenter: str = DEFAULT_SEGMENTER
    exemplar_images: tuple[str, ...] = ()
    device: str | None = None
    dtype: str | None = None
    keep_loaded: bool | None = None  # default: True in the mini profile
    threads: int | None = None  # torch CPU threads while generating (mini default 1: tiny models)
    #: Local processes sharing the samples (CPU generation without ``accelerate launch``); not in the
    #: fingerprint: every sample is a function of its plan alone, so the bytes do not depend on it.
    workers: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; expected one of {tuple(PROFILES)}")
        if self.size is None:
            self.size = self.generation_profile.size
        if self.num_images < 1:
            raise ValueError(f"num_images must be positive, got {self.num_images}")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"workers must be a positive integer, got {self.workers!r}")
        if not isinstance(self.size, int) or self.size < 16:
            raise ValueError(f"size must be an integer of at least 16 pixels, got {self.size!r}")
        if not 0.0 <= self.real_fraction <= 1.0:
            raise ValueError(f"real_fraction must be between 0 and 1, got {self.real_fraction}")
        if self.editors is None:
            self.editors = tuple(installed_generators())
        self.editors = tuple(self.editors)
        if not self.editors:
            raise ValueError(f"no editors to draw from; registered: {', '.join(EDITORS)}")
        for name in (*self.editors, *self.editor_options):
            EDITORS.get(name)  # RegistryError (a ValueError) suggesting near names
        for name, options in self.editor_options.items():
            for key, value in options.items():
                low = INTEGER_OPTIONS.get(key)
                if low is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                    raise ValueError(f"editor option {name}.{key}={value!r}: expected an integer >= {low}")
        if self.generation_profile.needs_source and self.real_fraction > 0 and self.source is None:
            raise ValueError(f"the {self.profile} profile needs --source DIR with real photos "
                             "(or real_fraction=0)")
        self.exemplar_images = tuple(str(p) for p in self.exemplar_images)
        missing = [p for p in self.exemplar_images if not Path(p).is_file()]
        if missing:  # found now, not after every sample's edits have failed their quality step
            raise ValueError(f"quality exemplar image not found: {', '.join(missing)}")
        if self.keep_loaded is None:
            self.keep_loaded = self.generation_profile.keep_loaded

    @property
    def generation_profile(self) -> GenerationProfile:
        """The :class:`~diffseg30k.generation.profiles.GenerationProfile` named by ``profile``."""
        return get_profile(self.profile)

    def fingerprint(self) -> dict[str, Any]:
        keys = ("profile", "num_images", "seed", "size", "editors", "real_fraction", "turn_weights",
                "quality_threshold", "captions", "first_id", "editor_options", "vlm", "detector",
                "segmenter", "exemplar_images")  # the exemplars decide which edits are kept
        data = {k: getattr(self, k) for k in keys}
        data["source"] = str(self.source) if self.source else None
        data["pipeline_version"] = PIPELINE_VERSION
        if self.profile == "mini":  # the stand-in editors' trained weights decide every edit
            from diffseg30k.generation.component_spec import weights_digest

            data["components"] = weights_digest()
        return json.loads(json.dumps(data, default=list))


@dataclass
class SamplePlan:
    """Every random decision about one sample."""

    index: int
    id: str
    base: str  # "real" | "ai"
    source: str  # photo name/path (real) or caption (ai)
    base_editor: str | None
    base_seed: int
    region_seed: int
    editors: list[str]
    edit_types: list[str]
    seeds: list[int]


def plan_sample(config: GenerationConfig, index: int, sources: list[str], captions: list[str],
                real_rank: int | None = None) -> SamplePlan:
    """Draw sample ``index``'s decisions from ``(seed, index)`` alone.

    A real base takes ``sources[real_rank % len(sources)]`` (``real_rank``: how many real samples come
    before it; :func:`plans_for` counts them), so every photo is used once before any is reused.
    """
    rng = np.random.default_rng([config.seed, index])
    weights = np.asarray(config.turn_weights, dtype=np.float64)
    num_turns = int(rng.choice(len(weights), p=weights / weights.sum())) + 1
    real = bool(rng.random() < config.real_fraction) and bool(sources)
    editors: list[str] = []
    for _ in range(num_turns):  # uniformly among editors whose generator is not yet on this image
        used = {label_of(e) for e in editors}
        pool = [e for e in config.editors if label_of(e) not in used]
        if not pool:
            break
        editors.append(pool[int(rng.integers(len(pool)))])
    generators = [e for e in config.editors if not is_variant(e)] or list(config.editors)
    base_editor = None if real else generators[int(rng.integers(len(generators)))]
    rank = index if real_rank is None else real_rank
    source = sources[rank % len(sources)] if real else captions[int(rng.integers(len(captions)))]
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=2 + len(editors))]
    return SamplePlan(index=index, id=f"{config.first_id + index:08d}", base="real" if real else "ai",
                      source=source, base_editor=base_editor, base_seed=seeds[0], region_seed=seeds[1],
                      editors=editors, edit_types=[EDIT_TYPES[int(rng.integers(3))] for _ in editors],
                      seeds=seeds[2:])


def list_sources(config: GenerationConfig) -> list[str]:
    """Real base sources: files under ``--source`` (sorted), or the profile's bundled photos."""
    return config.generation_profile.sources(config.source, config.real_fraction)


def plans_for(config: GenerationConfig) -> list[SamplePlan]:
    """Every sample's plan, real photos assigned in order (cheap: no model is touched)."""
    sources, captions = list_sources(config), list(config.captions or config.generation_profile.captions)
    plans, real_rank = [], 0
    for index in range(config.num_images):
        plan = plan_sample(config, index, sources, captions, real_rank)
        real_rank += plan.base == "real"
        plans.append(plan)
    if real_rank > len(sources) > 0:
        LOG.info("%d real bases from %d source photos: photos are reused (with other regions and edits)",
                 real_rank, len(sources))
    return plans

