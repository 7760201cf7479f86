"""Score another toolkit's predictions on any dataset: a folder of predicted masks or probability maps
named like the dataset's images, scored with the DiffSeg30k metric (no model of ours involved).

Files are matched to dataset ids by name: ``<id>.png`` / ``<id>.npy``, also with ``.image``,
``.mask``, ``_mask``, ``_pred``, ``.pred`` or ``_prediction`` (also stacked, ``<id>.image_pred.png``)
before the extension. What a file holds:

- an 8-bit PNG (L / P / RGB averaged to grey / 1-bit) whose values are only 0 and 255: a binary mask;
- an 8-bit PNG with values in 0..8: a label map (semantic when some value is >= 2);
- any other 8-bit PNG: a probability map ``value / 255``; a 16-bit PNG: ``value / 65535``;
- a ``.npy`` array: float = probabilities in [0, 1]; integer or bool = a label map.

``kind`` (CLI ``--prediction-kind``) forces one reading of 8-bit PNGs: ``binary`` (> 127 = edited),
``labels`` or ``probability`` (a faint probability map would otherwise pass for a 0..8 label map).
Probability maps are thresholded at :data:`THRESHOLD` (the IMDL convention, 0.5). The task is semantic
when some label map holds a generator id >= 2 and the dataset has generator labels, else binary; binary
masks or probability maps mixed with such label maps are refused. Each image's score is its predicted
edited fraction (as for our detectors).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from diffseg30k.experiments.evaluation import row_meta, score_prediction_set
from diffseg30k.experiments.predictions import PredictionRecord, PredictionWriter

SUFFIXES = (".png", ".npy")
NAME_SUFFIXES = (".image", ".mask", "_mask", "_pred", ".pred", "_prediction")
THRESHOLD = 0.5
KINDS = ("binary", "labels", "probability")
#: The PredictionRecord field metric v2 (issue 13) scores as ``pixel_scores``: probability maps fill it.
PROBABILITY_FIELD = "edited_probability"


class PredictionError(ValueError):
    """A prediction file (or dataset image) that cannot be scored; the message names it."""

    def __init__(self, item: str, problem: str):
        super().__init__(f"{item}: {problem}")
        self.item, self.problem = item, problem


@dataclass
class ForeignMap:
    """One predicted map: the label map scored, the probabilities it came from (if any), its kind."""

    labels: np.ndarray
    probability: np.ndarray | None
    kind: str


def prediction_keys(name: str) -> list[str]:
    """The dataset ids a prediction file name may stand for."""
    keys = [name[: -len(Path(name).suffix)] if Path(name).suffix.lower() in SUFFIXES else name]
    for key in keys:  # suffixes may stack: <id>.image_pred.png
        keys += [key[: -len(s)] for s in NAME_SUFFIXES if key.endswith(s) and len(key) > len(s)]
    return list(dict.fromkeys(keys))


def index_predictions(folder: Path, ids: Iterable[str]) -> tuple[dict[str, Path], list[PredictionError]]:
    """``{id: file}`` for the dataset ids, plus files that match no id or the same id twice."""
    wanted = set(ids)
    found: dict[str, Path] = {}
    problems: list[PredictionError] = []
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise PredictionError(str(folder), f"no prediction files ({', '.join(SUFFIXES)}) found")
    for file in files:
        key = next((k for k in prediction_keys(file.name) if k in wanted), None)
        if key is None:
            problems.append(PredictionError(str(file), "matches no image of the dataset split (expected "
                                            "<id>.png or <id>.npy)"))
        elif key in found:
            problems.append(PredictionError(str(file), f"second prediction for image {key!r} (first: "
                                            f"{found[key]})"))
        else:
            found[key] = file
    return found, problems


def _from_values(values: np.ndarray, file: Path, scale: float | None, kind: str = "auto") -> ForeignMap:
    """Classify an integer map: binary 0/255 mask, 0..8 label map, or a scaled probability map
    (``kind`` forces one reading of an 8-bit map)."""
    if kind == "binary":
        return ForeignMap((values > 127).astype(np.uint8), None, "binary")
    if kind == "labels":
        if values.size and values.max() > 8:
            raise PredictionError(str(file), f"label maps hold ids 0..8, found {int(values.max())}")
        return ForeignMap(values.astype(np.uint8), None, "labels")
    if kind == "probability":
        scale = scale or 255.0
    if scale is None:
        present = np.unique(values)
        if present.size and set(present.tolist()) <= {0, 255} and 255 in present:
            return ForeignMap((values == 255).astype(np.uint8), None, "binary")
        if present.size and present.max() <= 8 and present.min() >= 0:
            return ForeignMap(values.astype(np.uint8), None, "labels")
        scale = 255.0
    probability = values.astype(np.float32) / scale
    return ForeignMap((probability >= THRESHOLD).astype(np.uint8), probability, "probability")


def read_prediction(file: Path, kind: str = "auto") -> ForeignMap:
    """Read one prediction file (see the module docstring for what each kind means); ``kind`` (one of
    :data:`KINDS`) forces how an 8-bit PNG is read, a ``.npy`` array is read by its dtype."""
    if kind not in ("auto", *KINDS):
        raise ValueError(f"prediction kind must be auto or one of {KINDS}, got {kind!r}")
    if file.suffix.lower() == ".npy":
        try:
            array = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise PredictionError(str(file), f"not a readable .npy array ({err})") from err
        while array.ndim > 2 and 1 in (array.shape[0], array.shape[-1]):  # (1, H, W) or (H, W, 1)
            array = array[0] if array.shape[0] == 1 else array[..., 0]
        if array.ndim != 2:
            raise PredictionError(str(file), f"expected a 2-D map, got shape {array.shape}")
        if array.dtype.kind == "f":
            if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
                raise PredictionError(str(file), "probabilities must be finite and lie in [0, 1]")
            return ForeignMap((array >= THRESHOLD).astype(np.uint8), array.astype(np.float32), "probability")
        if array.dtype.kind in "biu" and array.size and array.min() >= 0 and array.max() <= 8:
            return ForeignMap(array.astype(np.uint8), None, "labels")
        raise PredictionError(str(file), f"integer maps must hold label ids 0..8 (dtype {array.dtype})")
    return _read_png(file, kind)


def _read_png(file: Path, kind: str) -> ForeignMap:
    from diffseg30k.io import ImageError, open_image

    try:
        image = open_image(file)
    except ImageError as err:
        raise PredictionError(str(file), str(err).removeprefix(f"{file}: ")) from err
    if image.mode.startswith("I;16") or image.mode == "I":
        return _from_values(np.asarray(image, np.int64), file, 65535.0)
    if image.mode == "F":
        values = np.asarray(image, np.float32)
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            raise PredictionError(str(file), "a float map must hold probabilities in [0, 1]")
        return ForeignMap((values >= THRESHOLD).astype(np.uint8), values, "probability")
    if image.mode in ("1", "L", "P"):
        values = np.asarray(image.convert("L") if image.mode == "1" else image)
    else:
        rgb = np.asarray(image.convert("RGB"))  # grey = channel mean (adds: faster than a mean over axis 2)
        values = ((rgb[..., 0].astype(np.uint16) + rgb[..., 1] + rgb[..., 2] + 1) // 3).astype(np.uint8)
    return _from_values(values, file, None, kind)


def _reference(row: dict[str, Any]) -> np.ndarray:
    return np.asarray(row["mask"], np.uint8)


class _TaskTracker:
    """Decides the task over all maps: semantic when a label map holds a generator id >= 2."""

    def __init__(self, binary_only: bool):
        self.binary_only = binary_only
        self.first: dict[str, str] = {}
        self.semantic_file: str | None = None

    def see(self, found: ForeignMap, file: Path) -> np.ndarray:
        self.first.setdefault(found.kind, str(file))
        if found.kind == "labels" and found.labels.max(initial=0) >= 2:
            if self.binary_only:
                return (found.labels > 0).astype(np.uint8)
            self.semantic_file = self.semantic_file or str(file)
        return found.labels

    @property
    def task(self) -> str:
        if self.semantic_file is None:
            return "binary"
        other = next((self.first[k] for k in ("binary", "probability") if k in self.first), None)
        if other is not None:
            raise PredictionError(other, f"a binary mask / probability map mixed with semantic label maps "
                                  f"(e.g. {self.semantic_file}): give one kind of prediction")
        return "semantic"


def _problem_text(problems: list[PredictionError]) -> str:
    first = problems[0]
    more = f" (and {len(problems) - 1} more problems; --on-error skip lists them all)" if len(problems) > 1 \
        else ""
    return first.problem + more


def write_foreign_set(folder: str | Path, table: Any, out: str | Path, binary_only: bool,
                      meta: dict[str, Any], on_error: str = "raise", limit: int | None = None,
                      kind: str = "auto") -> tuple[Path, list[PredictionError]]:
    """Pair the files of ``folder`` with ``table``'s rows into a prediction set at ``out``.

    ``on_error="raise"`` stops at the first problem (a missing, unreadable, mis-sized or unmatched
    file); ``"skip"`` leaves those images out and returns every problem.
    """
    from tqdm.auto import tqdm

    folder = Path(folder)
    if not folder.is_dir():
        raise PredictionError(str(folder), "not a folder of predictions")
    rows = table.select_columns([c for c in table.column_names if c != "image"])
    if limit is not None:
        rows = rows.select(range(min(limit, len(rows))))
    files, problems = index_predictions(folder, [str(i) for i in rows["id"]])
    if limit is not None:  # files of the images left out are not problems
        problems = [p for p in problems if "matches no image" not in p.problem]
    if problems and on_error == "raise":
        raise PredictionError(problems[0].item, _problem_text(problems))
    tracker = _TaskTracker(binary_only)
    with_pixels = PROBABILITY_FIELD in {f.name for f in fields(PredictionRecord)}
    writer, written = PredictionWriter(out, meta), 0
    try:
        for row in tqdm(rows, desc="reading predictions", leave=False):
            try:
                record = _record(row, files, tracker, with_pixels, kind)
            except PredictionError as err:
                if on_error == "raise":
                    raise
                problems.append(err)
                continue
            writer.add(record)
            written += 1
        if not written:
            raise PredictionError(str(folder), "no image could be scored (see the problems listed)")
        writer.meta["task"] = tracker.task
        writer.meta["prediction_kinds"] = sorted(tracker.first)
        return writer.close(), problems
    except BaseException as err:
        writer.abort(err)
        raise


def _record(row: dict[str, Any], files: dict[str, Path], tracker: _TaskTracker, with_pixels: bool,
            kind: str) -> PredictionRecord:
    sample_id = str(row["id"])
    file = files.get(sample_id)
    if file is None:
        raise PredictionError(f"image {sample_id!r}", "no prediction file (expected "
                              f"{sample_id}.png or {sample_id}.npy)")
    found = read_prediction(file, kind)
    reference = _reference(row)
    if found.labels.shape != reference.shape:
        raise PredictionError(str(file), f"prediction is {found.labels.shape[1]}x{found.labels.shape[0]} but "
                              f"image {sample_id!r} is {reference.shape[1]}x{reference.shape[0]}")
    labels = tracker.see(found, file)
    extra = {PROBABILITY_FIELD: found.probability} if with_pixels and found.probability is not None else {}
    score = float((labels > 0).mean())
    return PredictionRecord(sample_id, labels, reference, score, row_meta(row, reference), **extra)


def score_foreign(folder: str | Path, data: Any, out: str | Path, by: Iterable[str] = (), bootstrap: int = 0,
                  seed: int = 0, on_error: str = "raise", limit: int | None = None, kind: str = "auto"
                  ) -> tuple[dict[str, Any], list[PredictionError]]:
    """Score a folder of foreign predictions on an opened dataset (:class:`EvalDataset`)."""
    from diffseg30k.data.load import label_names

    meta = {"distortion": "none", "predictions": str(folder), "dataset": data.source, "split": data.split,
            "id2label": {str(k): v for k, v in label_names(data.location).items()}}
    path, problems = write_foreign_set(folder, data.table, out, data.binary_only, meta, on_error, limit, kind)
    return {"none": score_prediction_set(path, by=by, bootstrap=bootstrap, seed=seed)}, problems
