"""Scoring of prediction records: headline metrics, breakdowns and bootstrap confidence intervals.

All metric maths is :class:`diffseg30k.metrics.DiffSegMetric`'s. This module only decides which images
are scored together: each image's additive statistics are computed once (``pair_stats``), and a
subset's result adds its images' statistics to a fresh metric (``add_stats``), so breakdowns and
bootstrap resamples (images drawn with replacement) reuse one pass of the costly per-image work.
The headline result also gets the IMDL-convention keys (``pixel_scores`` = the records' edited
probabilities, when saved); breakdowns and resamples keep statistics without the score histograms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from diffseg30k.experiments.predictions import PredictionRecord
from diffseg30k.labels import ID2LABEL, to_binary

#: Headline keys that get bootstrap intervals, per model task.
HEADLINE = {
    "semantic": ("semantic_accuracy", "semantic_miou", "semantic_bf1", "binary_accuracy", "binary_miou",
                 "binary_bf1", "image_accuracy", "image_ap"),
    "binary": ("binary_accuracy", "binary_miou", "binary_bf1", "image_accuracy", "image_ap"),
}
BREAKDOWNS = ("turns", "edit_type", "base", "area", "generator")
#: Upper edges of the mask-area bins (fraction of the image), for the ``area`` breakdown.
AREA_BINS = ((0.0, "0 (unedited)"), (0.01, "<=1%"), (0.05, "1-5%"), (0.15, "5-15%"), (0.30, "15-30%"),
             (1.01, ">30%"))


def _metric_class() -> type:
    try:
        from diffseg30k.metrics import DiffSegMetric
    except ImportError as err:  # the metric module lands with the metric issue
        raise RuntimeError("diffseg30k.metrics.DiffSegMetric is not available: the experiments need "
                           f"the project metric ({err})") from err
    return DiffSegMetric


def metric_factory(task: str, id2label: dict[int, str] | None = None, area_threshold: float = 0.01
                   ) -> Callable[[], Any]:
    """A zero-argument constructor of the metric for a model trained on ``task``."""
    metric_cls = _metric_class()
    id2label = dict(id2label or ID2LABEL)
    if task == "semantic":
        return lambda: metric_cls(num_classes=max(id2label) + 1, task="both", id2label=id2label,
                                  area_threshold=area_threshold, imdl=True)
    if task == "binary":
        return lambda: metric_cls(num_classes=2, task="binary", area_threshold=area_threshold, imdl=True)
    raise ValueError(f"unknown task {task!r}; expected 'semantic' or 'binary'")


def area_bin(fraction: float) -> str:
    """The label of the mask-area bin holding ``fraction`` (edited share of the image)."""
    for edge, label in AREA_BINS:
        if fraction <= edge:
            return label
    return AREA_BINS[-1][1]


def groups_of(meta: dict[str, Any], by: str) -> list[str]:
    """The breakdown groups an image belongs to (edit types and generators may be several)."""
    if by == "turns":
        return [str(meta["turns"])] if meta.get("turns") is not None else []
    if by == "edit_type":
        return sorted(set(meta.get("edit_types") or []))
    if by == "base":
        return [str(meta["base"])] if meta.get("base") else []
    if by == "area":
        return [area_bin(float(meta["edited_fraction"]))] if meta.get("edited_fraction") is not None else []
    if by == "generator":
        return sorted(set(meta.get("generators") or []))
    raise ValueError(f"unknown breakdown {by!r}; expected one of {BREAKDOWNS}")


def clean(value: Any) -> Any:
    """JSON-friendly copy of a metric result (numpy scalars/arrays to Python, NaN to None)."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _merged(factory: Callable[[], Any], states: list[Any], indices: Iterable[int]) -> Any:
    total = factory()
    for i in indices:
        total.add_stats(states[i])
    return total


def score_records(records: Iterable[PredictionRecord], task: str, by: Iterable[str] = (),
                  id2label: dict[int, str] | None = None, bootstrap: int = 0, seed: int = 0,
                  confidence: float = 0.95, area_threshold: float = 0.01, progress: bool = True,
                  desc: str = "scoring") -> dict[str, Any]:
    """Score prediction records of a model trained on ``task``.

    Returns ``{"metrics": ..., "count": N, "ci": {key: [lo, hi]}, "breakdowns": {by: {group:
    {"count", "metrics"}}}}``; breakdowns with no metadata are left out.
    """
    factory = metric_factory(task, id2label, area_threshold)
    evaluator, total = factory(), factory()
    states, metas, without_scores = [], [], []
    for record in tqdm(records, desc=desc, disable=not progress, leave=False, delay=2.0):
        reference = record.reference if task == "semantic" else to_binary(record.reference)
        prediction = np.asarray(record.prediction)
        if prediction.shape != reference.shape:
            raise ValueError(f"image {record.id!r}: prediction {prediction.shape} and reference "
                             f"{reference.shape} differ in shape")
        try:
            stats = evaluator.pair_stats(prediction, reference, record.score,
                                         pixel_scores=record.edited_probability)
        except ValueError as err:
            raise ValueError(f"image {record.id!r}: {err}") from err
        total.add_stats(stats)
        states.append(replace(stats, score_histogram=None))  # constant memory per kept image
        metas.append(record.meta)
        if record.edited_probability is None:
            without_scores.append(record.id)
    if not states:
        raise ValueError("no predictions to score")
    if 0 < len(without_scores) < len(states):
        given = len(states) - len(without_scores)
        raise ValueError(f"edited probabilities (pixel scores) exist for {given} of {len(states)} images, "
                         f"not e.g. for {without_scores[0]!r}: give them for all or none")
    result: dict[str, Any] = {"count": len(states), "metrics": clean(total.compute())}
    if bootstrap > 0:
        result["ci"] = bootstrap_intervals(factory, states, HEADLINE[task], bootstrap, seed, confidence)
        result["ci_spec"] = {"method": "percentile bootstrap over images", "resamples": bootstrap,
                             "confidence": confidence, "seed": seed}
    breakdowns: dict[str, Any] = {}
    for name in by:
        members: dict[str, list[int]] = {}
        for i, meta in enumerate(metas):
            for group in groups_of(meta, name):
                members.setdefault(group, []).append(i)
        if members:
            breakdowns[name] = {group: {"count": len(idx),
                                        "metrics": _headline(_merged(factory, states, idx).compute(), task)}
                                for group, idx in sorted(members.items())}
    if breakdowns:
        result["breakdowns"] = breakdowns
    return result


def _headline(metrics: dict[str, Any], task: str) -> dict[str, Any]:
    return {k: clean(metrics.get(k)) for k in HEADLINE[task]}


def bootstrap_intervals(factory: Callable[[], Any], states: list[Any], keys: Iterable[str],
                        resamples: int, seed: int = 0, confidence: float = 0.95
                        ) -> dict[str, list[float | None]]:
    """Percentile bootstrap intervals of ``keys``, resampling images with replacement."""
    rng = np.random.default_rng(seed)
    keys = tuple(keys)
    draws: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(resamples):
        computed = _merged(factory, states, rng.integers(0, len(states), len(states))).compute()
        for key in keys:
            value = computed.get(key)
            if value is not None and np.isfinite(value):
                draws[key].append(float(value))
    tail = (1 - confidence) / 2 * 100
    return {k: ([float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))] if v else [None, None])
            for k, v in draws.items()}
