"""DiffSegMetric: streaming, mergeable accumulation of the DiffSeg30k metrics (DESIGN.md)."""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any

import numpy as np

from diffseg30k.metrics.inputs import MAX_CLASSES, LabelMapError, check_pair, check_score, iter_maps
from diffseg30k.metrics.pair import (
    BINARY,
    FIXED_POINT,
    SEMANTIC,
    PairEvaluator,
    PairStats,
    decode_row,
    encode_row,
)
from diffseg30k.metrics.ranking import average_precision

METRIC_VERSION = "1.0"
TASK_BITS = {"semantic": SEMANTIC, "binary": BINARY, "both": SEMANTIC | BINARY}
AVERAGING = ("dataset-level confusion for accuracy/mIoU; per-image boundary F averaged per class "
             "then over classes; image-level over images")

class DiffSegMetric:
    """Accuracy, mIoU and boundary F1 for the semantic and binary tasks plus image-level accuracy/AP.

    Feed pairs with :meth:`update` / :meth:`update_batch`, combine shards with :meth:`merge`, read
    with :meth:`compute`. State is additive and O(1) in image size (a few numbers per image are kept
    for average precision).
    """

    def __init__(self, num_classes: int | None = None, ignore_index: int = 255, task: str = "both",
                 area_threshold: float = 0.01, boundary_tolerance: float = 0.0075,
                 id2label: dict[int, str] | None = None) -> None:
        from diffseg30k.labels import BINARY_ID2LABEL, ID2LABEL

        if task not in TASK_BITS:
            raise ValueError(f"unknown task {task!r}; expected one of {tuple(TASK_BITS)}")
        if id2label is not None:
            id2label = {int(i): str(name) for i, name in id2label.items()}
        if num_classes is None:
            num_classes = max(id2label) + 1 if id2label else len(ID2LABEL)
        if not 2 <= int(num_classes) <= MAX_CLASSES:
            raise ValueError(f"num_classes must lie in 2..{MAX_CLASSES}, got {num_classes}")
        if id2label is None:
            default = num_classes == len(ID2LABEL)
            id2label = dict(ID2LABEL) if default else {i: str(i) for i in range(num_classes)}
        if max(id2label) + 1 != num_classes:
            raise ValueError(f"id2label has ids up to {max(id2label)} but num_classes is {num_classes}")
        if 0 <= ignore_index < num_classes:
            raise ValueError(f"ignore_index {ignore_index} is a class id (num_classes {num_classes})")
        if not 0.0 <= float(area_threshold) < 1.0:
            raise ValueError(f"area_threshold must lie in [0, 1), got {area_threshold}")
        if not 0.0 <= float(boundary_tolerance) < 1.0:
            raise ValueError(f"boundary_tolerance must lie in [0, 1), got {boundary_tolerance}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.task = task
        self.area_threshold = float(area_threshold)
        self.boundary_tolerance = float(boundary_tolerance)
        self.id2label = {i: id2label.get(i, str(i)) for i in range(self.num_classes)}
        self.binary_id2label = dict(BINARY_ID2LABEL)
        self._evaluate_pair = PairEvaluator(self.num_classes, self.boundary_tolerance, TASK_BITS[task])
        self.reset()

    # ----------------------------------------------------------------------------- accumulation
    def reset(self) -> None:
        """Forget every image."""
        k = self.num_classes
        self.confusion = np.zeros((k + 1, k + 1), np.int64)
        self.semantic_f_sum = [0] * (k - 1)
        self.semantic_f_count = [0] * (k - 1)
        self.binary_f_sum = 0
        self.binary_f_count = 0
        self.predicted_edited = array("q")
        self.num_pixels = array("q")
        self.reference_edited = array("b")
        self.scores = array("d")

    def __len__(self) -> int:
        return len(self.num_pixels)

    def pair_stats(self, prediction: Any, reference: Any, score: Any = None, index: int = 0) -> PairStats:
        """Validate one pair and compute its additive statistics (no state change)."""
        pred, ref = check_pair(prediction, reference, index, self.num_classes, self.ignore_index)
        value = float("nan") if score is None else check_score(score, index)
        return self._evaluate_pair(pred, ref, value)

    def update(self, prediction: Any, reference: Any, score: float | None = None) -> None:
        """Add one pair: 2-D integer label maps (numpy, torch, PIL) of equal shape.

        ``score`` is the image-level edited score for AP (default: predicted edited fraction).
        Errors name the pair by its position among all pairs added so far.
        """
        self.add_stats(self.pair_stats(prediction, reference, score, index=len(self)))

    def update_batch(self, predictions: Any, references: Any, scores: Iterable[float] | None = None) -> None:
        """Add a batch: lists or (N, H, W) arrays/tensors; errors name the index within the batch."""
        for item in self.batch_stats(predictions, references, scores):
            self.add_stats(item)

    def batch_stats(self, predictions: Any, references: Any, scores: Iterable[float] | None = None
                    ) -> list[PairStats]:
        """Validate a batch and compute each pair's statistics (no state change)."""
        preds, refs = iter_maps(predictions, "predictions"), iter_maps(references, "references")
        if len(preds) != len(refs):
            raise LabelMapError(f"{len(preds)} predictions but {len(refs)} references")
        score_list = [None] * len(preds) if scores is None else list(scores)
        if len(score_list) != len(preds):
            raise LabelMapError(f"scores has {len(score_list)} entries for {len(preds)} pairs")
        return [self.pair_stats(p, r, s, index=i)
                for i, (p, r, s) in enumerate(zip(preds, refs, score_list))]

    def encode_rows(self, predictions: Any, references: Any, scores: Iterable[float] | None = None
                    ) -> tuple[list[bytes], list[bytes]]:
        """Per-pair statistics as compact (float blob, int blob) rows for an ``evaluate`` cache."""
        rows = [encode_row(s, self.ignore_index, self.boundary_tolerance)
                for s in self.batch_stats(predictions, references, scores)]
        return [r[0] for r in rows], [r[1] for r in rows]

    def add_row(self, floats: bytes, ints: bytes) -> None:
        """Add a row made by :meth:`encode_rows`; its settings must match this metric's."""
        stats, ignore_index, tolerance = decode_row(floats, ints)
        if (ignore_index, tolerance) != (self.ignore_index, self.boundary_tolerance):
            raise ValueError(f"statistics were computed with ignore_index={ignore_index}, boundary_tolerance="
                             f"{tolerance}; this metric uses {self.ignore_index}, {self.boundary_tolerance}")
        self.add_stats(stats)

    def set_scores(self, scores: Iterable[float]) -> None:
        """Replace the image-level scores of all images added so far (in order)."""
        values = [check_score(s, i) for i, s in enumerate(scores)]
        if len(values) != len(self):
            raise LabelMapError(f"scores has {len(values)} entries for {len(self)} pairs")
        self.scores = array("d", values)

    def add_stats(self, stats: PairStats) -> None:
        """Add precomputed per-image statistics (from :meth:`pair_stats` or a stored row)."""
        if stats.confusion.shape != self.confusion.shape:
            raise ValueError(f"statistics for {stats.confusion.shape[0] - 1} classes cannot join a "
                             f"{self.num_classes}-class metric")
        need = TASK_BITS[self.task]
        if stats.tasks & need != need:
            raise ValueError(f"statistics were computed for task bits {stats.tasks}, this metric needs "
                             f"task {self.task!r}")
        self.confusion += stats.confusion
        semantic, binary = stats.fixed_f
        if need & SEMANTIC:
            for i, fixed in semantic:
                self.semantic_f_sum[i] += fixed
                self.semantic_f_count[i] += 1
        if binary is not None and need & BINARY:
            self.binary_f_sum += binary
            self.binary_f_count += 1
        self.predicted_edited.append(stats.predicted_edited)
        self.num_pixels.append(stats.num_pixels)
        self.reference_edited.append(stats.reference_edited)
        self.scores.append(stats.score)

    def merge(self, other: DiffSegMetric) -> DiffSegMetric:
        """Add another metric's images (e.g. from another process); returns self."""
        if not isinstance(other, DiffSegMetric):
            raise TypeError(f"merge() takes another DiffSegMetric, got {type(other).__name__}")
        if (other.num_classes, other.ignore_index, other.boundary_tolerance, other.task) != (
                self.num_classes, self.ignore_index, self.boundary_tolerance, self.task):
            raise ValueError("cannot merge metrics with different num_classes, ignore_index, "
                             "boundary_tolerance or task")
        self.confusion += other.confusion
        self.semantic_f_sum = [a + b for a, b in zip(self.semantic_f_sum, other.semantic_f_sum)]
        self.semantic_f_count = [a + b for a, b in zip(self.semantic_f_count, other.semantic_f_count)]
        self.binary_f_sum += other.binary_f_sum
        self.binary_f_count += other.binary_f_count
        self.predicted_edited.extend(other.predicted_edited)
        self.num_pixels.extend(other.num_pixels)
        self.reference_edited.extend(other.reference_edited)
        self.scores.extend(other.scores)
        return self

    # ----------------------------------------------------------------------------------- results
    @property
    def spec(self) -> dict[str, Any]:
        """The settings a result was computed under (stored with every result)."""
        return {"metric": "diffseg30k", "metric_version": METRIC_VERSION, "task": self.task,
                "num_classes": self.num_classes, "ignore_index": self.ignore_index,
                "area_threshold": self.area_threshold, "boundary_tolerance": self.boundary_tolerance,
                "averaging": AVERAGING}

    def compute(self) -> dict[str, Any]:
        """All metrics of the chosen task as a flat dict (plus per-class dicts, the confusion
        matrix and ``spec``). Undefined values (e.g. mIoU with no edited pixel anywhere) are NaN."""
        if len(self) == 0:
            raise ValueError("no pairs were added: call update() before compute()")
        k = self.num_classes
        valid = self.confusion[:k, :k]
        out: dict[str, Any] = {}
        if self.task in ("semantic", "both"):
            iou = _iou(valid)
            out["semantic_accuracy"] = _accuracy(valid)
            out["semantic_miou"] = _nanmean(iou[1:])
            f = _mean_f(self.semantic_f_sum, self.semantic_f_count)
            out["semantic_bf1"] = _nanmean(f)
        binary = _to_binary_confusion(valid)
        if self.task in ("binary", "both"):
            out["binary_accuracy"] = _accuracy(binary)
            out["binary_miou"] = float(_iou(binary)[1])
            out["binary_bf1"] = float(_mean_f([self.binary_f_sum], [self.binary_f_count])[0])
        out.update(self._image_level())
        if self.task == "binary":
            names = self.binary_id2label
            out["per_class_iou"] = {names[i]: float(v) for i, v in enumerate(_iou(binary))}
            out["per_class_bf1"] = {names[1]: out["binary_bf1"]}
            out["confusion_matrix"] = binary.tolist()
        else:
            out["per_class_iou"] = {self.id2label[i]: float(v) for i, v in enumerate(iou)}
            out["per_class_bf1"] = {self.id2label[i + 1]: float(v) for i, v in enumerate(f)}
            out["confusion_matrix"] = valid.tolist()
        out["num_images"] = len(self)
        out["spec"] = self.spec
        return out

    def _image_level(self) -> dict[str, float]:
        edited = np.frombuffer(self.predicted_edited, np.int64)
        pixels = np.frombuffer(self.num_pixels, np.int64)
        truth = np.frombuffer(self.reference_edited, np.int8).astype(bool)
        scores = np.frombuffer(self.scores, np.float64)
        predicted = edited > self.area_threshold * pixels
        given = ~np.isnan(scores)
        if given.any() and not given.all():
            raise ValueError(f"scores were given for {int(given.sum())} of {given.size} images; "
                             "give a score for every image or for none")
        if not given.any():
            scores = edited / pixels
        return {"image_accuracy": float(np.mean(predicted == truth)),
                "image_ap": average_precision(truth, scores)}


def _accuracy(confusion: np.ndarray) -> float:
    total = confusion.sum()
    return float(np.trace(confusion) / total) if total else float("nan")


def _iou(confusion: np.ndarray) -> np.ndarray:
    inter = np.diag(confusion).astype(float)
    union = confusion.sum(0) + confusion.sum(1) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def _mean_f(fixed_sums: list[int], counts: list[int]) -> np.ndarray:
    return np.array([s / (c * FIXED_POINT) if c else float("nan") for s, c in zip(fixed_sums, counts)])


def _to_binary_confusion(confusion: np.ndarray) -> np.ndarray:
    """Exact 2x2 confusion of the binary task (id > 0 -> edited) from the semantic one."""
    return np.array([[confusion[0, 0], confusion[0, 1:].sum()],
                     [confusion[1:, 0].sum(), confusion[1:, 1:].sum()]], np.int64)
