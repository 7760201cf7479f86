"""Orchestration of §3.1: bases -> regions -> 1-3 edit turns -> quality filter -> official release.

Every decision about a sample (real/AI base, turn count 1:2:3 ~ 1:4:5, editors drawn without
repeating a generator, edit types, seeds) is drawn up front from ``(seed, index)``, so any sample is
reproducible alone and the work can be scheduled freely: stage by stage, editor by editor, so a
process holds one large model at a time (the mini profile keeps its tiny models loaded). Each step
writes its result atomically under ``OUT/.work/<id>/`` and is skipped when present: a killed run
restarted with the same arguments resumes and produces byte-identical output. Processes started by
``accelerate launch`` take every ``num_processes``-th sample.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from diffseg30k.generation.composite import apply_label, composite, fit_square, mask_area
from diffseg30k.generation.editors.base import EditRequest
from diffseg30k.generation.editors.registry import (
    EDITORS,
    create_editor,
    installed_generators,
    is_variant,
    label_of,
)
from diffseg30k.generation.prompts import EDIT_TYPES, EditInstruction
from diffseg30k.generation.quality import THRESHOLD
from diffseg30k.io import ImageError, atomic_write_bytes, atomic_write_text, open_image
from diffseg30k.labels import GENERATOR_BY_NAME

LOG = logging.getLogger("diffseg30k.generation")
PROFILES = ("mini", "paper")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
TURN_WEIGHTS = (1, 4, 5)
#: Bumped when the same arguments would produce other bytes (part of ``generation.json``).
PIPELINE_VERSION = 2
STEPS_PER_SAMPLE = 3 + 3 * 3  # base, regions, finalize + (prompt, edit, quality) per turn: progress units
DEFAULT_VLM = "Qwen/Qwen2.5-VL-7B-Instruct"
DEFAULT_DETECTOR = "IDEA-Research/grounding-dino-base"
DEFAULT_SEGMENTER = "facebook/sam-vit-huge"


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
    progress: bool = True

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; expected one of {PROFILES}")
        if self.size is None:
            self.size = 1024 if self.profile == "paper" else 128
        if self.num_images < 1:
            raise ValueError(f"num_images must be positive, got {self.num_images}")
        if self.editors is None:
            self.editors = tuple(installed_generators())
        self.editors = tuple(self.editors)
        for name in self.editors:
            if name not in EDITORS:
                raise ValueError(f"unknown editor {name!r}; registered: {', '.join(EDITORS)}")
        if self.profile == "paper" and self.real_fraction > 0 and self.source is None:
            raise ValueError("the paper profile needs --source DIR with real photos (or real_fraction=0)")
        if self.keep_loaded is None:
            self.keep_loaded = self.profile == "mini"

    def fingerprint(self) -> dict[str, Any]:
        keys = ("profile", "num_images", "seed", "size", "editors", "real_fraction", "turn_weights",
                "quality_threshold", "captions", "first_id", "editor_options", "vlm", "detector",
                "segmenter")
        data = {k: getattr(self, k) for k in keys}
        data["source"] = str(self.source) if self.source else None
        data["pipeline_version"] = PIPELINE_VERSION
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


# -------------------------------------------------------------------------------------- storage
def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


class SampleStore:
    """The per-sample work folder: every step's result, written atomically."""

    def __init__(self, out: Path, plan: SamplePlan) -> None:
        self.out, self.plan = out, plan
        self.dir = out / ".work" / plan.id

    def path(self, name: str) -> Path:
        return self.dir / name

    def has(self, name: str) -> bool:
        return self.path(name).exists()

    def save_image(self, name: str, image: Image.Image) -> None:
        atomic_write_bytes(self.path(name), _png_bytes(image))

    def load_image(self, name: str) -> Image.Image:
        return open_image(self.path(name))

    def save_json(self, name: str, data: Any) -> None:
        atomic_write_text(self.path(name), json.dumps(data, sort_keys=True) + "\n")

    def load_json(self, name: str) -> Any:
        return json.loads(self.path(name).read_text(encoding="utf-8"))

    @property
    def stopped(self) -> bool:
        """Failed, rejected or finished: nothing left to do."""
        return self.has("status.json") or self.has("done.json")

    def stop(self, status: str, reason: str, stage: str) -> None:
        LOG.warning("sample %s %s at %s: %s", self.plan.id, status, stage, reason)
        self.save_json("status.json", {"id": self.plan.id, "status": status, "stage": stage, "reason": reason,
                                       "source": self.plan.source, "base": self.plan.base})

    def num_turns(self) -> int:
        return len(self.load_json("regions.json")["labels"]) if self.has("regions.json") else 0


# -------------------------------------------------------------------------------------- models
class ModelPool:
    """Loads models on demand; unless ``keep_loaded``, holds one large model at a time: an editor, or
    the VLM (shared by the region, prompt and quality stages, with Grounding DINO and SAM beside it)."""

    def __init__(self, config: GenerationConfig, device: str) -> None:
        self.config, self.device = config, device
        self.loaded: dict[str, Any] = {}
        self.vlm: Any = None

    def _shared_vlm(self) -> Any:
        if self.vlm is None:
            from diffseg30k.generation.vlm import QwenVL

            self.vlm = QwenVL.from_pretrained(self.config.vlm, device=self.device, dtype=self.config.dtype)
        return self.vlm

    def _make(self, key: str) -> Any:
        cfg = self.config
        if key.startswith("editor:"):
            name = key.split(":", 1)[1]
            editor = create_editor(name, profile=cfg.profile, device=self.device, dtype=cfg.dtype,
                                   **cfg.editor_options.get(name, {}))
            editor.load()
            return editor
        if cfg.profile == "mini":
            from diffseg30k.generation.prompts import TemplatePromptWriter
            from diffseg30k.generation.quality import StatisticsQualityScorer
            from diffseg30k.generation.regions import ShapeProposer

            return {"regions": ShapeProposer, "prompts": TemplatePromptWriter,
                    "quality": StatisticsQualityScorer}[key]()
        vlm = self._shared_vlm()
        if key == "regions":
            from diffseg30k.generation.regions import GroundedSAMProposer

            return GroundedSAMProposer.from_pretrained(vlm, cfg.detector, cfg.segmenter, device=self.device)
        if key == "prompts":
            from diffseg30k.generation.prompts import VLMPromptWriter

            return VLMPromptWriter(vlm)
        from diffseg30k.generation.quality import VLMQualityScorer

        return VLMQualityScorer(vlm, cfg.exemplar_images)

    def get(self, key: str) -> Any:
        if key not in self.loaded:
            if not self.config.keep_loaded:  # VLM stages may share the VLM; an editor stands alone
                self.release(keep_vlm=not key.startswith("editor:"))
            self.loaded[key] = self._make(key)
        return self.loaded[key]

    def release(self, keep_vlm: bool = False) -> None:
        for key in list(self.loaded):
            if keep_vlm and not key.startswith("editor:"):
                continue
            model = self.loaded.pop(key)
            if hasattr(model, "unload"):
                model.unload()
        if not keep_vlm:
            self.vlm = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover - torch is part of the generate extra
            pass


# -------------------------------------------------------------------------------------- the run
class GenerationRun:
    """Runs the stages for this process's samples; each step is skipped when already stored."""

    def __init__(self, config: GenerationConfig, plans: list[SamplePlan], device: str,
                 progress: Any = None) -> None:
        self.config, self.device = config, device
        self.stores = [SampleStore(config.out, p) for p in plans]
        self.models = ModelPool(config, device)
        self.progress = progress

    def _tick(self, stage: str) -> None:
        if self.progress is not None:
            self.progress.set_postfix_str(stage, refresh=False)
            self.progress.update(1)

    def _each(self, stage: str, stores: Iterable[SampleStore], done: Callable[[SampleStore], bool],
              work: Callable[[SampleStore], None]) -> None:
        """Run ``work`` on every live store whose step is not done; failures stop that sample only."""
        for store in stores:
            if not store.stopped and not done(store):
                try:
                    work(store)
                except (ImageError, ValueError, RuntimeError, OSError) as err:
                    store.stop("failed", f"{type(err).__name__}: {err}", stage)
            self._tick(stage)

    def run(self) -> None:
        self.stage_bases()
        self.stage_regions()
        for turn in range(3):
            self.stage_turn(turn)
        self._each("finalize", self.stores, lambda s: False, self.finalize)
        self.models.release()

    # -- stage: bases ---------------------------------------------------------------------------
    def stage_bases(self) -> None:
        real = [s for s in self.stores if s.plan.base == "real"]
        self._each("bases (real)", real, lambda s: s.has("base.png"), self.real_base)
        groups = defaultdict(list)
        for store in self.stores:
            if store.plan.base == "ai":
                groups[store.plan.base_editor].append(store)
        for name, stores in sorted(groups.items()):
            self._each(f"bases ({name})", stores, lambda s: s.has("base.png"), self.ai_base)

    def real_base(self, store: SampleStore) -> None:
        plan, size = store.plan, self.config.size
        if self.config.source is None:
            from diffseg30k.generation.mini import varied_photo

            image = varied_photo(plan.source, np.random.default_rng(plan.base_seed))
        else:
            image = open_image(plan.source)
        if min(image.size) < size // 2:
            raise ValueError(f"{plan.source}: image is {image.size[0]}x{image.size[1]}, too small for "
                             f"{size}x{size} output (short side must be >= {size // 2})")
        store.save_image("base.png", fit_square(image, size))

    def ai_base(self, store: SampleStore) -> None:
        plan = store.plan
        editor = self.models.get(f"editor:{plan.base_editor}")
        image = editor.text_to_image(plan.source, plan.base_seed, self.config.size)
        store.save_image("base.png", fit_square(image, self.config.size))

    # -- stage: regions -------------------------------------------------------------------------
    def stage_regions(self) -> None:
        self._each("regions", self.stores, lambda s: s.has("regions.json"), self.regions)

    def regions(self, store: SampleStore) -> None:
        from diffseg30k.generation.regions import choose_regions

        plan = store.plan
        image = store.load_image("base.png")
        rng = np.random.default_rng(plan.region_seed)
        candidates = self.models.get("regions").propose(image, rng)
        chosen = choose_regions(candidates, len(plan.editors), rng)
        if not chosen:
            raise ValueError(f"{plan.source}: no usable object region found ({len(candidates)} candidates)")
        for turn, region in enumerate(chosen):
            store.save_image(f"region{turn}.png", Image.fromarray(region.mask.astype(np.uint8) * 255, "L"))
        store.save_json("regions.json", {"labels": [r.label for r in chosen],
                                         "scores": [round(r.score, 4) for r in chosen]})

    # -- stage: one turn ------------------------------------------------------------------------
    def stage_turn(self, turn: int) -> None:
        live = [s for s in self.stores if not s.stopped and s.has("regions.json") and turn < s.num_turns()]
        for _ in range(3 * (len(self.stores) - len(live))):  # steps these samples will never take
            self._tick(f"turn {turn + 1}")
        self._each(f"turn {turn + 1} prompts", live, lambda s: s.has(f"turn{turn}.prompt.json"),
                   lambda s: self.prompt(s, turn))
        groups = defaultdict(list)
        for store in live:
            groups[store.plan.editors[turn]].append(store)
        for name, stores in sorted(groups.items()):
            self._each(f"turn {turn + 1} edits ({name})", stores, lambda s: s.has(f"turn{turn}.edit.json"),
                       lambda s: self.edit(s, turn))
        self._each(f"turn {turn + 1} quality", live, lambda s: s.has(f"turn{turn}.quality.json"),
                   lambda s: self.quality(s, turn))

    def _inputs(self, store: SampleStore, turn: int) -> tuple[Image.Image, np.ndarray]:
        image = store.load_image("base.png" if turn == 0 else f"turn{turn - 1}.png")
        mask = np.asarray(store.load_image(f"region{turn}.png")) > 127
        return image, mask

    def prompt(self, store: SampleStore, turn: int) -> None:
        plan = store.plan
        image, mask = self._inputs(store, turn)
        label = store.load_json("regions.json")["labels"][turn]
        writer = self.models.get("prompts")
        instruction = writer.write(image, mask, label, plan.edit_types[turn],
                                   np.random.default_rng(plan.seeds[turn]))
        if not instruction.parsed:
            LOG.warning("sample %s turn %d: unreadable VLM answer, template prompt used: %r", plan.id,
                        turn + 1, getattr(writer, "last_answer", ""))
        store.save_json(f"turn{turn}.prompt.json", {**instruction.to_dict(), "parsed": instruction.parsed})

    def edit(self, store: SampleStore, turn: int) -> None:
        plan = store.plan
        image, mask = self._inputs(store, turn)
        labels = (np.zeros(mask.shape, np.uint8) if turn == 0
                  else np.asarray(store.load_image(f"turn{turn - 1}.label.png")))
        info = store.load_json(f"turn{turn}.prompt.json")
        instruction = EditInstruction(info["edit_type"], info["prompt"], info["object"],
                                      info["removal_prompt"])
        editor = self.models.get(f"editor:{plan.editors[turn]}")
        seed = plan.seeds[turn]
        if instruction.removal_prompt:  # an addition: first remove, then add in the same place
            removed = editor.inpaint(EditRequest(image, mask, instruction.removal_prompt, seed))
            image = composite(image, removed, mask)
            seed += 1
        edited = composite(image, editor.inpaint(EditRequest(image, mask, instruction.prompt, seed)), mask)
        store.save_image(f"turn{turn}.png", edited)
        store.save_image(f"turn{turn}.label.png",
                         Image.fromarray(apply_label(labels, mask, GENERATOR_BY_NAME[editor.name].id), "L"))
        store.save_json(f"turn{turn}.edit.json", {"generator": editor.name, "editor": plan.editors[turn],
                                                  "mask_area": round(mask_area(mask), 6),
                                                  "seed": plan.seeds[turn]})

    def quality(self, store: SampleStore, turn: int) -> None:
        image, mask = store.load_image(f"turn{turn}.png"), self._inputs(store, turn)[1]
        result = self.models.get("quality").score(image, mask)
        store.save_json(f"turn{turn}.quality.json", {"score": result.score, "reason": result.reason})
        if result.score is None or result.score < self.config.quality_threshold:
            store.stop("rejected", f"turn {turn + 1} quality {result.score}: {result.reason}", "quality")

    # -- finalize -------------------------------------------------------------------------------
    def finalize(self, store: SampleStore) -> None:
        plan = store.plan
        last = store.num_turns() - 1
        regions = store.load_json("regions.json")
        turns = []
        for turn in range(last + 1):
            prompt = store.load_json(f"turn{turn}.prompt.json")
            edit = store.load_json(f"turn{turn}.edit.json")
            quality = store.load_json(f"turn{turn}.quality.json")
            turns.append({**edit, "edit_type": prompt["edit_type"], "prompt": prompt["prompt"],
                          "removal_prompt": prompt["removal_prompt"], "object": regions["labels"][turn],
                          "quality": quality["score"], "quality_reason": quality["reason"]})
        labels = np.asarray(store.load_image(f"turn{last}.label.png"))
        source = plan.source if plan.base == "real" else f"{plan.base_editor}: {plan.source}"
        row = {"id": plan.id, "base": plan.base, "base_source": source,
               "base_generator": plan.base_editor, "caption": plan.source if plan.base == "ai" else None,
               "base_seed": plan.base_seed, "size": [int(labels.shape[1]), int(labels.shape[0])],
               "models": sorted({t["generator"] for t in turns}, key=lambda n: GENERATOR_BY_NAME[n].id),
               "edited_fraction": round(float((labels > 0).mean()), 6), "turns": turns}
        shutil.copyfile(store.path(f"turn{last}.label.png"), store.path("final.mask.tmp"))
        store.path("final.mask.tmp").replace(self.config.out / f"{plan.id}.mask.png")
        shutil.copyfile(store.path(f"turn{last}.png"), store.path("final.image.tmp"))
        store.path("final.image.tmp").replace(self.config.out / f"{plan.id}.image.png")
        store.save_json("done.json", row)
        for path in store.dir.glob("*.png"):  # keep only the small JSON records of a finished sample
            path.unlink()


# -------------------------------------------------------------------------------------- entry point
def list_sources(config: GenerationConfig) -> list[str]:
    """Real base sources: files under ``--source`` (sorted), or the mini profile's bundled photos."""
    if config.real_fraction <= 0:
        return []
    if config.source is None:
        from diffseg30k.generation.mini import SKIMAGE_PHOTOS

        return list(SKIMAGE_PHOTOS)
    root = Path(config.source)
    if not root.is_dir():
        raise ValueError(f"{root}: --source must be a folder of images")
    files = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    return files


def _check_fingerprint(config: GenerationConfig) -> None:
    path = config.out / "generation.json"
    wanted = config.fingerprint()
    if path.exists():
        found = json.loads(path.read_text(encoding="utf-8"))
        if found != wanted:
            changed = sorted(k for k in wanted if found.get(k) != wanted[k])
            raise ValueError(f"{config.out}: generated earlier with other arguments ({', '.join(changed)}); "
                             "use another --out or the same arguments to resume")
    else:
        atomic_write_text(path, json.dumps(wanted, indent=2, sort_keys=True) + "\n")


def assemble(out: Path) -> int:
    """Write ``metadata.jsonl`` (finished samples) and ``failures.jsonl`` (logged skips), sorted by id."""
    work = out / ".work"
    rows, failures = [], []
    for sample in sorted(work.iterdir()) if work.exists() else []:
        if (sample / "done.json").exists():
            rows.append((sample / "done.json").read_text(encoding="utf-8"))
        elif (sample / "status.json").exists():
            failures.append((sample / "status.json").read_text(encoding="utf-8"))
    atomic_write_text(out / "failures.jsonl", "".join(failures))
    atomic_write_text(out / "metadata.jsonl", "".join(rows))
    return len(rows)


def generate(config: GenerationConfig | None = None, **kwargs: Any) -> Path:
    """Generate a DiffSeg30k-style release into ``config.out``; returns the folder.

    Output: ``NNNNNNNN.image.png``, ``NNNNNNNN.mask.png`` (L label map), ``metadata.jsonl`` (one row
    per kept sample), ``failures.jsonl`` (failed or quality-rejected samples with the reason) and
    ``generation.json`` (the arguments). Resumable and idempotent.
    """
    config = config or GenerationConfig(**kwargs)
    from accelerate import PartialState
    from tqdm.auto import tqdm

    state = PartialState()
    device = config.device or str(state.device)
    config.out.mkdir(parents=True, exist_ok=True)
    if state.is_main_process:
        _check_fingerprint(config)
    state.wait_for_everyone()
    if not state.is_main_process:
        _check_fingerprint(config)
    _quiet_libraries()
    plans = plans_for(config)[state.process_index::state.num_processes]
    total = len(plans) * STEPS_PER_SAMPLE
    threads = config.threads or (1 if config.profile == "mini" else None)
    with _torch_threads(threads), tqdm(total=total, desc=f"generate[{state.process_index}]", unit="step",
              disable=not config.progress, dynamic_ncols=True) as bar:
        run = GenerationRun(config, plans, device, progress=bar)
        run.run()
        bar.update(total - bar.n)
    state.wait_for_everyone()
    if state.is_main_process:
        kept = assemble(config.out)
        LOG.info("generated %d of %d samples into %s", kept, config.num_images, config.out)
    state.wait_for_everyone()
    return config.out


@contextlib.contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    """Run with ``count`` torch threads (tiny models on a shared 2-core CPU are ~10x slower with 2)."""
    import torch

    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _default_captions() -> tuple[str, ...]:
    from diffseg30k.generation.mini import CAPTIONS

    return CAPTIONS


def _quiet_libraries() -> None:
    """Silence per-call chatter of diffusers/transformers (warnings stay in our own log)."""
    try:
        import diffusers
        import transformers

        diffusers.utils.logging.set_verbosity_error()
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def plans_for(config: GenerationConfig) -> list[SamplePlan]:
    """Every sample's plan, real photos assigned in order (cheap: no model is touched)."""
    sources, captions = list_sources(config), list(config.captions or _default_captions())
    plans, real_rank = [], 0
    for index in range(config.num_images):
        plan = plan_sample(config, index, sources, captions, real_rank)
        real_rank += plan.base == "real"
        plans.append(plan)
    if real_rank > len(sources) > 0:
        LOG.info("%d real bases from %d source photos: photos are reused (with other regions and edits)",
                 real_rank, len(sources))
    return plans


__all__ = ["GenerationConfig", "SamplePlan", "generate", "plan_sample", "plans_for", "assemble"]
