"""Training state without pickle: weights and optimizer tensors in safetensors, the rest in JSON.

``torch.save``/``torch.load`` (what ``Accelerator.save_state`` writes: ``optimizer.bin``,
``scheduler.bin``, ``random_states_N.pkl``) is a pickle, and loading a pickle can run any code. A
checkpoint written here holds only:

- ``model.safetensors``: the unwrapped model (shared tensors handled by ``safetensors.torch``);
- ``optimizer.safetensors`` + ``optimizer.json``: every tensor of the optimizer's state, and its
  param groups and non-tensor entries;
- ``scheduler.json`` (and ``scaler.json`` for fp16): their ``state_dict()``s, plain numbers;
- ``random_states_<rank>.json``: Python, NumPy and torch (CPU, CUDA) generator states.

Everything is read and checked before anything is applied (:func:`read_training_state`), so an
unreadable file leaves the model untouched and the caller can fall back to an older checkpoint.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from diffseg30k.io import safetensors_names

MODEL_FILE = "model.safetensors"
OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_JSON = "optimizer.json"
SCHEDULER_JSON = "scheduler.json"
SCALER_JSON = "scaler.json"
PICKLED = ("optimizer.bin", "scheduler.bin", "pytorch_model.bin", "scaler.pt")


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message names the file and the reason."""


def rng_file(rank: int) -> str:
    return f"random_states_{rank}.json"


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data))


def save_training_state(folder: Path, model, optimizer, scheduler, scaler, main: bool, rank: int) -> None:
    """Write the training state into ``folder``: the shared parts from the main process only, the
    generator states from every rank."""
    from safetensors.torch import save_file, save_model

    if main:
        save_model(model, str(folder / MODEL_FILE))
        state = optimizer.state_dict()
        tensors, plain = {}, {}
        for index, entries in state["state"].items():
            for name, value in entries.items():
                if torch.is_tensor(value):
                    tensors[f"{index}/{name}"] = value.detach().contiguous().cpu()
                else:
                    plain.setdefault(str(index), {})[name] = value
        save_file(tensors, str(folder / OPTIMIZER_TENSORS))
        _write_json(folder / OPTIMIZER_JSON, {"param_groups": state["param_groups"], "state": plain})
        _write_json(folder / SCHEDULER_JSON, scheduler.state_dict())
        if scaler is not None:
            _write_json(folder / SCALER_JSON, scaler.state_dict())
    numpy_state = np.random.get_state()
    _write_json(folder / rng_file(rank), {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *[float(v) if isinstance(v, float) else int(v)
                                                             for v in numpy_state[2:]]],
        "torch": torch.get_rng_state().tolist(),
        "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else []})


@dataclass
class TrainingState:
    """A checkpoint's state, read and checked, not applied yet."""

    folder: Path
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any] | None
    rng: dict[str, Any] | None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise CheckpointError(f"{path}: missing") from err
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable ({err})") from err


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for truncated/corrupt files
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from err


def read_training_state(folder: Path, rank: int) -> TrainingState:
    """Read every file of a checkpoint (no pickle anywhere); :class:`CheckpointError` naming the first
    unreadable one. A checkpoint in Accelerate's pickle format is refused without being opened."""
    pickled = [name for name in PICKLED if (folder / name).exists()]
    if pickled and not (folder / OPTIMIZER_JSON).exists():
        raise CheckpointError(f"{folder / pickled[0]}: not a plain tensor file (a pickle, which can run "
                              "code when loaded); it was not loaded")
    if not (folder / MODEL_FILE).is_file():
        raise CheckpointError(f"{folder / MODEL_FILE}: missing")
    try:  # header and size checked here (no tensor read); loaded by apply_training_state
        safetensors_names(folder / MODEL_FILE)
    except ValueError as err:
        raise CheckpointError(str(err)) from err
    meta = _read_json(folder / OPTIMIZER_JSON)
    tensors = _read_tensors(folder / OPTIMIZER_TENSORS)
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, _, name = key.partition("/")
        state.setdefault(int(index), {})[name] = value
    for index, entries in meta.get("state", {}).items():
        state.setdefault(int(index), {}).update(entries)
    scaler = _read_json(folder / SCALER_JSON) if (folder / SCALER_JSON).exists() else None
    rng_path = folder / rng_file(rank)
    rng = _read_json(rng_path) if rng_path.exists() else None
    return TrainingState(folder, {"state": state, "param_groups": meta["param_groups"]},
                         _read_json(folder / SCHEDULER_JSON), scaler, rng)


def apply_training_state(saved: TrainingState, model, optimizer, scheduler, scaler) -> None:
    """Load a checked :class:`TrainingState` into the training objects (weights first)."""
    from safetensors.torch import load_model

    try:
        load_model(model, str(saved.folder / MODEL_FILE), strict=True)
        optimizer.load_state_dict(saved.optimizer)
        scheduler.load_state_dict(saved.scheduler)
    except (RuntimeError, ValueError, KeyError) as err:  # tensors that do not fit this model/optimizer
        raise CheckpointError(f"{saved.folder}: does not fit this model and optimizer ({err})") from err
    if scaler is not None and saved.scaler is not None:
        scaler.load_state_dict(saved.scaler)
    if saved.rng is not None:
        python = saved.rng["python"]
        random.setstate((python[0], tuple(python[1]), python[2]))
        numpy = saved.rng["numpy"]
        np.random.set_state((numpy[0], np.asarray(numpy[1], np.uint32), *numpy[2:]))
        torch.set_rng_state(torch.tensor(saved.rng["torch"], dtype=torch.uint8))
        if saved.rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in saved.rng["cuda"]])
