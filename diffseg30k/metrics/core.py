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
from diffseg30k.metrics.ranking import average_precision, decision_scores, roc_auc
from diffseg30k.metrics.scores import BINNING, SCORE_BINS, check_pixel_scores, histogram_auc

METRIC_VERSION = "2.0"
TASK_BITS = {"semantic": SEMANTIC, "binary": BINARY, "both": SEMANTIC | BINARY}
AVERAGING = ("dataset-level confusion for accuracy/mIoU; per-image boundary F averaged per class "
             "then over classes; image-level over images; ignored pixels count nowhere (v2)")
IMDL_KEYS = ("pixel_f1_per_image", "pixel_iou_per_image", "pixel_auc", "pixel_f1_best_per_image",
             "image_auc", "image_f1", "image_balanced_accuracy", "image_mcc")
_EDITED_IMAGES = "averaged over the images whose reference has an edited valid pixel"
_AREA_RULE = "edited <=> predicted edited share of the valid pixels > area_threshold"
#: Which convention each output key follows (``spec["conventions"]``).
CONVENTIONS = {
    "semantic_accuracy": "diffseg30k: dataset-level confusion of valid pixels, background included",
    "binary_accuracy": "diffseg30k: dataset-level confusion of valid pixels, background included",
    "semantic_miou": "diffseg30k: dataset-level confusion, mean IoU over classes >= 1",
    "binary_miou": "diffseg30k: dataset-level confusion, IoU of the edited class",
    "semantic_bf1": "diffseg30k: boundary F per image and class, mean per class, then over classes",
    "binary_bf1": "diffseg30k: boundary F of the edited region per image, mean over images",
    "image_accuracy": f"diffseg30k: over images; {_AREA_RULE}",
    "image_ap": "diffseg30k: over images; image scores (scores=, else predicted edited share)",
    "pixel_f1_per_image": f"imdl: binary F1 of each image at the label map's decision, {_EDITED_IMAGES}",
    "pixel_iou_per_image": f"imdl: binary IoU of each image at the label map's decision, {_EDITED_IMAGES}",
    "pixel_auc": "pooled: ROC AUC of pixel_scores over all valid pixels of all images (fixed bins)",
    "pixel_f1_best_per_image": f"imdl, optimistic: F1 of each image at its own best pixel_scores "
                               f"threshold, {_EDITED_IMAGES}",
    "image_auc": "imdl: ROC AUC over images of the image scores",
    "image_f1": f"imdl: F1 over images, edited = positive; {_AREA_RULE}",
    "image_balanced_accuracy": f"imdl: mean recall of edited and unedited images; {_AREA_RULE}",
    "image_mcc": f"imdl: Matthews correlation over images; {_AREA_RULE}",
}


class DiffSegMetric:
    """Accuracy, mIoU and boundary F1 for the semantic and binary tasks plus image-level accuracy/AP,
    and (``imdl=True`` or whenever ``pixel_scores`` are given) the IMDL-convention keys.

    Feed pairs with :meth:`update` / :meth:`update_batch`, combine shards with :meth:`merge`, read
    with :meth:`compute`. State is additive and O(1) in image size and in the number of images,
    apart from the few numbers per image kept for the image-level ranking metrics; pixel scores
    add one fixed-size histogram (about 1 MiB).
    """

    def __init__(self, num_classes: int | None = None, ignore_index: int = 255, task: str = "both",
                 area_threshold: float = 0.01, boundary_tolerance: float = 0.0075,
                 id2label: dict[int, str] | None = None, imdl: bool = False) -> None:
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
        self.imdl = bool(imdl)
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
        self.region_sums = [0, 0, 0]  # fixed-point per-image F1, IoU, best F1 of images with edits
        self.region_count = 0
        self.best_count = 0
        self.score_counts: np.ndarray | None = None  # (SCORE_BINS, 2) background / edited pixels
        self.pixel_scored = 0
        self.predicted_edited = array("q")
        self.valid_pixels = array("q")
        self.reference_edited = array("b")
        self.scores = array("d")

    def __len__(self) -> int:
        return len(self.reference_edited)

    def pair_stats(self, prediction: Any, reference: Any, score: Any = None, index: int = 0,
                   pixel_scores: Any = None) -> PairStats:
        """Validate one pair (and its optional score map) and compute its additive statistics."""
        pred, ref = check_pair(prediction, reference, index, self.num_classes, self.ignore_index)
        value = float("nan") if score is None else check_score(score, index)
        scores = None if pixel_scores is None else check_pixel_scores(pixel_scores, ref.shape, index)
        return self._evaluate_pair(pred, ref, value, scores)

    def update(self, prediction: Any, reference: Any, score: float | None = None,
               pixel_scores: Any = None) -> None:
        """Add one pair: 2-D integer label maps (numpy, torch, PIL) of equal shape.

        ``score`` is the image-level edited score for AP (default: predicted edited fraction);
        ``pixel_scores`` a float map in [0, 1] of the same shape (per-pixel edited scores).
        Errors name the pair by its position among all pairs added so far.
        """
        self.add_stats(self.pair_stats(prediction, reference, score, index=len(self),
                                       pixel_scores=pixel_scores))

    def update_batch(self, predictions: Any, references: Any, scores: Iterable[float] | None = None,
                     pixel_scores: Any = None) -> None:
        """Add a batch: lists or (N, H, W) arrays/tensors; errors name the index within the batch."""
        for item in self.batch_stats(predictions, references, scores, pixel_scores):
            self.add_stats(item)

    def batch_stats(self, predictions: Any, references: Any, scores: Iterable[float] | None = None,
                    pixel_scores: Any = None) -> list[PairStats]:
        """Validate a batch and compute each pair's statistics (no state change)."""
        preds, refs = iter_maps(predictions, "predictions"), iter_maps(references, "references")
        if len(preds) != len(refs):
            raise LabelMapError(f"{len(preds)} predictions but {len(refs)} references")
        score_list = [None] * len(preds) if scores is None else list(scores)
        if len(score_list) != len(preds):
            raise LabelMapError(f"scores has {len(score_list)} entries for {len(preds)} pairs")
        maps = [None] * len(preds) if pixel_scores is None else _split_maps(pixel_scores)
        if len(maps) != len(preds):
            raise LabelMapError(f"pixel_scores has {len(maps)} maps for {len(preds)} pairs")
        return [self.pair_stats(p, r, s, index=i, pixel_scores=m)
                for i, (p, r, s, m) in enumerate(zip(preds, refs, score_list, maps))]

    def encode_rows(self, predictions: Any, references: Any, scores: Iterable[float] | None = None,
                    pixel_scores: Any = None) -> tuple[list[bytes], list[bytes]]:
        """Per-pair statistics as compact (float blob, int blob) rows for an ``evaluate`` cache."""
        rows = [encode_row(s, self.ignore_index, self.boundary_tolerance)
                for s in self.batch_stats(predictions, references, scores, pixel_scores)]
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
        region = stats.fixed_region
        if region is not None:
            self.region_sums[0] += region[0]
            self.region_sums[1] += region[1]
            self.region_count += 1
            if region[2] >= 0:
                self.region_sums[2] += region[2]
                self.best_count += 1
        if stats.score_histogram is not None:
            codes, negative, positive = stats.score_histogram
            if self.score_counts is None:
                self.score_counts = np.zeros((SCORE_BINS, 2), np.int64)
            self.score_counts[codes, 0] += negative  # codes are unique within one image
            self.score_counts[codes, 1] += positive
            self.pixel_scored += 1
        self.predicted_edited.append(stats.predicted_edited)
        self.valid_pixels.append(stats.valid_pixels)
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
        self.region_sums = [a + b for a, b in zip(self.region_sums, other.region_sums)]
        self.region_count += other.region_count
        self.best_count += other.best_count
        if other.score_counts is not None:
            self.score_counts = other.score_counts.copy() if self.score_counts is None else \
                self.score_counts + other.score_counts
        self.pixel_scored += other.pixel_scored
        self.imdl = self.imdl or other.imdl
        self.predicted_edited.extend(other.predicted_edited)
        self.valid_pixels.extend(other.valid_pixels)
        self.reference_edited.extend(other.reference_edited)
        self.scores.extend(other.scores)
        return self

    # ----------------------------------------------------------------------------------- results
    @property
    def reports_imdl(self) -> bool:
        """Whether :meth:`compute` adds the IMDL-convention keys (asked for, or pixel scores given)."""
        return self.imdl or self.pixel_scored > 0

    @property
    def spec(self) -> dict[str, Any]:
        """The settings a result was computed under (stored with every result), and the convention
        each output key follows."""
        tasks = ("semantic", "binary") if self.task == "both" else (self.task,)
        keys = [k for k in CONVENTIONS if k.split("_")[0] in (*tasks, "image") and k not in IMDL_KEYS]
        keys += list(IMDL_KEYS) if self.reports_imdl else []
        spec = {"metric": "diffseg30k", "metric_version": METRIC_VERSION, "task": self.task,
                "num_classes": self.num_classes, "ignore_index": self.ignore_index,
                "area_threshold": self.area_threshold, "boundary_tolerance": self.boundary_tolerance,
                "averaging": AVERAGING, "conventions": {k: CONVENTIONS[k] for k in keys}}
        if self.reports_imdl:
            spec["pixel_score_bins"] = BINNING
        return spec

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
        truth, scores, predicted = self._image_arrays()
        out["image_accuracy"] = float(np.mean(predicted == truth))
        out["image_ap"] = average_precision(truth, scores)
        if self.reports_imdl:
            out.update(self._imdl_keys(truth, scores, predicted))
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

    def _image_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(truth, image scores, area-rule decisions) of every image, in order."""
        edited = np.frombuffer(self.predicted_edited, np.int64)
        pixels = np.frombuffer(self.valid_pixels, np.int64)
        truth = np.frombuffer(self.reference_edited, np.int8).astype(bool)
        scores = np.frombuffer(self.scores, np.float64)
        predicted = edited > self.area_threshold * pixels
        given = ~np.isnan(scores)
        if given.any() and not given.all():
            raise ValueError(f"scores were given for {int(given.sum())} of {given.size} images; "
                             "give a score for every image or for none")
        if not given.any():
            scores = edited / np.maximum(pixels, 1)  # an image with no valid pixel scores 0
        return truth, scores, predicted

    def _imdl_keys(self, truth: np.ndarray, scores: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
        if 0 < self.pixel_scored < len(self):
            raise ValueError(f"pixel_scores were given for {self.pixel_scored} of {len(self)} images; "
                             "give a score map for every image or for none")
        f1, iou, best = (s / (self.region_count * FIXED_POINT) if self.region_count else float("nan")
                         for s in self.region_sums)
        if self.best_count < self.region_count:  # no pixel scores
            best = float("nan")
        auc = float("nan")
        if self.score_counts is not None:
            auc = histogram_auc(self.score_counts[:, 0], self.score_counts[:, 1])
        decisions = decision_scores(truth, predicted)
        return {"pixel_f1_per_image": f1, "pixel_iou_per_image": iou, "pixel_auc": auc,
                "pixel_f1_best_per_image": best, "image_auc": roc_auc(truth, scores),
                "image_f1": decisions["f1"], "image_balanced_accuracy": decisions["balanced_accuracy"],
                "image_mcc": decisions["mcc"]}


def _split_maps(maps: Any) -> list[Any]:
    """A batch of score maps: a list, or an (N, H, W) array/tensor."""
    if isinstance(maps, np.ndarray) or type(maps).__module__.startswith("torch"):
        if maps.ndim != 3:
            raise LabelMapError(f"pixel_scores: a batch array must be (N, H, W), got {tuple(maps.shape)}")
        return [maps[i] for i in range(maps.shape[0])]
    return list(maps)


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
