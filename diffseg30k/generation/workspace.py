"""Where a run keeps its state: per-sample step results on disk, and the models it holds.

:class:`SampleStore` writes every step's result atomically under ``OUT/.work/<id>/`` (a step is done
when its file exists); :class:`ModelPool` loads models on demand and, on GPUs, holds one large model
at a time.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

from PIL import Image

from diffseg30k.generation.plan import LOG, GenerationConfig, SamplePlan
from diffseg30k.generation.profiles import split_revision
from diffseg30k.io import atomic_write_bytes, atomic_write_text, open_image


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


class SampleStore:
    """The per-sample work folder: every step's result, written atomically."""

    def __init__(self, out: Path, plan: SamplePlan) -> None:
        self.out, self.plan = out, plan
        self.dir = out / ".work" / plan.id
        # a writer killed mid-write leaves its temporary file; only this process owns this sample
        for stale in self.dir.glob(".*.tmp") if self.dir.is_dir() else ():
            stale.unlink(missing_ok=True)
        self.redo_if_unpublished()

    def published(self) -> list[Path]:
        """The release files a finished sample has in the output folder."""
        return [self.out / f"{self.plan.id}.image.png", self.out / f"{self.plan.id}.mask.png"]

    def redo_if_unpublished(self) -> None:
        """A finished sample whose release files are gone (deleted, or lost to a concurrent writer) is
        generated again: its records are dropped, so every step reruns (deterministic, same bytes)."""
        if not self.has("done.json"):
            return
        missing = [p.name for p in self.published() if not p.is_file()]
        if missing:
            LOG.warning("sample %s was finished but %s is missing from %s: generating it again",
                        self.plan.id, " and ".join(missing), self.out)
            shutil.rmtree(self.dir)

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


class ModelPool:
    """Loads models on demand; unless ``keep_loaded``, holds one large model at a time: an editor, or
    the VLM (shared by the region, prompt and quality stages, with Grounding DINO and SAM beside it)."""

    def __init__(self, config: GenerationConfig, device: str) -> None:
        self.config, self.device = config, device
        self.loaded: dict[str, Any] = {}
        self.vlm: Any = None

    def shared_vlm(self) -> Any:
        """The VLM shared by the region, prompt and quality stages of the paper profile."""
        if self.vlm is None:
            from diffseg30k.generation.vlm import QwenVL

            repo, revision = split_revision(self.config.vlm)
            self.vlm = QwenVL.from_pretrained(repo, revision, device=self.device, dtype=self.config.dtype)
        return self.vlm

    def _make(self, key: str) -> Any:
        cfg, profile = self.config, self.config.generation_profile
        if key.startswith("editor:"):
            name = key.split(":", 1)[1]
            editor = profile.editor(name, device=self.device, dtype=cfg.dtype,
                                    **cfg.editor_options.get(name, {}))
            editor.load()
            return editor
        factories = {"regions": profile.region_proposer, "prompts": profile.prompter,
                     "quality": profile.quality_scorer}
        if key not in factories:
            raise KeyError(f"unknown model {key!r}; expected editor:NAME or one of {tuple(factories)}")
        return factories[key](self)

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

