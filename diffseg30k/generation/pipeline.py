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
import json
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from diffseg30k.generation.composite import apply_label, composite, fit_square, mask_area
from diffseg30k.generation.editors.base import EditRequest
from diffseg30k.generation.plan import (
    DEFAULT_DETECTOR,
    DEFAULT_SEGMENTER,
    DEFAULT_VLM,
    LOG,
    PIPELINE_VERSION,
    STEPS_PER_SAMPLE,
    GenerationConfig,
    SamplePlan,
    list_sources,
    plan_sample,
    plans_for,
)
from diffseg30k.generation.prompts import EditInstruction
from diffseg30k.generation.workspace import ModelPool, SampleStore
from diffseg30k.io import ImageError, atomic_write_text
from diffseg30k.labels import GENERATOR_BY_NAME
from diffseg30k.outputs import DISK_ERRNOS, shared_output_lock


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
                    if isinstance(err, OSError) and err.errno in DISK_ERRNOS:
                        raise  # the output cannot be written (disk full, read-only): not this sample's fault
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
        image = self.config.generation_profile.load_base(plan.source, plan.base_seed,
                                                         from_folder=self.config.source is not None)
        if min(image.size) < size // 2:
            raise ValueError(f"{plan.source}: image is {image.size[0]}x{image.size[1]}, too small for "
                             f"{size}x{size} output (short side must be >= {size // 2})")
        store.save_image("base.png", fit_square(image, size))

    def ai_base(self, store: SampleStore) -> None:
        plan = store.plan
        editor = self.models.get(f"editor:{plan.base_editor}")
        image = editor.text_to_image(plan.source, plan.base_seed, self.config.size)
        store.save_json("base.json", {"editor_backend": editor.backend})
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
            removed = editor.inpaint(EditRequest(image, mask, instruction.removal_prompt, seed,
                                                 edit_type="removal"))
            image = composite(image, removed, mask)
            seed += 1
        request = EditRequest(image, mask, instruction.prompt, seed, edit_type=instruction.edit_type)
        edited = composite(image, editor.inpaint(request), mask)
        store.save_image(f"turn{turn}.png", edited)
        store.save_image(f"turn{turn}.label.png",
                         Image.fromarray(apply_label(labels, mask, GENERATOR_BY_NAME[editor.name].id), "L"))
        store.save_json(f"turn{turn}.edit.json", {"generator": editor.name, "editor": plan.editors[turn],
                                                  "mask_area": round(mask_area(mask), 6),
                                                  "seed": plan.seeds[turn], "editor_backend": editor.backend})

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
               "base_seed": plan.base_seed,
               "base_backend": store.load_json("base.json")["editor_backend"] if store.has("base.json")
               else None,
               "size": [int(labels.shape[1]), int(labels.shape[0])],
               "models": sorted({t["generator"] for t in turns}, key=lambda n: GENERATOR_BY_NAME[n].id),
               "edited_fraction": round(float((labels > 0).mean()), 6), "turns": turns}
        published = {f"turn{last}.label.png": f"{plan.id}.mask.png",
                     f"turn{last}.png": f"{plan.id}.image.png"}
        try:
            for name, target in published.items():
                shutil.copyfile(store.path(name), store.path("final.tmp"))
                store.path("final.tmp").replace(self.config.out / target)
        except BaseException:  # never leave half a sample (a mask without its image) in the release
            for target in published.values():
                (self.config.out / target).unlink(missing_ok=True)
            raise
        store.save_json("done.json", row)
        for path in store.dir.glob("*.png"):  # keep only the small JSON records of a finished sample
            path.unlink()



# -------------------------------------------------------------------------------------- entry point
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

    state = PartialState()
    with shared_output_lock(config.out, "diffseg30k generate"):  # one run per --out
        if config.workers > 1 and state.num_processes == 1:
            from diffseg30k.generation.local_workers import generate_with_workers

            device = config.device or str(state.device)
            if device != "cpu":
                raise ValueError(f"workers={config.workers} splits the samples among local CPU processes, "
                                 f"but this run would use {device}: pass device='cpu' (--device cpu), or "
                                 "use `accelerate launch -m diffseg30k generate` for GPUs")

            return generate_with_workers(config, run_share, prepare_output, assemble)
        return _generate(config, state)


def prepare_output(config: GenerationConfig) -> None:
    """Create ``config.out``, check or record its arguments, write the profile's provenance note."""
    config.out.mkdir(parents=True, exist_ok=True)
    _check_fingerprint(config)
    provenance = config.generation_profile.provenance
    if provenance and not (config.out / "PROVENANCE.md").exists():
        atomic_write_text(config.out / "PROVENANCE.md", provenance)


def run_share(config: GenerationConfig, index: int, count: int, device: str) -> None:
    """Generate every ``count``-th planned sample from the ``index``-th (one process's share)."""
    from tqdm.auto import tqdm

    _quiet_libraries()
    plans = plans_for(config)[index::count]
    total = len(plans) * STEPS_PER_SAMPLE
    threads = config.threads or config.generation_profile.threads
    with _torch_threads(threads), tqdm(total=total, desc=f"generate[{index}]", unit="step", position=index,
                                       disable=not config.progress, dynamic_ncols=True) as bar:
        run = GenerationRun(config, plans, device, progress=bar)
        run.run()
        bar.update(total - bar.n)


def _generate(config: GenerationConfig, state: Any) -> Path:
    device = config.device or str(state.device)
    if state.is_main_process:
        prepare_output(config)
    state.wait_for_everyone()
    if not state.is_main_process:
        _check_fingerprint(config)
    run_share(config, state.process_index, state.num_processes, device)
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


__all__ = ["DEFAULT_DETECTOR", "DEFAULT_SEGMENTER", "DEFAULT_VLM", "PIPELINE_VERSION", "GenerationConfig",
           "GenerationRun", "SamplePlan", "assemble", "generate", "list_sources", "plan_sample", "plans_for"]
