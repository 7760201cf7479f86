"""Saved predictions: label maps, references, scores and metadata, re-scorable without the model.

A prediction set is a folder written atomically::

    meta.json        task, id2label, checkpoint, distortion, dataset fingerprint, split, count
    index.jsonl      one row per image: id, score, shard, metadata used by breakdowns
    maps-00000.npz   compressed uint8 arrays ``pred/<id>`` and ``ref/<id>`` (reference as scored), and
                     ``prob/<id>`` when the predictor gave edited probabilities: uint8 levels evenly
                     spaced in logit(p) over [-14, 14] (``diffseg30k.metrics.scores.quantise_scores``)

References are stored as scored (semantic ids, cropped when the distortion crops), so
``diffseg30k evaluate --from-predictions DIR`` needs neither the model nor the dataset. The 256
logit-spaced levels keep a detector's tails apart (a 1/255 grid would tie every score below 0.002);
``pixel_auc`` from them differs from the float maps' only through pixels of both classes sharing a
level (``tests/benchmarks/bench_metric.py`` reports the difference), and every other key is unchanged.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from diffseg30k.io import atomic_dir
from diffseg30k.metrics.scores import dequantise_scores, quantise_scores

SHARD_SIZE = 256
FORMAT_VERSION = 1


@dataclass
class PredictionRecord:
    """One scored image: the prediction and reference label maps, an image-level score, metadata and
    (optionally) the per-pixel edited probability (float32, the metric's ``pixel_scores``)."""

    id: str
    prediction: np.ndarray
    reference: np.ndarray
    score: float
    meta: dict[str, Any] = field(default_factory=dict)
    edited_probability: np.ndarray | None = None


class PredictionWriter:
    """Streams records into a prediction set; the folder appears at ``path`` only on :meth:`close`.

    Use as a context manager; an exception inside the block leaves nothing at ``path``.
    """

    def __init__(self, path: str | Path, meta: dict[str, Any], overwrite: bool = True) -> None:
        self.path = Path(path)
        self.meta = meta
        self._context = atomic_dir(self.path, overwrite=overwrite)
        self._tmp = self._context.__enter__()
        self._rows: list[dict[str, Any]] = []
        self._shard: dict[str, np.ndarray] = {}

    def add(self, record: PredictionRecord) -> None:
        shard_name = f"maps-{len(self._rows) // SHARD_SIZE:05d}.npz"
        self._shard[f"pred/{record.id}"] = np.asarray(record.prediction, dtype=np.uint8)
        self._shard[f"ref/{record.id}"] = np.asarray(record.reference, dtype=np.uint8)
        if record.edited_probability is not None:
            self._shard[f"prob/{record.id}"] = quantise_scores(record.edited_probability)
        self._rows.append({"id": record.id, "score": float(record.score), "shard": shard_name,
                           "meta": record.meta})
        if len(self._rows) % SHARD_SIZE == 0:
            self._flush()

    def _flush(self) -> None:
        if self._shard:
            _save_shard(self._tmp / self._rows[-1]["shard"], self._shard)
            self._shard = {}

    def close(self) -> Path:
        self._flush()
        rows = "".join(json.dumps(r, sort_keys=True) + "\n" for r in self._rows)
        (self._tmp / "index.jsonl").write_text(rows)
        (self._tmp / "meta.json").write_text(json.dumps(
            {**self.meta, "count": len(self._rows), "format_version": FORMAT_VERSION}, indent=2))
        self._context.__exit__(None, None, None)
        return self.path

    def abort(self, error: BaseException | None = None) -> None:
        err = error or RuntimeError("aborted")
        with contextlib.suppress(BaseException):
            self._context.__exit__(type(err), err, None)

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort(exc)


def write_predictions(path: str | Path, records: Iterable[PredictionRecord], meta: dict[str, Any],
                      overwrite: bool = True) -> Path:
    """Write ``records`` as a prediction set at ``path`` (atomically); returns ``path``."""
    with PredictionWriter(path, meta, overwrite=overwrite) as writer:
        for record in records:
            writer.add(record)
    return Path(path)


def _save_shard(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    path.write_bytes(buf.getvalue())


def read_meta(path: str | Path) -> dict[str, Any]:
    """The ``meta.json`` of a prediction set, with a clear error when it is not one."""
    path = Path(path)
    meta_file = path / "meta.json"
    if not meta_file.is_file() or not (path / "index.jsonl").is_file():
        raise FileNotFoundError(f"{path}: not a prediction set (expected meta.json and index.jsonl)")
    try:
        return json.loads(meta_file.read_text())
    except ValueError as err:
        raise ValueError(f"{meta_file}: unreadable ({err})") from err


def read_predictions(path: str | Path) -> Iterator[PredictionRecord]:
    """Yield the records of a prediction set in the order they were written."""
    path = Path(path)
    read_meta(path)
    open_shard: tuple[str, Any] | None = None
    for line_no, line in enumerate((path / "index.jsonl").read_text().splitlines(), 1):
        try:
            row = json.loads(line)
            shard_name = row["shard"]
        except (ValueError, KeyError) as err:
            raise ValueError(f"{path / 'index.jsonl'}:{line_no}: bad row ({err})") from err
        if open_shard is None or open_shard[0] != shard_name:
            if open_shard is not None:
                open_shard[1].close()
            if "/" in shard_name or "\\" in shard_name or shard_name.startswith("."):
                raise ValueError(f"{path / 'index.jsonl'}:{line_no}: bad shard name {shard_name!r}")
            open_shard = (shard_name, np.load(path / shard_name, allow_pickle=False))
        arrays = open_shard[1]
        try:
            prediction, reference = arrays[f"pred/{row['id']}"], arrays[f"ref/{row['id']}"]
        except KeyError as err:
            raise ValueError(f"{path / shard_name}: missing maps for image {row['id']!r}") from err
        codes = arrays[f"prob/{row['id']}"] if f"prob/{row['id']}" in arrays.files else None
        yield PredictionRecord(row["id"], prediction, reference, float(row["score"]), row.get("meta", {}),
                               None if codes is None else dequantise_scores(codes))
    if open_shard is not None:
        open_shard[1].close()
