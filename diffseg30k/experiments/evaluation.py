"""Run a detector over a dataset split under distortions, save its predictions, score them.

Scores are taken at each image's original resolution: a distortion that resizes the image (e.g.
``resize256``) has its prediction resized back to the reference's size with nearest-neighbour
interpolation (an edited-probability map bilinearly). The predictor is any callable from a list of
PIL images to a list of ``(label_map, score)`` or ``(label_map, score, edited_probability)`` tuples;
:func:`detector_predictor` adapts a :class:`diffseg30k.Detector` (edited probability = 1 - P(background),
the metric's ``pixel_scores``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from diffseg30k.data.distortions import Distortion, parse_distortions
from diffseg30k.experiments.predictions import PredictionRecord, PredictionWriter, read_meta, read_predictions
from diffseg30k.experiments.scoring import score_records

Predictor = Callable[[list[Image.Image]], list[tuple]]


def detector_predictor(detector: Any, batch_size: int = 8) -> Predictor:
    """Adapt a ``Detector``: label map at input size, edited fraction as the image score, edited
    probability 1 - P(background) as the per-pixel score."""
    if hasattr(detector, "batch_size"):
        detector.batch_size = batch_size

    def predict(images: list[Image.Image]) -> list[tuple[np.ndarray, float, np.ndarray]]:
        out: list[tuple[np.ndarray, float, np.ndarray]] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            if hasattr(detector, "predict_edited"):  # fast path: only the edited probability kept
                maps, scores, edited = detector.predict_edited(chunk)
                out.extend((np.asarray(m, np.uint8), float(s), e) for m, s, e in zip(maps, scores, edited))
            else:
                out.extend((np.asarray(r.label_map, np.uint8), float(r.edited_fraction), r.edited_probability)
                           for r in detector(chunk, return_probabilities=True))
        return out

    return predict


def row_meta(row: dict[str, Any], reference: np.ndarray) -> dict[str, Any]:
    """The metadata breakdowns use, from a ``load_benchmark`` row (absent fields stay absent)."""
    meta: dict[str, Any] = {}
    turns = row.get("turns")
    if turns is not None:
        meta["turns"] = len(turns)
        meta["edit_types"] = sorted({t.get("edit_type") for t in turns if t.get("edit_type")})
    if row.get("base"):
        meta["base"] = row["base"]
    fraction = row.get("edited_fraction")
    valid = reference != 255
    meta["edited_fraction"] = float(fraction) if fraction is not None else (
        float(((reference > 0) & valid).sum() / max(1, valid.sum())))
    if row.get("models") is not None:
        meta["generators"] = list(row["models"])
    return meta


def resize_prediction(label_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map to ``shape`` (height, width)."""
    label_map = np.asarray(label_map, np.uint8)
    if label_map.shape == tuple(shape):
        return label_map
    return np.asarray(Image.fromarray(label_map, "L").resize((shape[1], shape[0]), Image.NEAREST))


def resize_scores(scores: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a [0, 1] score map to ``shape`` (height, width)."""
    scores = np.asarray(scores, np.float32)
    if scores.shape == tuple(shape):
        return scores
    resized = np.asarray(Image.fromarray(scores, "F").resize((shape[1], shape[0]), Image.BILINEAR))
    return np.clip(resized, 0.0, 1.0)


def predict_dataset(predictor: Predictor, rows: Iterable[dict[str, Any]], distortions: Sequence[Distortion],
                    out_dir: str | Path, meta: dict[str, Any], batch_size: int = 8, limit: int | None = None,
                    total: int | None = None, desc: str = "predicting") -> dict[str, Path]:
    """Predict every row under every distortion; one prediction set per distortion in ``out_dir``.

    Rows are dicts with ``id``, ``image`` (PIL) and ``mask`` (PIL "L" semantic label map). Returns
    ``{distortion name: prediction set folder}``.
    """
    out_dir = Path(out_dir)
    writers = {d.name: PredictionWriter(out_dir / d.name, {**meta, "distortion": d.name,
                                                            "distortion_description": d.description})
               for d in distortions}
    pending: list[tuple[dict[str, Any], np.ndarray]] = []

    def flush() -> None:
        for distortion in distortions:
            pairs = [distortion.apply(row["image"].convert("RGB"), ref) for row, ref in pending]
            outputs = predictor([image for image, _ in pairs])
            if len(outputs) != len(pairs):
                raise RuntimeError(f"predictor returned {len(outputs)} results for {len(pairs)} images")
            for (row, full_ref), (_, ref), output in zip(pending, pairs, outputs):
                label_map, score, edited = (*output, None)[:3]
                writers[distortion.name].add(PredictionRecord(
                    str(row["id"]), resize_prediction(label_map, ref.shape), ref, score,
                    row_meta(row, full_ref), None if edited is None else resize_scores(edited, ref.shape)))
        pending.clear()

    try:
        count = total if limit is None else min(limit, total or limit)
        for n, row in enumerate(tqdm(rows, desc=desc, total=count, leave=False)):
            if limit is not None and n >= limit:
                break
            reference = np.asarray(row["mask"], np.uint8)
            if reference.shape != (row["image"].height, row["image"].width):
                raise ValueError(f"image {row['id']!r}: mask {reference.shape} and image "
                                 f"{row['image'].size[::-1]} differ in size")
            pending.append((row, reference))
            if len(pending) >= batch_size:
                flush()
        if pending:
            flush()
    except BaseException as err:
        for writer in writers.values():
            writer.abort(err)
        raise
    return {name: writer.close() for name, writer in writers.items()}


def score_prediction_set(path: str | Path, by: Iterable[str] = (), bootstrap: int = 0, seed: int = 0,
                         task: str | None = None, ids: Iterable[str] | None = None) -> dict[str, Any]:
    """Score a saved prediction set (no model needed); the task defaults to the one it was made with.

    ``ids`` restricts scoring to those images (a subset of the saved ones).
    """
    meta = read_meta(path)
    task = task or meta.get("task", "semantic")
    id2label = {int(k): v for k, v in (meta.get("id2label") or {}).items()} or None
    records = read_predictions(path)
    if ids is not None:
        wanted = set(map(str, ids))
        records = (r for r in records if r.id in wanted)
    result = score_records(records, task, by=by, id2label=id2label if task == "semantic"
                           else None, bootstrap=bootstrap, seed=seed, desc=f"scoring {Path(path).name}")
    return {"distortion": meta.get("distortion", "none"), "task": task, **result}


def evaluate_predictor(predictor: Predictor, rows: Iterable[dict[str, Any]], out_dir: str | Path,
                       task: str, distortions: str | Sequence[str] | None = None, by: Iterable[str] = (),
                       bootstrap: int = 0, seed: int = 0, meta: dict[str, Any] | None = None,
                       batch_size: int = 8, limit: int | None = None, total: int | None = None,
                       desc: str = "predicting") -> dict[str, Any]:
    """Predict, save and score; returns ``{distortion: scores}`` (saved under ``out_dir/<name>``)."""
    chosen = parse_distortions(distortions)
    sets = predict_dataset(predictor, rows, chosen, out_dir, {"task": task, **(meta or {})},
                           batch_size=batch_size, limit=limit, total=total, desc=desc)
    return {name: score_prediction_set(path, by=by, bootstrap=bootstrap, seed=seed)
            for name, path in sets.items()}


def rescore(predictions_dir: str | Path, by: Iterable[str] = (), bootstrap: int = 0, seed: int = 0
            ) -> dict[str, Any]:
    """Score every prediction set below ``predictions_dir`` (a set itself, or a folder of sets)."""
    root = Path(predictions_dir)
    sets = [root] if (root / "meta.json").is_file() else sorted(
        p for p in root.iterdir() if (p / "meta.json").is_file())
    if not sets:
        raise FileNotFoundError(f"{root}: holds no prediction sets (folders with meta.json)")
    return {read_meta(p).get("distortion", p.name): score_prediction_set(p, by, bootstrap, seed)
            for p in sets}
