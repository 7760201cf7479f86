"""``load_benchmark``: DiffSeg30k as ``datasets`` objects from any source, masks mapped for the task.

Sources: a converted folder (``README.md`` + ``id2label.json`` + ``data/*.parquet``), a raw release
(zip archives, folders, parquet exports, generation output; converted once into the cache, keyed by a
fingerprint of the files, then reused) or a Hub dataset repo id. The official ``Chaos2629/Diffseg30k``
stores zip archives: those are downloaded with ``huggingface_hub`` and converted like a local release;
a repository already in parquet form is loaded with ``datasets.load_dataset``.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diffseg30k.io import cache_dir, open_image
from diffseg30k.labels import BINARY_LUT, TASKS

OFFICIAL_REPO = "Chaos2629/Diffseg30k"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
#: From this many rows on, the one-time binary pass over the masks runs in several processes.
PARALLEL_BINARY_ROWS = 4096


def is_converted_folder(path: Path) -> bool:
    """A folder already in the published form: parquet shards under data/ plus a card or id2label.json."""
    if not path.is_dir() or not any((path / "data").glob("*.parquet")):
        return False
    card = path / "README.md"
    return (path / "id2label.json").exists() or (card.exists() and "configs:" in card.read_text())


def fingerprint(sources: Sequence[str | os.PathLike], extra_real: str | os.PathLike | None = None,
                layout: str | None = None, preset: str | None = None, on_error: str = "raise") -> str:
    """A key for a raw source set: every file's path, size and modification time (no content read)."""
    from diffseg30k.data.convert import VERSION
    from diffseg30k.data.release import source_fingerprint

    key = f"diffseg30k-convert-{VERSION}-{source_fingerprint([*sources, extra_real])}"
    if layout or preset or on_error != "raise":  # IML layout / preset (diffseg30k.data.foreign, .presets)
        key += f"-{layout}-{preset}-{on_error}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def converted_cache(sources: Sequence[str | os.PathLike], extra_real: str | os.PathLike | None = None,
                    progress: bool = True, layout: str | None = None, preset: str | None = None,
                    on_error: str = "raise") -> Path:
    """Convert raw sources once into the cache (``cache_dir('converted', <fingerprint>)``) and reuse it.

    ``on_error="skip"`` leaves bad files out (listed in the folder's ``conversion.json``).
    """
    from diffseg30k.data.convert import convert

    target = cache_dir("converted") / fingerprint(sources, extra_real, layout, preset, on_error)
    if not is_converted_folder(target):
        try:
            convert(sources, target, extra_real=extra_real, overwrite=target.exists(), progress=progress,
                    layout=layout, preset=preset, on_error=on_error)
        except (FileExistsError, OSError):
            if not is_converted_folder(target):  # another process finished the same conversion first
                raise
    return target


def _hub_files(repo_id: str, revision: str | None) -> tuple[list[str], str | None]:
    """The files of a Hub dataset repo; offline, those of its cached snapshot (with its folder)."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.constants import is_offline_mode
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    offline = is_offline_mode()
    try:
        if offline:  # no request (and no retries): straight to the local Hub cache
            raise LocalEntryNotFoundError("HF_HUB_OFFLINE=1")
        return HfApi().list_repo_files(repo_id, repo_type="dataset", revision=revision), None
    except RepositoryNotFoundError as err:
        raise ValueError(f"{repo_id}: no such dataset repository on the Hub (or no access)") from err
    except Exception:  # offline or unreachable: fall back to the local Hub cache
        try:
            local = snapshot_download(repo_id, repo_type="dataset", revision=revision, local_files_only=True)
        except LocalEntryNotFoundError as err:
            why = "HF_HUB_OFFLINE=1 is set" if offline else "the Hub is not reachable"
            raise ValueError(f"{repo_id}: no such local folder; as a Hub dataset repo id: {why} and the "
                             "repository is not in the local Hub cache") from err
        files = [p.relative_to(local).as_posix() for p in Path(local).rglob("*") if p.is_file()]
        return files, local


def resolve_hub(repo_id: str, revision: str | None = None, progress: bool = True) -> Path | None:
    """For a Hub repo storing zip archives (the official release): download and convert them (cached).

    Returns the converted folder, or None when the repository is already loadable by ``datasets``.
    """
    from huggingface_hub import snapshot_download

    files, local = _hub_files(repo_id, revision)
    archives = sorted(f for f in files if f.lower().endswith(".zip"))
    if not archives:
        return None
    if local is None:
        local = snapshot_download(repo_id, repo_type="dataset", revision=revision, allow_patterns=archives)
    return converted_cache([Path(local) / name for name in archives], progress=progress)


def resolve_source(source: str | os.PathLike, revision: str | None = None, progress: bool = True,
                   on_error: str = "raise") -> str:
    """Where ``datasets.load_dataset`` should read ``source`` from: a folder path or a Hub repo id."""
    from diffseg30k.data.presets import find_preset, resolve_preset

    path = Path(source).expanduser()
    if path.exists():
        return str(path if is_converted_folder(path) else converted_cache([path], progress=progress,
                                                                          on_error=on_error))
    if find_preset(source) is not None:  # a named public test set (cocoglide, opensdi-test, ...)
        return str(resolve_preset(str(source), revision, progress=progress, on_error=on_error))
    local_looking = str(source).startswith((".", "/", "~")) or Path(str(source).split("/")[0]).is_dir()
    if isinstance(source, str) and _REPO_ID.match(source) and not local_looking:
        folder = resolve_hub(source, revision, progress=progress)
        return source if folder is None else str(folder)
    if local_looking:  # never a Hub lookup: its first folder exists here, or it starts with . / ~
        raise ValueError(f"{source}: no such file or folder")
    raise ValueError(f"{source}: no such file or folder, not a dataset preset ({_preset_names(source)}) "
                     "and not a Hub dataset repo id (owner/name)")


def _preset_names(source: object) -> str:
    """The preset names, with the nearest to ``source`` suggested (a mistyped preset)."""
    from diffseg30k.data.presets import PRESETS
    from diffseg30k.registry import suggest

    near = suggest(str(source).lower(), PRESETS.names())
    return ", ".join(PRESETS) + (f"; did you mean {' or '.join(near)}?" if near else "")


def is_binary_only(location: str | os.PathLike) -> bool:
    """Whether a resolved dataset location is binary-only (its id2label has no generator labels)."""
    from diffseg30k.data.foreign import is_binary_labels

    path = Path(location)
    return path.is_dir() and (path / "id2label.json").is_file() and is_binary_labels(label_names(path))


def _binary_png(cell: dict[str, Any]) -> dict[str, Any]:
    mask = open_image(cell["bytes"], name=cell.get("path") or "mask")  # size-checked before decoding
    buffer = io.BytesIO()
    mask.point(BINARY_LUT).save(buffer, format="PNG", compress_level=1)
    return {"bytes": buffer.getvalue(), "path": cell.get("path")}


def _binary_batch(masks: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {"mask": [_binary_png(cell) for cell in masks]}


def _binary_example(example: dict[str, Any]) -> dict[str, Any]:
    return {"mask": example["mask"].point(BINARY_LUT)}


def map_task(dataset: Any, task: str) -> Any:
    """Map masks for ``task``: 'semantic' returns the dataset unchanged; 'binary' maps ids > 0 to 1.

    For a map-style ``Dataset`` only the mask column is rewritten, once (cached by ``datasets``), and
    joined back without copying images; an ``IterableDataset`` maps lazily per example.
    """
    import datasets

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if task == "semantic":
        return dataset
    if isinstance(dataset, datasets.DatasetDict | datasets.IterableDatasetDict):
        return type(dataset)({name: map_task(split, task) for name, split in dataset.items()})
    if isinstance(dataset, datasets.IterableDataset):
        return dataset.map(_binary_example, features=dataset.features)
    masks = dataset.select_columns(["mask"]).cast_column("mask", datasets.Image(decode=False))
    workers = min(os.cpu_count() or 1, 8) if len(masks) >= PARALLEL_BINARY_ROWS else None
    masks = masks.map(_binary_batch, input_columns="mask", batched=True, batch_size=64, num_proc=workers,
                      desc="binary masks").cast_column("mask", datasets.Image())
    joined = datasets.concatenate_datasets([dataset.remove_columns("mask"), masks], axis=1)
    return joined.select_columns(dataset.column_names)


def load_benchmark(source: str | os.PathLike = OFFICIAL_REPO, task: str = "semantic",
                   split: str | None = None, streaming: bool = False, revision: str | None = None,
                   progress: bool = True) -> Any:
    """Load DiffSeg30k with masks mapped for ``task`` ('semantic' ids 0-8, or 'binary' 0/1; 255 kept).

    ``source``: a converted folder, a raw release (zip archive, folder, parquet export, generation
    output), an IML layout (IMDL-BenCo ManiDataset folder or JSON list, CocoGlide folder), a dataset
    preset name (:mod:`diffseg30k.data.presets`) or a Hub dataset repo id. Binary-only datasets (the IML
    layouts and presets) refuse ``task="semantic"``. Returns a ``DatasetDict`` (``IterableDatasetDict`` when
    ``streaming``), or one split when ``split`` is given.
    """
    import datasets

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    split = {"val": "validation", "valid": "validation"}.get(split, split)  # the release's own name
    from diffseg30k.data.presets import find_preset

    if task == "semantic" and not Path(source).exists() and find_preset(source) is not None:
        raise ValueError(f"{source}: a binary-only dataset preset (edited/unedited masks, no generator "
                         "labels): the semantic task does not apply; load it with task='binary'")
    location = resolve_source(source, revision, progress=progress)
    if task == "semantic" and is_binary_only(location):
        raise ValueError(f"{source}: a binary-only dataset (edited/unedited masks, no generator labels): "
                         "the semantic task does not apply; load it with task='binary'")
    kwargs: dict[str, Any] = {"revision": revision} if location == source and revision else {}
    check_shards(location)
    try:
        dataset = datasets.load_dataset(location, split=split, streaming=streaming, **kwargs)
    except ValueError as err:
        if split is not None and "split" in str(err).lower():
            raise ValueError(f"{source}: no split {split!r} ({err})") from err
        raise
    return map_task(dataset, task)


def check_shards(location: str) -> None:
    """Raise ``ValueError`` naming the first unreadable parquet shard of a local dataset folder.

    Each shard is read once with page-checksum verification (``convert`` writes page checksums, so a
    flipped bit is found, not only a truncation); a verified shard is remembered by path, size and
    modification time, so later loads only pay for a stat.
    """
    import pyarrow.parquet as pq

    folder = Path(location)
    if not folder.is_dir():
        return
    for shard in sorted(folder.glob("data/*.parquet")):
        stat = shard.stat()
        key = hashlib.sha256(f"{shard.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()
        marker = cache_dir("verified-shards") / key[:32]
        if marker.exists():
            continue
        try:
            handle = pq.ParquetFile(shard, page_checksum_verification=True)
            for group in range(handle.num_row_groups):
                handle.read_row_group(group)
        except Exception as err:  # pyarrow raises several unrelated types for corrupt files
            raise ValueError(f"{shard}: truncated or corrupt parquet shard ({type(err).__name__}: {err}); "
                             "convert or download it again") from err
        marker.touch()


def label_names(source: str | os.PathLike) -> dict[int, str]:
    """The id -> name mapping of a converted folder (its ``id2label.json``), else the default one."""
    from diffseg30k.labels import load_label_set

    path = Path(source)
    return load_label_set(path if path.is_dir() else None).id2label
