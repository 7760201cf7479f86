"""Where a detector checkpoint lives: the one rule every entry point uses.

``Detector.from_pretrained``, ``predict``, ``evaluate``, ``push model``/``push space`` and ``demo``
accept the same three things:

- a **checkpoint folder** (``config.json`` + ``model.safetensors``);
- a **training run folder** (``diffseg30k train --out runs/x``): it means its ``best/`` export;
- a **Hub model id** ``owner/name``: downloaded (``*.json`` and ``*.safetensors`` only), or taken from
  the local Hub cache when ``HF_HUB_OFFLINE=1``.

A path that looks local (it exists, starts with ``.``, ``/`` or ``~``, or has other than one ``/``)
never becomes a Hub lookup: a missing one is an immediate "no such folder".
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

LOG = logging.getLogger(__name__)
#: The environment variable naming the demo's / Space's detector (``push space`` sets it).
CHECKPOINT_ENV = "DIFFSEG_CHECKPOINT"
RUN_BEST = "best"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
HUB_PATTERNS = ["*.json", "*.safetensors"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class CheckpointNotFound(FileNotFoundError):
    """No loadable checkpoint at the given place; the message says what is there and what to do."""


def looks_like_hub_id(source: str | os.PathLike) -> bool:
    """True for ``owner/name`` strings that name nothing on disk (``./x``, ``/x``, ``~/x``: local)."""
    text = str(source)
    return (bool(_REPO_ID.match(text)) and not text.startswith(".")
            and not Path(text).expanduser().exists())


def local_checkpoint(path: str | os.PathLike, require_weights: bool = True) -> Path:
    """The checkpoint folder ``path`` means: itself, or ``path/best`` for a training run folder."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise CheckpointNotFound(f"{path}: no such folder")
    if not folder.is_dir():
        raise CheckpointNotFound(f"{path}: not a folder (a checkpoint is a folder with config.json and "
                                 "model.safetensors)")
    if not (folder / "config.json").is_file():
        best = folder / RUN_BEST
        if (best / "config.json").is_file():
            LOG.info("%s is a training run folder: loading its best checkpoint %s", path, best)
            folder = best
        elif (folder / "checkpoints").is_dir():
            raise CheckpointNotFound(f"{path}: a training run folder without {RUN_BEST}/ yet (it is written "
                                     "at the first evaluation and at the end of training; checkpoints/"
                                     "step_N/ are resumable training states, not detectors)")
        else:
            raise CheckpointNotFound(f"{path}: no config.json here nor in {RUN_BEST}/ (expected a folder "
                                     "written by `diffseg30k train`: its best/, or the run folder itself)")
    if require_weights and not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise CheckpointNotFound(f"{folder}: no model.safetensors (only safetensors weights are loaded)")
    return folder


def resolve_checkpoint(source: str | os.PathLike, revision: str | None = None) -> Path:
    """The local folder holding the checkpoint ``source`` names (see the module docstring)."""
    if not looks_like_hub_id(source):
        return local_checkpoint(source)
    from huggingface_hub import snapshot_download
    from huggingface_hub.constants import is_offline_mode

    offline = is_offline_mode()
    try:
        folder = Path(snapshot_download(str(source), revision=revision, allow_patterns=HUB_PATTERNS,
                                        local_files_only=offline))
    except Exception as err:  # offline, unknown repo, gated, network: one clear message
        if offline:
            raise CheckpointNotFound(
                f"{source}: no such local folder, and HF_HUB_OFFLINE=1 is set while this Hub model is not in "
                f"the local Hub cache; download it once online (`hf download {source}`) or pass a local "
                "checkpoint folder") from err
        raise CheckpointNotFound(f"{source}: no such local folder, and the Hub download failed "
                                 f"({type(err).__name__}: {err})") from err
    return local_checkpoint(folder)


def describe(source: str | os.PathLike, folder: Path) -> str:
    """'runs/x/best' or 'runs/x/best (best checkpoint of the run runs/x)' for logs and outputs."""
    if looks_like_hub_id(source):
        return f"{source} (Hub, {folder})"
    if Path(source).expanduser().resolve() != folder.resolve():
        return f"{folder} (the best checkpoint of the training run {source})"
    return str(folder)


def check_pretrained(source: str) -> None:
    """Fail at once, with the real cause, when pretrained backbone weights cannot be had: a local-looking
    path that does not exist, or a Hub id while ``HF_HUB_OFFLINE=1`` is set and it is not cached."""
    if not looks_like_hub_id(source):
        if not Path(source).expanduser().exists():
            raise CheckpointNotFound(f"pretrained weights {source}: no such folder")
        return
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.constants import is_offline_mode

    if is_offline_mode() and not isinstance(try_to_load_from_cache(source, "config.json"), str):
        raise CheckpointNotFound(
            f"pretrained weights {source}: HF_HUB_OFFLINE=1 is set and they are not in the local Hub cache; "
            f"download them once online (`hf download {source}`), pass a local folder (--pretrained DIR / "
            "pretrained=...), or train from scratch (--from-scratch)")
