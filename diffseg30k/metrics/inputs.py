"""Turning user label maps (numpy, torch, PIL, nested lists) into validated uint8 maps.

Internally every map is a 2-D ``uint8`` array whose class ids are ``0 .. num_classes-1`` and whose
ignored pixels hold the sentinel 255. Nothing is cast silently: floats, NaN, negative ids, ids
outside the label set, bad shapes and empty maps raise ``ValueError`` naming the pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

SENTINEL = 255
MAX_CLASSES = 255


class LabelMapError(ValueError):
    """A label map (or a score) that cannot be evaluated; the message names the pair and the problem."""


def to_numpy(value: Any) -> np.ndarray:
    """numpy view of a numpy array, torch tensor, PIL image or nested list (torch imported lazily)."""
    if isinstance(value, np.ndarray):
        return value
    module = type(value).__module__
    if module.startswith("torch"):
        return value.detach().cpu().numpy()
    if module.startswith("PIL."):
        if value.mode == "1":
            return np.asarray(value, dtype=bool)
        return np.asarray(value)
    return np.asarray(value)


def _describe(role: str, index: int) -> str:
    return f"pair {index}: {role}"


def check_label_map(value: Any, role: str, index: int, num_classes: int, ignore_index: int) -> np.ndarray:
    """Validate one map and return it as uint8 with ignored pixels set to 255.

    Predictions may hold ignore_index too; :func:`check_pair` then checks that those pixels sit
    where the reference is ignored.
    """
    where = _describe(role, index)
    mode = getattr(value, "mode", None)
    try:
        array = to_numpy(value)
    except (ValueError, TypeError):
        array = np.empty(0, dtype=object)
    if array.dtype == object:
        raise LabelMapError(f"{where} is not a rectangular integer label map (ragged or object array)")
    if array.ndim != 2:
        hint = f" (PIL mode {mode}; pass an 'L' or 'P' label map)" if mode else ""
        raise LabelMapError(f"{where} is not 2-D: shape {tuple(array.shape)}{hint}")
    if array.size == 0:
        raise LabelMapError(f"{where} is empty: shape {tuple(array.shape)}")
    kind = array.dtype.kind
    if kind == "f" or kind == "c":
        if np.isnan(array).any():
            raise LabelMapError(f"{where} contains NaN")
        raise LabelMapError(f"{where} has float labels (dtype {array.dtype}); pass integer class ids")
    if kind == "b":
        return np.ascontiguousarray(array).view(np.uint8)
    if kind not in "iu":
        raise LabelMapError(f"{where} has dtype {array.dtype}; pass integer class ids")
    if array.dtype == np.uint8 and ignore_index == SENTINEL:
        high = int(array.max())
        if high >= num_classes and high != SENTINEL:
            raise LabelMapError(f"{where} contains label {high} >= num_classes {num_classes}")
        if high == SENTINEL:
            _check_values(array, where, num_classes, ignore_index)
        return np.ascontiguousarray(array)
    low, high = int(array.min()), int(array.max())
    if low >= 0 and high < num_classes:
        return array.astype(np.uint8)
    ignored = _check_values(array, where, num_classes, ignore_index)
    out = np.where(ignored, SENTINEL, array).astype(np.uint8)
    return out


def _check_values(array: np.ndarray, where: str, num_classes: int, ignore_index: int) -> np.ndarray:
    """Raise on ids outside ``0..num_classes-1`` other than ignore_index; return the ignore mask."""
    ignored = array == ignore_index
    bad = ~ignored & ((array < 0) | (array >= num_classes))
    if bad.any():
        value = int(array[bad].flat[0])
        problem = "negative label" if value < 0 else "label"
        raise LabelMapError(f"{where} contains {problem} {value} outside 0..{num_classes - 1} "
                            f"(ignore_index is {ignore_index})")
    return ignored


def check_pair(prediction: Any, reference: Any, index: int, num_classes: int,
               ignore_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (prediction, reference) pair; predictions may hold ignore_index only where the
    reference is ignored too. The returned prediction is masked to the reference's valid pixels
    (255 wherever the reference is ignored; the caller's array is never modified)."""
    ref = check_label_map(reference, "reference", index, num_classes, ignore_index)
    pred = check_label_map(prediction, "prediction", index, num_classes, ignore_index)
    if pred.shape != ref.shape:
        raise LabelMapError(f"pair {index}: prediction shape {pred.shape} differs from reference shape "
                            f"{ref.shape}")
    if int(pred.max()) == SENTINEL:
        stray = (pred == SENTINEL) & (ref != SENTINEL)
        if stray.any():
            raise LabelMapError(f"pair {index}: prediction contains ignore_index {ignore_index} at "
                                f"{int(stray.sum())} pixels the reference does not ignore")
    if int(ref.max()) == SENTINEL:  # v2: ignored pixels count nowhere, so mask the prediction too
        pred = np.where(ref == SENTINEL, np.uint8(SENTINEL), pred)
    return pred, ref


def check_score(score: Any, index: int) -> float:
    """A finite float image score."""
    try:
        value = float(score)
    except (TypeError, ValueError):
        raise LabelMapError(f"pair {index}: score {score!r} is not a number") from None
    if not np.isfinite(value):
        raise LabelMapError(f"pair {index}: score is {value}; scores must be finite")
    return value


def iter_maps(maps: Any, role: str) -> Sequence[Any] | Iterable[Any]:
    """Split a batch (list, (N, H, W) array or tensor) into per-image maps; reject empty input."""
    if maps is None:
        raise LabelMapError(f"{role} is None")
    if isinstance(maps, np.ndarray) or type(maps).__module__.startswith("torch"):
        if maps.ndim != 3:
            raise LabelMapError(f"{role}: a batch array must be (N, H, W), got shape {tuple(maps.shape)}")
        batch = [maps[i] for i in range(maps.shape[0])]
    else:
        batch = list(maps)
    if len(batch) == 0:
        raise LabelMapError(f"{role} is empty: no label maps were given")
    return batch
