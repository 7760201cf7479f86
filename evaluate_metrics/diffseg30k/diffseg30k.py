"""DiffSeg30k metric for the `evaluate` library: a thin shell over ``diffseg30k.metrics``.

Each (prediction, reference) pair, with its optional per-pixel score map, is reduced to a compact
statistics row inside ``add``/``add_batch`` (under 1 kB plus a sparse score histogram instead of two
label maps and a score map), and those rows are what evaluate's Arrow cache stores;
``num_process``/``process_id`` distribution therefore works unchanged and ``_compute`` only
adds rows up. All maths lives in ``diffseg30k.metrics``.
"""

from typing import Any

import datasets
import evaluate

from diffseg30k.metrics import DiffSegMetric

_CITATION = """\
@article{diffseg30k,
  title  = {DiffSeg30k: a multi-turn diffusion editing benchmark for localized AIGC detection},
  author = {DiffSeg30k authors},
  year   = {2025}
}
"""

_DESCRIPTION = """\
Metrics of the DiffSeg30k benchmark (localized AI-edit detection as semantic segmentation): pixel
accuracy, mIoU (background excluded) and boundary F1 for the semantic (9-class) and binary
(edited / not edited) tasks from dataset-level confusion, plus image-level accuracy and average
precision (an image counts as edited when its predicted non-background area exceeds 1 % of its valid
pixels). Metric v2: pixels whose reference is ignored count nowhere. Opt-in IMDL-convention keys
(per-image pixel F1/IoU over edited images, pooled pixel AUC and best-threshold F1 from per-pixel
scores, image AUC/F1/balanced accuracy/MCC) sit beside them.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted label maps - 2-D integer numpy arrays, torch tensors, PIL 'L'/'P' images
        or nested lists; a list of them or an (N, H, W) array/tensor.
    references: reference label maps of the same shapes (ignore_index pixels are ignored).
    scores: optional image-level "edited" scores for AP, one per pair (default: predicted edited
        fraction of the valid pixels).
    pixel_scores: optional per-pixel "edited" scores, one float map in [0, 1] per pair of the
        reference's shape (e.g. 1 - P(background)); they turn on the IMDL-convention keys.
    imdl: also report the IMDL-convention keys without pixel scores (pixel_auc is then NaN).
    task: "both" (default), "semantic" or "binary".
    area_threshold: predicted edited share above which an image counts as edited (0.01).
    ignore_index, num_classes, id2label, boundary_tolerance: set these at `evaluate.load(...)` when
        streaming with `add_batch`; at `compute` they apply to the pairs passed there.
Returns:
    semantic_accuracy, semantic_miou, semantic_bf1, binary_accuracy, binary_miou, binary_bf1,
    image_accuracy, image_ap, per_class_iou, per_class_bf1, confusion_matrix (rows reference),
    num_images, spec; with imdl=True or pixel_scores also pixel_f1_per_image, pixel_iou_per_image,
    pixel_auc, pixel_f1_best_per_image, image_auc, image_f1, image_balanced_accuracy, image_mcc.
Examples:
    >>> import numpy as np, evaluate
    >>> metric = evaluate.load("evaluate_metrics/diffseg30k")
    >>> ref = np.zeros((64, 64), np.uint8); ref[8:40, 8:40] = 3
    >>> round(metric.compute(predictions=[ref], references=[ref])["semantic_miou"], 3)
    1.0
"""

_LABEL_MAP = datasets.Sequence(datasets.Sequence(datasets.Value("int64")))
# What callers pass (shown by evaluate and the widget) ...
_INPUT_FEATURES = datasets.Features({"predictions": _LABEL_MAP, "references": _LABEL_MAP})
# ... and what the cache stores: per-pair statistics rows from DiffSegMetric.encode_rows.
_ROW_FEATURES = datasets.Features({"predictions": datasets.Value("binary"),
                                   "references": datasets.Value("binary")})
_STATS_OPTIONS = ("num_classes", "ignore_index", "boundary_tolerance", "id2label")
_COMPUTE_OPTIONS = ("task", "area_threshold", "imdl")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Diffseg30k(evaluate.Metric):
    """evaluate module of the DiffSeg30k benchmark metric (module name "diffseg30k")."""

    def __init__(self, task: str = "both", num_classes: int | None = None, ignore_index: int = 255,
                 area_threshold: float = 0.01, boundary_tolerance: float = 0.0075,
                 id2label: dict | None = None, imdl: bool = False, **kwargs: Any) -> None:
        self._options = {"task": task, "num_classes": num_classes, "ignore_index": ignore_index,
                         "area_threshold": area_threshold, "boundary_tolerance": boundary_tolerance,
                         "id2label": id2label, "imdl": imdl}
        self._encoder = DiffSegMetric(**self._options)
        super().__init__(**kwargs)

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation=_CITATION, inputs_description=_KWARGS_DESCRIPTION,
            features=_INPUT_FEATURES,
            reference_urls=["https://huggingface.co/datasets/Chaos2629/Diffseg30k"])

    def _infer_feature_from_batch(self, batch: dict) -> datasets.Features:
        return _ROW_FEATURES

    def _infer_feature_from_example(self, example: dict) -> datasets.Features:
        return _ROW_FEATURES

    def add_batch(self, *, predictions=None, references=None, scores=None, pixel_scores=None, **kwargs):
        """Add a batch of label-map pairs (lists, or (N, H, W) arrays/tensors), optional image scores
        and optional per-pixel score maps.

        Only per-pair statistics rows are cached, never the maps.
        """
        self._add_pairs(self._encoder, predictions, references, scores, pixel_scores, **kwargs)

    def add(self, *, prediction=None, reference=None, score=None, pixel_scores=None, **kwargs):
        """Add one label-map pair (and an optional image-level score and per-pixel score map)."""
        scores = None if score is None else [score]
        maps = None if pixel_scores is None else [pixel_scores]
        self._add_pairs(self._encoder, [prediction], [reference], scores, maps, **kwargs)

    def _add_pairs(self, encoder: DiffSegMetric, predictions, references, scores, pixel_scores=None,
                   **kwargs) -> None:
        if kwargs:
            raise ValueError(f"unexpected inputs {sorted(kwargs)}; pass predictions, references, scores, "
                             "pixel_scores")
        floats, ints = encoder.encode_rows(predictions, references, scores, pixel_scores)
        super().add_batch(predictions=floats, references=ints)

    def compute(self, *, predictions=None, references=None, scores=None, pixel_scores=None, **options):
        """Compute the metric over all added pairs plus the ``predictions``/``references`` (and
        ``pixel_scores``) given here.

        ``task``, ``area_threshold`` and ``imdl`` may change at compute time; ``scores`` without
        predictions replaces the image-level scores of every pair added so far.
        """
        unknown = set(options) - set(_STATS_OPTIONS) - set(_COMPUTE_OPTIONS)
        if unknown:
            raise ValueError(f"unknown options {sorted(unknown)}")
        merged = {**self._options, **options}
        if predictions is not None or references is not None:
            encoder = self._encoder if merged == self._options else DiffSegMetric(**merged)
            self._add_pairs(encoder, predictions, references, scores, pixel_scores)
            scores = None
        elif pixel_scores is not None:
            raise ValueError("pixel_scores at compute() need their predictions and references")
        return super().compute(scores=scores, **merged)

    def _compute(self, predictions=None, references=None, scores=None, **options) -> dict[str, Any]:
        metric = DiffSegMetric(**options)
        for floats, ints in zip(predictions, references):
            metric.add_row(floats, ints)
        if scores is not None:
            metric.set_scores(scores)
        return metric.compute()
