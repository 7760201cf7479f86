"""Streaming conversion of DiffSeg30k sources into a ``datasets``-ready repository folder.

Output (built in a temporary sibling folder, moved into place only when complete)::

    OUT/README.md                                  dataset card: YAML configs + dataset_info, labels
    OUT/id2label.json                              label mapping
    OUT/conversion.json                            sources, counts and every skipped file with its reason
    OUT/data/<split>-XXXXX-of-YYYYY.parquet        image bytes embedded, masks as L PNG label maps

Memory is bounded by one row group (rows are written in batches through ``pyarrow.parquet.ParquetWriter``);
image PNG/JPEG bytes are copied as they are unless the image is not RGB. Shards are first written to a
hidden work folder beside OUT with a progress record, so an interrupted conversion resumes.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffseg30k.data import decode
from diffseg30k.data.decode import VERIFY_MODES, DecodedPair, MaskDecoder
from diffseg30k.data.release import (
    METADATA_COLUMNS,
    SPLITS,
    TURN_FIELDS,
    PairEntry,
    ReleaseError,
    scan_extra_real,
    scan_sources,
    source_fingerprint,
)
from diffseg30k.io import atomic_dir, atomic_write_text
from diffseg30k.labels import LabelSet
from diffseg30k.outputs import (
    DISK_ERRNOS,
    OUTPUT_ERRNOS,
    OutputError,
    check_output_dir,
    output_error,
    output_lock,
)

WRITTEN_BY = "diffseg30k convert"  # in conversion.json: the marker --overwrite looks for
VERSION = 1  # of the output format: part of the resume key and of load_benchmark's cache key
ON_ERROR = ("raise", "skip")
DEFAULT_SHARD_BYTES = 500 * 1024**2
ROWS_PER_GROUP = 32
ROW_GROUP_BYTES = 64 * 1024**2
VALIDATION_EVERY = 5  # the 8:2 fallback: every 5th id (in sorted order) goes to validation


def features(with_metadata: bool) -> Any:
    """The ``datasets.Features`` of a converted folder."""
    from datasets import Features, Image, List, Value

    columns: dict[str, Any] = {
        "id": Value("string"), "image": Image(), "mask": Image(),
        "models": List(Value("string")), "edited_fraction": Value("float32"),
    }
    if with_metadata:
        turn_types = {"generator": Value("string"), "edit_type": Value("string"), "prompt": Value("string"),
                      "mask_area": Value("float32"), "seed": Value("int64"), "quality": Value("float32")}
        assert tuple(turn_types) == TURN_FIELDS
        columns.update(base=Value("string"), base_source=Value("string"), turns=List(turn_types),
                       metadata=Value("string"))
    return Features(columns)


def parse_size(size: int | str) -> int:
    """Bytes from an int or a string such as ``500MB``, ``1GB``, ``64KiB``."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*", str(size), re.IGNORECASE)
    if not match:
        raise ValueError(f"cannot read size {size!r} (examples: 500MB, 1GB, 1048576)")
    scale = 1024 ** " kmgt".index(match[2].lower() or " ")
    return int(float(match[1]) * scale)


@dataclass
class ConversionSummary:
    """What a conversion wrote and what it skipped (file, reason)."""

    out: Path
    splits: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    shards: int = 0

    def to_text(self) -> str:
        total = sum(self.splits.values())
        lines = [f"wrote {total} pairs to {self.out} in {self.seconds:.1f}s ({self.shards} shards): "
                 + ", ".join(f"{k} {v}" for k, v in self.splits.items())]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} files:")
            lines += [f"  {file}: {reason}" for file, reason in self.skipped]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "splits": self.splits, "shards": self.shards,
                "skipped": [{"file": f, "reason": r} for f, r in self.skipped], "seconds": self.seconds}


def _relative_to_sources(file: str, sources: list) -> str:
    """``file`` with its source's parent folder removed (``train.zip:train_copy/x.png``)."""
    for source in sources:
        parent = str(Path(source).resolve().parent) + os.sep
        for prefix in (parent, str(Path(source).parent) + os.sep):
            if prefix != os.sep and file.startswith(prefix):
                return file[len(prefix):]
    return file


def _skipped_text(skipped: list[tuple[str, str]], limit: int = 20) -> str:
    """``; skipped N files:`` and one indented line per file (the first ``limit``)."""
    if not skipped:
        return ""
    lines = [f"  {file}: {reason}" for file, reason in skipped[:limit]]
    more = [f"  ... and {len(skipped) - limit} more"] if len(skipped) > limit else []
    return f"; skipped {len(skipped)} files:\n" + "\n".join(lines + more)


def assign_splits(entries: list[PairEntry]) -> None:
    """Deterministic 8:2 train/validation split by id for entries whose source names no split."""
    unnamed = sorted({e.id for e in entries if e.split is None})
    validation = {sample_id for rank, sample_id in enumerate(unnamed) if rank % VALIDATION_EVERY == 4}
    for entry in entries:
        if entry.split is None:
            entry.split = "validation" if entry.id in validation else "train"


def _drop_duplicates(entries: list[PairEntry]) -> tuple[list[PairEntry], list[ReleaseError]]:
    seen: dict[tuple[str | None, str], PairEntry] = {}
    kept, problems = [], []
    for entry in entries:
        first = seen.setdefault((entry.split, entry.id), entry)
        if first is entry:
            kept.append(entry)
        else:
            problems.append(ReleaseError(entry.image_name, f"duplicate id {entry.id!r} in split "
                                         f"{entry.split} (first seen at {first.image_name})"))
    return kept, problems


def _handle(problems: list[ReleaseError], on_error: str, skipped: list[tuple[str, str]]) -> None:
    if problems and on_error == "raise":
        first = problems[0]
        more = f" (and {len(problems) - 1} more problems; --on-error skip lists them all)" \
            if len(problems) > 1 else ""
        raise ReleaseError(first.file, first.problem + more)
    skipped.extend((p.file, p.problem) for p in problems)


def _decoded(entries: list[PairEntry], decoder: MaskDecoder, workers: int, window_size: int,
             verify: str) -> Iterator[tuple[PairEntry, DecodedPair | ReleaseError]]:
    """Decode entries on a thread pool (PIL releases the GIL while decoding), in order, with at most
    ``window_size`` pairs in flight, so decoding goes on while the caller writes a row group."""
    def safe(entry: PairEntry) -> DecodedPair | ReleaseError:
        try:
            return decode.decode_pair(entry, decoder, verify)
        except ReleaseError as err:
            return err
        except Exception as err:  # anything else a decoder raises: still named, still skippable
            return ReleaseError(f"{entry.image_name} / {entry.mask_name}",
                                f"cannot be read ({type(err).__name__}: {err})")

    if workers <= 1:
        for entry in entries:
            yield entry, safe(entry)
        return
    window: collections.deque[tuple[PairEntry, Future]] = collections.deque()
    with ThreadPoolExecutor(workers) as pool:
        for entry in entries:
            window.append((entry, pool.submit(safe, entry)))
            if len(window) >= window_size:
                done, future = window.popleft()
                yield done, future.result()
        while window:
            done, future = window.popleft()
            yield done, future.result()


class _ShardWriter:
    """Writes one split's rows into parquet shards of about ``shard_bytes``, a row group at a time.

    Each finished shard is handed to ``on_close(path, rows, end)``, ``end`` being the position in the
    split's work list after the shard's last pair (which records it for resuming).
    """

    def __init__(self, folder: Path, split: str, features: Any, shard_bytes: int, rows_per_group: int,
                 first_index: int, on_close: Callable[[Path, int, int], None]):
        self.folder, self.split, self.shard_bytes = folder, split, shard_bytes
        self.rows_per_group, self.index, self.on_close = rows_per_group, first_index, on_close
        self.schema = features.arrow_schema
        self.writer: Any = None
        self.path: Path | None = None
        self.rows: list[dict[str, Any]] = []
        self.batch_bytes = self.shard_written = self.shard_rows = self.end = 0

    def add(self, row: dict[str, Any], end: int) -> None:
        self.rows.append(row)
        self.end = end
        self.batch_bytes += len(row["image"]["bytes"]) + len(row["mask"]["bytes"])
        if len(self.rows) >= self.rows_per_group or self.batch_bytes >= ROW_GROUP_BYTES:
            self.flush()

    def flush(self) -> None:
        import pyarrow.parquet as pq

        if not self.rows:
            return
        if self.writer is None:
            self.path = self.folder / f"{self.split}-{self.index:05d}.parquet.part"
            # PNG bytes are already compressed: no codec, no statistics or dictionaries for them.
            self.writer = pq.ParquetWriter(
                self.path, self.schema, compression={
                    name: "none" if name.split(".")[0] in ("image", "mask") else "snappy"
                    for name in _leaf_columns(self.schema)},
                write_statistics=["id", "edited_fraction"], use_dictionary=["models", "base", "turns"],
                write_page_checksum=True)  # a flipped bit is found by a checksum-verifying reader
        self.writer.write_table(_table(self.rows, self.schema))
        self.shard_written += self.batch_bytes
        self.shard_rows += len(self.rows)
        self.rows, self.batch_bytes = [], 0
        if self.shard_written >= self.shard_bytes:
            self.close_shard()

    def close_shard(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.on_close(self.path, self.shard_rows, self.end)
            self.writer, self.shard_written, self.shard_rows = None, 0, 0
            self.index += 1

    def finish(self, end: int) -> None:
        self.end = end
        self.flush()
        self.close_shard()


class _Progress:
    """Resumable state of one conversion in its work folder: finished shards and the files skipped.

    A rerun with the same sources and options continues after the last finished shard; anything else
    (other key, missing shard file) starts over.
    """

    def __init__(self, work: Path, key: str):
        self.work, self.file = work, work / "progress.json"
        try:
            state = json.loads(self.file.read_text())
        except (OSError, ValueError):
            state = {}
        shards = state.get("shards", [])
        if state.get("key") != key or not all((work / "data" / s["file"]).exists() for s in shards):
            shutil.rmtree(work, ignore_errors=True)
            state = {"key": key, "shards": [], "skipped": []}
        (work / "data").mkdir(parents=True, exist_ok=True)
        recorded = {s["file"] for s in state["shards"]}
        for stray in (work / "data").iterdir():  # a shard being written or not yet recorded
            if stray.name not in recorded:
                stray.unlink()
        self.state = state

    @property
    def resumed_pairs(self) -> int:
        return sum(s["rows"] for s in self.state["shards"])

    def shards(self, split: str) -> list[dict[str, Any]]:
        return [s for s in self.state["shards"] if s["split"] == split]

    def record(self, split: str, path: Path, rows: int, end: int, skipped: list[tuple[str, str]]) -> None:
        done = path.with_suffix(".done")
        os.replace(path, done)
        self.state["shards"].append({"split": split, "file": done.name, "rows": rows, "end": end})
        self.state["skipped"] = [list(item) for item in skipped]
        atomic_write_text(self.file, json.dumps(self.state))


def is_conversion_output(path: Path) -> bool:
    """Whether ``path`` is a folder this converter wrote (its ``conversion.json`` record is the marker)."""
    try:
        record = json.loads((path / "conversion.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and (record.get("written_by") == WRITTEN_BY
                                         or {"splits", "sources", "skipped"} <= set(record))


def check_out(sources: list, extra_real: Any, out: Path, overwrite: bool) -> None:
    """Refuse an ``out`` that would destroy data: one that is, contains or lies inside a source, an
    existing folder without ``overwrite``, or (with it) one that this converter did not write."""
    check_output_dir(out, "output folder")
    for source in [*sources, *([extra_real] if extra_real is not None else [])]:
        where = Path(source).resolve()
        if where == out or out in where.parents or where in out.parents:
            relation = ("is" if where == out else "contains" if out in where.parents else "lies inside")
            raise OutputError(f"{out}: the output folder {relation} the source {source}; choose an --out "
                              "outside every source")
    if os.path.lexists(out):
        if not overwrite:
            raise FileExistsError(f"{out}: already exists "
                                  "(--overwrite on the command line, overwrite=True in Python, replaces it)")
        if out.is_symlink() or not is_conversion_output(out):
            raise OutputError(f"{out}: exists and was not written by `diffseg30k convert` (no "
                              "conversion.json record); --overwrite only replaces a converted dataset folder")


def _leaf_columns(schema: Any) -> list[str]:
    """Dotted parquet column paths of an arrow schema (``image.bytes``, ``turns.list.element.seed``...)."""
    import pyarrow as pa

    def walk(prefix: str, dtype: Any) -> list[str]:
        if pa.types.is_struct(dtype):
            return [p for f in dtype for p in walk(f"{prefix}.{f.name}", f.type)]
        if pa.types.is_list(dtype):
            return walk(f"{prefix}.list.element", dtype.value_type)
        return [prefix]

    return [p for f in schema for p in walk(f.name, f.type)]


def _table(rows: list[dict[str, Any]], schema: Any) -> Any:
    """An arrow table of rows; the image columns are built directly from the bytes (no per-row copy)."""
    import pyarrow as pa

    columns = []
    for column in schema:
        values = [row[column.name] for row in rows]
        if column.name in ("image", "mask"):
            columns.append(pa.StructArray.from_arrays(
                [pa.array([v["bytes"] for v in values], pa.binary()), pa.array([v["path"] for v in values])],
                names=["bytes", "path"]))
        else:
            columns.append(pa.array(values, column.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _row(entry: PairEntry, pair: DecodedPair, with_metadata: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": pair.id, "image": {"bytes": pair.image_bytes, "path": pair.image_path},
        "mask": {"bytes": pair.mask_png, "path": f"{pair.id}.mask.png"},
        "models": pair.models, "edited_fraction": pair.edited_fraction,
    }
    if with_metadata:
        meta = entry.metadata or {}
        row.update({name: meta.get(name) for name in METADATA_COLUMNS})
    return row


def _about(options: dict[str, Any]) -> dict[str, str] | None:
    """What the card says about a non-DiffSeg30k dataset (None: the DiffSeg30k card)."""
    if not options.get("layout"):
        return None
    from diffseg30k.data.presets import card_about

    return card_about(options.get("preset"), options["layout"])


def convert(sources: str | os.PathLike | Iterable[str | os.PathLike], out: str | os.PathLike,
            extra_real: str | os.PathLike | None = None, on_error: str = "raise",
            shard_size: int | str = DEFAULT_SHARD_BYTES, overwrite: bool = False, workers: int | None = None,
            label_set: LabelSet | None = None, progress: bool = True,
            rows_per_group: int = ROWS_PER_GROUP, verify: str = "fast", layout: str | None = None,
            preset: str | None = None) -> ConversionSummary:
    """Convert release zips/folders, parquet exports or generation output into a dataset folder.

    ``on_error="raise"`` stops at the first bad input (the error names the file and the problem);
    ``"skip"`` leaves bad files out and lists each with its reason in the returned summary and in
    ``conversion.json``. ``verify="fast"`` checks RGB PNG images by structure and CRC without decoding
    their pixels (masks are always decoded); ``"full"`` decodes every image.

    Shards are written in a hidden work folder beside ``out``; an interrupted conversion rerun with the
    same sources and options resumes after the last finished shard. ``out`` appears only when complete.

    IML layouts (IMDL-BenCo ManiDataset/JsonDataset, CocoGlide, ...; see :mod:`diffseg30k.data.foreign`)
    are detected, or named by ``layout`` or by a dataset ``preset`` (:mod:`diffseg30k.data.presets`, which
    also writes its card); they convert as binary-only datasets (labels 0 background, 1 edited).
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
    started = time.perf_counter()
    sources = [sources] if isinstance(sources, str | os.PathLike) else list(sources)
    if not sources:
        raise ValueError("no source given")
    if extra_real is not None and not Path(extra_real).is_dir():  # a flag's folder: never a skippable file
        raise ReleaseError(str(extra_real), "--extra-real: no such folder" if not Path(extra_real).exists()
                           else "--extra-real: not a folder (a folder of unedited images is expected)")
    out = Path(out).absolute()
    out = out.parent.resolve() / out.name if out.name not in ("", ".", "..") else out.resolve()
    from diffseg30k.data.foreign import binary_only_setup

    label_set, layout = binary_only_setup(sources, label_set, layout, preset)
    label_set = label_set or LabelSet()
    options = {"labels": label_set.to_json(), "shard_bytes": parse_size(shard_size), "verify": verify,
               "rows_per_group": rows_per_group, "on_error": on_error, "layout": layout, "preset": preset}
    with output_lock(out, "diffseg30k convert", wait=True):  # e.g. several training processes
        check_out(sources, extra_real, out, overwrite)
        work = out.parent / f".{out.name}.convert-work"
        key = hashlib.sha256(json.dumps([source_fingerprint([*sources, extra_real]), options, VERSION],
                                        sort_keys=True).encode()).hexdigest()
        try:
            summary = _convert(sources, out, work, key, extra_real, label_set, options, workers, progress)
        except ReleaseError:
            shutil.rmtree(work, ignore_errors=True)  # bad input: a rerun needs fixed files, a new key
            raise
        except OSError as err:
            if err.errno not in OUTPUT_ERRNOS:
                raise
            if err.errno in DISK_ERRNOS:  # never leave the work folder filling the disk
                shutil.rmtree(work, ignore_errors=True)
            raise output_error(err, out) from err
        shutil.rmtree(work, ignore_errors=True)
    summary.seconds = time.perf_counter() - started
    return summary


def _entries(sources: list, extra_real: Any, options: dict[str, Any], summary: ConversionSummary
             ) -> list[PairEntry]:
    """Every pair to convert, splits assigned, duplicates dropped; problems raised or skipped."""
    scan = scan_sources(sources, options["layout"])
    if extra_real is not None:
        real = scan_extra_real(extra_real)
        scan.entries += real.entries
        scan.problems += real.problems
    _handle(scan.problems, options["on_error"], summary.skipped)
    assign_splits(scan.entries)
    entries, duplicates = _drop_duplicates(scan.entries)
    _handle(duplicates, options["on_error"], summary.skipped)
    if not entries:
        raise ReleaseError(", ".join(map(str, sources)), f"empty source: no usable image/mask pairs"
                           f"{_skipped_text(summary.skipped)}")
    return entries


def _convert(sources: list, out: Path, work: Path, key: str, extra_real: Any, label_set: LabelSet,
             options: dict[str, Any], workers: int | None, progress: bool) -> ConversionSummary:
    from tqdm.auto import tqdm

    on_error = options["on_error"]
    summary = ConversionSummary(out)
    entries = _entries(sources, extra_real, options, summary)
    with_metadata = any(e.metadata for e in entries)
    feats = features(with_metadata)
    order = [s for s in SPLITS if any(e.split == s for e in entries)]
    order += sorted({e.split for e in entries} - set(order))
    decoder = MaskDecoder(label_set)
    workers = workers or min(4, os.cpu_count() or 1)
    state = _Progress(work, key)
    if state.state["skipped"]:  # decode-time skips of the finished part (scan problems are listed already)
        listed = set(summary.skipped)
        summary.skipped += [tuple(item) for item in state.state["skipped"] if tuple(item) not in listed]
    with tqdm(total=len(entries), initial=state.resumed_pairs, unit="pair", desc="convert",
              disable=not progress) as bar:
        for split in order:
            todo = [e for e in entries if e.split == split]
            done = state.shards(split)
            start = done[-1]["end"] if done else 0

            def on_close(path: Path, rows: int, end: int, split: str = split) -> None:
                state.record(split, path, rows, end, summary.skipped)

            writer = _ShardWriter(work / "data", split, feats, options["shard_bytes"],
                                  options["rows_per_group"], len(done), on_close)
            window = max(4 * workers, options["rows_per_group"])
            results = _decoded(todo[start:], decoder, workers, window, options["verify"])
            for end, (entry, result) in enumerate(results, start + 1):
                bar.update()
                if isinstance(result, ReleaseError):
                    _handle([result], on_error, summary.skipped)
                    continue
                writer.add(_row(entry, result, with_metadata), end)
            writer.finish(len(todo))
    split_bytes: dict[str, int] = {}
    for split in order:
        shards = state.shards(split)
        if shards:
            summary.splits[split] = sum(s["rows"] for s in shards)
            split_bytes[split] = sum((work / "data" / s["file"]).stat().st_size for s in shards)
            summary.shards += len(shards)
    if not summary.splits:
        raise ReleaseError(", ".join(map(str, sources)), "no pair could be converted"
                           + _skipped_text(summary.skipped))
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "data").mkdir()
        for split in summary.splits:
            shards = state.shards(split)
            for index, shard in enumerate(shards):
                os.replace(work / "data" / shard["file"],
                           tmp / "data" / f"{split}-{index:05d}-of-{len(shards):05d}.parquet")
        from diffseg30k.data.card import render_card

        atomic_write_text(tmp / "id2label.json", label_set.to_json() + "\n")
        provenance = "\n\n".join(p.read_text(encoding="utf-8") for s in sources
                                   if (p := Path(s) / "PROVENANCE.md").is_file()) or None
        atomic_write_text(tmp / "README.md", render_card(feats, summary.splits, split_bytes, label_set,
                                                         about=_about(options), provenance=provenance))
        # names only: the folder is published as is, and local paths say nothing to its readers
        record = {"written_by": WRITTEN_BY, **summary.to_dict(), "sources": [Path(s).name for s in sources],
                  "extra_real": None if extra_real is None else Path(extra_real).name}
        record["skipped"] = [{**row, "file": _relative_to_sources(row["file"], sources)}
                             for row in record["skipped"]]
        for volatile in ("out", "seconds"):
            record.pop(volatile)
        atomic_write_text(tmp / "conversion.json", json.dumps(record, indent=2) + "\n")
    return summary
