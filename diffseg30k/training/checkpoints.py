"""Atomic training checkpoints (``OUT/checkpoints/step_N``) and the exported detector (``OUT/best``).

A checkpoint (safetensors + JSON only, see :mod:`diffseg30k.training.state`: no pickle is written or
read) goes into a hidden temporary sibling, is completed with ``trainer_state.json`` and only then
renamed to ``step_N``: a process killed mid-save leaves a ``.step_N.tmp`` folder that is never picked
up, and the previous checkpoint stays intact. A resume whose newest checkpoint is unreadable (e.g. a
truncated file) says so and falls back to the previous one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from diffseg30k.io import atomic_dir, atomic_write_text

STATE_FILE = "trainer_state.json"
DETECTOR_FILE = "diffseg30k.json"
_STEP_DIR = re.compile(r"^step_(\d+)$")


def checkpoint_dirs(out: Path) -> list[Path]:
    """Complete checkpoints under ``out/checkpoints``, oldest first."""
    root = Path(out) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := _STEP_DIR.match(p.name)) and (p / STATE_FILE).is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(out: Path) -> Path | None:
    dirs = checkpoint_dirs(out)
    return dirs[-1] if dirs else None


def read_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / STATE_FILE).read_text())


def save_checkpoint(accelerator, out: Path, step: int, state: dict[str, Any], keep: int,
                    objects: tuple[Any, Any, Any]) -> Path:
    """Save the full training state (``objects`` = model, optimizer, scheduler) at ``step`` atomically;
    keep the ``keep`` newest checkpoints. A failed write (e.g. a full disk) leaves no partial folder."""
    from diffseg30k.training.state import save_training_state

    root = Path(out) / "checkpoints"
    final = root / f"step_{step}"
    tmp = root / f".step_{step}.tmp"
    model, optimizer, scheduler = objects
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    accelerator.wait_for_everyone()
    try:
        save_training_state(tmp, accelerator.unwrap_model(model), optimizer, scheduler, accelerator.scaler,
                            accelerator.is_main_process, accelerator.process_index)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        try:
            atomic_write_text(tmp / STATE_FILE, json.dumps({**state, "step": step}, indent=2))
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in checkpoint_dirs(out)[:-max(1, keep)]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def resume_checkpoint(accelerator, out: Path, objects: tuple[Any, Any, Any]) -> tuple[Path | None, dict]:
    """Load the newest readable checkpoint into ``objects`` (model, optimizer, scheduler).

    An unreadable checkpoint (truncated safetensors, missing or corrupt JSON, an old pickled state) is
    named, and the previous complete one is tried, saying so. Returns (checkpoint or None, its trainer
    state). Raises :class:`~diffseg30k.training.state.CheckpointError` when checkpoints exist but none
    can be read.
    """
    from diffseg30k.training.state import CheckpointError, apply_training_state, read_training_state

    model, optimizer, scheduler = objects
    candidates = checkpoint_dirs(out)[::-1]
    problems = []
    for checkpoint in candidates:
        try:
            saved = read_training_state(checkpoint, accelerator.process_index)
            state = read_state(checkpoint)
            apply_training_state(saved, accelerator.unwrap_model(model), optimizer, scheduler,
                                 accelerator.scaler)
        except (CheckpointError, OSError, ValueError) as err:
            problems.append(str(err))
            older = [c for c in candidates if int(c.name[5:]) < int(checkpoint.name[5:])]
            accelerator.print(f"checkpoint {checkpoint} cannot be resumed from: {err}"
                              + (f"; falling back to {older[0]}" if older else ""))
            continue
        return checkpoint, state
    if candidates:
        raise CheckpointError(f"{Path(out) / 'checkpoints'}: no checkpoint can be resumed from "
                              f"({'; '.join(problems)})")
    return None, {}


def export_detector(model, target: Path, summary: dict[str, Any]) -> Path:
    """Write ``config.json`` + ``model.safetensors`` + ``preprocessor_config.json`` +
    ``diffseg30k.json`` into ``target`` atomically (replacing an older export)."""
    from transformers import SegformerImageProcessorPil as SegformerImageProcessor

    config = model.config
    with atomic_dir(target, overwrite=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        # Native resolution, no resizing: `pipeline("image-segmentation", model=target)` works too.
        SegformerImageProcessor(do_resize=False, image_mean=list(config.image_mean),
                                image_std=list(config.image_std), do_reduce_labels=False
                                ).save_pretrained(tmp)
        info = {"task": config.diffseg_task, "model": config.diffseg_model,
                "id2label": {str(k): v for k, v in config.id2label.items()},
                "crop_size": config.crop_size, **summary}
        (tmp / DETECTOR_FILE).write_text(json.dumps(info, indent=2, default=str))
    return target
