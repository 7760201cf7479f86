"""List DiffSeg30k pairs in every source kind the converter accepts, with their metadata.

Sources:

- the official release: zip archives or folders of ``NNNNNNNN.image.png`` + ``NNNNNNNN.mask.png``
  (e.g. ``train.zip`` with members ``train_copy/00000001.image.png``); a folder may also hold zips;
- parquet exports with ``image``/``mask`` columns (the Hub's parquet form, ``datasets`` exports);
- this project's generation output: pairs plus ``metadata.jsonl`` (one JSON object per sample).

:func:`scan_sources` lists the pairs cheaply (names only, no pixel is read);
:func:`diffseg30k.data.decode.decode_pair` then reads and validates each one. Every problem is a
:class:`ReleaseError` naming the file.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import re
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from diffseg30k.io import image_files
from diffseg30k.outputs import printable

SPLITS = ("train", "validation", "test")
_PAIR_RE = re.compile(r"^(?P<id>[^/]+)\.(?P<kind>image|mask)\.(?P<ext>png|jpe?g|webp)$", re.IGNORECASE)
#: Largest archive member read into memory (a guard against zip bombs; images are size-checked too).
MAX_MEMBER_BYTES = int(os.environ.get("DIFFSEG30K_MAX_MEMBER_BYTES", 1 << 30))
#: Largest inflation ratio of a zip member above RATIO_CHECK_BYTES (PNG/JPEG data barely deflates).
MAX_COMPRESSION_RATIO = float(os.environ.get("DIFFSEG30K_MAX_ZIP_RATIO", 100))
RATIO_CHECK_BYTES = 1 << 20
HEADER_BYTES = 1 << 16  # read first from a member: its image header decides how large it may be
METADATA_COLUMNS = ("base", "base_source", "turns", "metadata")
TURN_FIELDS = ("generator", "edit_type", "prompt", "mask_area", "seed", "quality")
_TURN_ALIASES = {"quality_score": "quality", "score": "quality", "model": "generator", "type": "edit_type",
                 "area": "mask_area"}


class ReleaseError(ValueError):
    """A source file that cannot be converted; the message names the file and the problem."""

    def __init__(self, file: str, problem: str):
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem


def split_from_name(name: str) -> str | None:
    """The split a file or folder name stands for: train*, val*/validation*, test*; else None."""
    stem = name.lower()
    for suffix in (".zip", ".parquet"):
        stem = stem.removesuffix(suffix)
    if stem.startswith("train"):
        return "train"
    if stem.startswith("val"):
        return "validation"
    if stem.startswith("test"):
        return "test"
    return None


def _split_from_parts(parts: Iterable[str]) -> str | None:
    """The split of the innermost part that names one."""
    for part in reversed(list(parts)):
        split = split_from_name(part)
        if split:
            return split
    return None


# --------------------------------------------------------------------------------------------
# Pair entries: cheap references to where a pair's bytes live


@dataclass
class PairEntry:
    """One sample found by :func:`scan_sources` (bytes not read yet)."""

    id: str
    split: str | None
    image_name: str
    mask_name: str
    read: Callable[[], tuple[bytes, bytes]]
    metadata: dict[str, Any] | None = None
    origin: str = ""


@dataclass
class ScanResult:
    """Pairs found in the sources plus every problem met while listing them."""

    entries: list[PairEntry] = field(default_factory=list)
    problems: list[ReleaseError] = field(default_factory=list)


class _ZipReader:
    """Thread-safe member reads from one archive, with the traversal, size and zip-bomb checks.

    A member is streamed: its declared size and compression ratio are checked first, then its first
    bytes (the image header), and only a member whose size is plausible for the image its header
    declares is read into memory.
    """

    def __init__(self, path: Path):
        self.path = path
        try:
            self.archive = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as err:
            raise ReleaseError(str(path), f"not a readable zip archive ({err})") from err
        self.lock = threading.Lock()

    def read(self, info: zipfile.ZipInfo) -> bytes:
        label = f"{self.path}:{info.filename}"
        check_zip_member(info, label)
        try:
            with self.lock, self.archive.open(info) as handle:
                head = handle.read(HEADER_BYTES)
                limit = plausible_image_bytes(head)
                if limit is not None and info.file_size > limit:
                    raise ReleaseError(label, f"member is {info.file_size} bytes, more than an image of the "
                                       f"size its header declares can take (at most {limit} bytes)")
                return head + handle.read() if len(head) == HEADER_BYTES else head
        except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as err:
            raise ReleaseError(label, f"cannot read archive member ({err})") from err

    def lines(self, info: zipfile.ZipInfo) -> Iterator[str]:
        """A text member line by line (never read whole into memory)."""
        check_zip_member(info, f"{self.path}:{info.filename}", ratio=False)
        with self.lock, self.archive.open(info) as handle:
            yield from io.TextIOWrapper(handle, encoding="utf-8", errors="replace")


def check_zip_member(info: zipfile.ZipInfo, label: str, ratio: bool = True) -> None:
    """Refuse a zip member whose declared size or (``ratio``) compression ratio is implausible for
    image data, before any byte of it is inflated; ``label`` names it in the error."""
    if info.file_size > MAX_MEMBER_BYTES:
        raise ReleaseError(label, f"member is {info.file_size} bytes, over the limit of {MAX_MEMBER_BYTES}")
    inflation = info.file_size / max(info.compress_size, 1)
    if ratio and info.file_size > RATIO_CHECK_BYTES and inflation > MAX_COMPRESSION_RATIO:
        raise ReleaseError(label, f"member inflates {inflation:.0f}:1 ({info.compress_size} -> "
                           f"{info.file_size} bytes), implausible for image data, which is already "
                           f"compressed (a zip bomb?); the limit is {MAX_COMPRESSION_RATIO:g}:1 above "
                           f"{RATIO_CHECK_BYTES} bytes (DIFFSEG30K_MAX_ZIP_RATIO)")


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def plausible_image_bytes(head: bytes) -> int | None:
    """The most bytes a file starting with ``head`` can take as an image of the size its header
    declares (PNG: the raw pixel rows, as stored deflate blocks would take them, plus 1 MiB of
    ancillary chunks; JPEG/WebP: 4 bytes a pixel plus 1 MiB); None when the header is not understood."""
    slack = 1 << 20
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 29 and head[12:16] == b"IHDR":
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        depth, colour, interlace = head[24], head[25], head[28]
        row = 1 + (width * _PNG_CHANNELS.get(colour, 4) * max(depth, 1) + 7) // 8
        raw = height * row + (7 * height + 64 if interlace else 0)
        return raw + raw // 1000 + slack
    if head[:3] == b"\xff\xd8\xff" or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        from PIL import Image

        try:
            width, height = Image.open(io.BytesIO(head)).size
        except Exception:  # header beyond the first bytes (e.g. a large EXIF block): no pixel bound
            return None
        return 4 * width * height + slack
    return None


def unsafe_member_reason(name: str) -> str | None:
    """Why an archive member name is unsafe (absolute path, drive letter, ``..``), or None."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "archive member has an absolute path"
    if ".." in re.split(r"[\\/]", name):
        return "archive member path contains '..' (path traversal)"
    return None


def _pairs_from_names(names: dict[str, Any], label: Callable[[str], str], base_split: str | None,
                      result: ScanResult) -> list[tuple[str, str | None, Any, Any, str, str]]:
    """Group ``{relative name: handle}`` into pairs; unmatched halves become problems."""
    halves: dict[tuple[str, str], dict[str, tuple[str, Any]]] = {}
    for name, handle in names.items():
        path = PurePosixPath(name)
        if path.name.startswith("._") or "__MACOSX" in path.parts:
            continue
        match = _PAIR_RE.match(path.name)
        if not match:
            continue
        kind = match["kind"].lower()
        if kind == "mask" and match["ext"].lower() != "png":
            result.problems.append(ReleaseError(label(name), "masks must be PNG label maps"))
            continue
        key = (str(path.parent), match["id"])
        slot = halves.setdefault(key, {})
        if kind in slot:
            result.problems.append(ReleaseError(label(name), f"second {kind} file for id {match['id']} "
                                                f"(first: {label(slot[kind][0])})"))
            continue
        slot[kind] = (name, handle)
    pairs = []
    for (parent, sample_id), slot in sorted(halves.items()):
        if "image" not in slot or "mask" not in slot:
            present, missing = ("image", "mask") if "image" in slot else ("mask", "image")
            name = slot[present][0]
            expected = str(PurePosixPath(parent) / f"{sample_id}.{missing}.png")
            result.problems.append(ReleaseError(label(name), f"missing partner: no {missing} file "
                                                f"(expected {label(expected.removeprefix('./'))})"))
            continue
        parts = [] if parent == "." else PurePosixPath(parent).parts
        split = _split_from_parts(parts) or base_split
        pairs.append((sample_id, split, slot["image"][1], slot["mask"][1],
                      label(slot["image"][0]), label(slot["mask"][0])))
    return pairs


def _scan_zip(path: Path, result: ScanResult) -> None:
    reader = _ZipReader(path)
    names: dict[str, zipfile.ZipInfo] = {}
    for info in reader.archive.infolist():
        reason = unsafe_member_reason(info.filename)
        if reason:
            result.problems.append(ReleaseError(f"{path}:{info.filename}", reason))
            continue
        if not info.is_dir():
            names[info.filename.replace("\\", "/")] = info  # archives made on Windows may use backslashes
    metadata = _zip_metadata(reader, names, result)
    pairs = _pairs_from_names(names, lambda n: f"{path}:{n}", split_from_name(path.name), result)
    for sample_id, split, image_info, mask_info, image_name, mask_name in pairs:
        result.entries.append(PairEntry(
            sample_id, split, image_name, mask_name,
            lambda a=image_info, b=mask_info: (reader.read(a), reader.read(b)),
            metadata.get(sample_id), str(path)))
    _unpaired_metadata(metadata, pairs, result)


def _zip_metadata(reader: _ZipReader, names: dict[str, zipfile.ZipInfo],
                  result: ScanResult) -> dict[str, dict[str, Any]]:
    metadata: dict[str, dict[str, Any]] = {}
    for name, info in names.items():
        if PurePosixPath(name).name == "metadata.jsonl":
            try:
                metadata.update(parse_metadata(reader.lines(info), f"{reader.path}:{name}", result))
            except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as err:
                result.problems.append(ReleaseError(f"{reader.path}:{name}", f"cannot read ({err})"))
    return metadata


def _scan_folder(path: Path, result: ScanResult) -> None:
    names: dict[str, Path] = {}
    metadata: dict[str, dict[str, Any]] = {}
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # e.g. generation's .work/ records
        for file in sorted(files):
            full = Path(root) / file
            rel = full.relative_to(path).as_posix()
            if printable(rel) != rel:  # undecodable bytes: not storable in the dataset's UTF-8 columns
                result.problems.append(_undecodable_name(full))
            elif file == "metadata.jsonl":
                metadata.update(parse_metadata(full.read_text(errors="replace"), str(full), result))
            elif file.lower().endswith(".zip"):
                _scan_one(full, result)
            elif file.lower().endswith(".parquet"):
                _scan_parquet(full, result, split_from_name(file) or _split_from_parts(
                    full.relative_to(path).parent.parts) or split_from_name(path.name))
            else:
                names[rel] = full
    pairs = _pairs_from_names(names, lambda n: str(path / n), split_from_name(path.name), result)
    for sample_id, split, image_path, mask_path, image_name, mask_name in pairs:
        result.entries.append(PairEntry(
            sample_id, split, image_name, mask_name,
            lambda a=image_path, b=mask_path: (_read_file(a), _read_file(b)),
            metadata.get(sample_id), str(path)))
    _unpaired_metadata(metadata, pairs, result)


def _undecodable_name(path: Path) -> ReleaseError:
    return ReleaseError(printable(path), "file name is not valid UTF-8 (shown with \\x escapes); "
                        "rename the file")


def _unpaired_metadata(metadata: dict[str, dict[str, Any]], pairs: list[tuple], result: ScanResult) -> None:
    """A metadata row whose sample has no pair means files are missing: never a silent drop."""
    paired = {pair[0] for pair in pairs}
    for sample_id, row in metadata.items():
        if sample_id not in paired:
            result.problems.append(ReleaseError(row["where"], f"metadata for id {sample_id!r} but no "
                                                f"{sample_id}.image.png / {sample_id}.mask.png pair"))


def _read_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_MEMBER_BYTES:
            raise ReleaseError(str(path), f"file is {size} bytes, over the limit of {MAX_MEMBER_BYTES}")
        return path.read_bytes()
    except OSError as err:
        raise ReleaseError(str(path), f"cannot read file ({err.strerror or err})") from err


# --------------------------------------------------------------------------------------------
# Parquet exports


class _ParquetReader:
    """Row access into parquet files; the two row groups used last are cached for all files together
    (bounded memory; decoding threads straddling a row-group boundary do not read groups twice)."""

    _cache: collections.OrderedDict[tuple[str, int], dict[str, list[Any]]] = collections.OrderedDict()
    _lock = threading.Lock()
    CACHED_GROUPS = 2

    def __init__(self, path: Path):
        import pyarrow.parquet as pq

        self.path = path
        try:
            self.file = pq.ParquetFile(path)
        except Exception as err:  # pyarrow raises several unrelated types for corrupt files
            raise ReleaseError(str(path), f"not a readable parquet file ({err})") from err

    def row(self, group: int, index: int) -> dict[str, Any]:
        key = (str(self.path), group)
        with _ParquetReader._lock:
            cache = _ParquetReader._cache
            if key in cache:
                cache.move_to_end(key)
            else:
                while len(cache) >= self.CACHED_GROUPS:  # free the oldest before reading the next
                    cache.popitem(last=False)
                cache[key] = self.file.read_row_group(group, columns=["image", "mask"]).to_pydict()
            return {k: v[index] for k, v in cache[key].items()}


def _cell_bytes(value: Any, label: str) -> bytes:
    if isinstance(value, dict):
        value = value.get("bytes")
    if not isinstance(value, bytes | bytearray) or not value:
        raise ReleaseError(label, "no embedded image bytes (the export must embed the files)")
    return bytes(value)


def _scan_parquet(path: Path, result: ScanResult, split: str | None = None) -> None:
    import pyarrow as pa

    reader = _ParquetReader(path)
    names = reader.file.schema_arrow.names
    missing = [c for c in ("image", "mask") if c not in names]
    if missing:
        result.problems.append(ReleaseError(str(path), f"parquet file has no {' or '.join(missing)} column "
                                            f"(columns: {', '.join(names)})"))
        return
    split = split if split is not None else split_from_name(path.name)
    meta_columns = [c for c in ("id", *METADATA_COLUMNS) if c in names]
    image_type = reader.file.schema_arrow.field("image").type
    with_path = pa.types.is_struct(image_type) and image_type.get_field_index("path") >= 0
    for group in range(reader.file.num_row_groups):
        columns = meta_columns + (["image.path"] if with_path and "id" not in names else [])
        rows = reader.file.read_row_group(group, columns=columns).to_pylist() if columns else \
            [{}] * reader.file.metadata.row_group(group).num_rows
        for index, row in enumerate(rows):
            label = f"{path}[row group {group}, row {index}]"
            sample_id = row.get("id")
            if sample_id is None and row.get("image") and row["image"].get("path"):
                name = PurePosixPath(row["image"]["path"]).name
                match = _PAIR_RE.match(name)
                sample_id = match["id"] if match else PurePosixPath(name).stem
            if sample_id is None:
                sample_id = f"{path.stem}-{group:05d}-{index:06d}"
            meta = {k: row[k] for k in METADATA_COLUMNS if row.get(k) is not None}
            result.entries.append(PairEntry(
                str(sample_id), split, f"{label} image", f"{label} mask",
                lambda g=group, i=index, lab=label: _parquet_pair(reader, g, i, lab),
                normalise_metadata(meta, label) if meta else None, str(path)))


def _parquet_pair(reader: _ParquetReader, group: int, index: int, label: str) -> tuple[bytes, bytes]:
    row = reader.row(group, index)
    return _cell_bytes(row["image"], f"{label} image"), _cell_bytes(row["mask"], f"{label} mask")


# --------------------------------------------------------------------------------------------
# Generation metadata


def parse_metadata(text: str | Iterable[str], label: str, result: ScanResult) -> dict[str, dict[str, Any]]:
    """Parse ``metadata.jsonl`` (its text or its lines): ``{id: normalised row}``; bad lines become
    problems."""
    rows: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(text.splitlines() if isinstance(text, str) else text, 1):
        if not line.strip():
            continue
        where = f"{label}:{number}"
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or row.get("id") is None:
                raise ValueError("expected a JSON object with an 'id'")
            sample_id = row["id"]
            sample_id = f"{sample_id:08d}" if isinstance(sample_id, int) else str(sample_id)
            rows[sample_id] = normalise_metadata(row, where)
            rows[sample_id]["metadata"] = json.dumps(row, sort_keys=True, ensure_ascii=False)
            rows[sample_id]["where"] = where  # for error messages; not a column
        except (ValueError, ReleaseError) as err:
            if not isinstance(err, ReleaseError):
                err = ReleaseError(where, f"bad metadata line ({err})")
            result.problems.append(err)
    return rows


def normalise_metadata(row: dict[str, Any], label: str) -> dict[str, Any]:
    """Keep the known metadata fields in the dataset's schema: base, base_source, turns (and the full
    source row as JSON text in ``metadata`` when it comes as text, e.g. from a converted parquet)."""
    out: dict[str, Any] = {}
    if isinstance(row.get("metadata"), str):
        out["metadata"] = row["metadata"]
    base = row.get("base", row.get("base_type"))
    if base is None and "is_real" in row:
        base = "real" if row["is_real"] else "ai"
    if base is not None:
        base = str(base).lower()
        if base not in ("real", "ai"):
            raise ReleaseError(label, f"base must be 'real' or 'ai', got {base!r}")
        out["base"] = base
    source = row.get("base_source", row.get("source"))
    if source is not None:
        out["base_source"] = str(source)
    turns = row.get("turns")
    if turns is not None:
        if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
            raise ReleaseError(label, "turns must be a list of objects")
        out["turns"] = [_normalise_turn(t, label) for t in turns]
    return out


def _normalise_turn(turn: dict[str, Any], label: str) -> dict[str, Any]:
    turn = {_TURN_ALIASES.get(k, k): v for k, v in turn.items()}
    try:
        return {
            "generator": None if turn.get("generator") is None else str(turn["generator"]),
            "edit_type": None if turn.get("edit_type") is None else str(turn["edit_type"]),
            "prompt": None if turn.get("prompt") is None else str(turn["prompt"]),
            "mask_area": None if turn.get("mask_area") is None else float(turn["mask_area"]),
            "seed": None if turn.get("seed") is None else int(turn["seed"]),
            "quality": None if turn.get("quality") is None else float(turn["quality"]),
        }
    except (TypeError, ValueError) as err:
        raise ReleaseError(label, f"bad turn {turn!r} ({err})") from err


# --------------------------------------------------------------------------------------------
# Scanning


def _scan_one(path: Path, result: ScanResult) -> None:
    before = len(result.entries)
    if not path.exists():
        result.problems.append(ReleaseError(str(path), "no such file or folder"))
        return
    try:
        if path.is_dir():
            _scan_folder(path, result)
        elif path.suffix.lower() == ".zip":
            _scan_zip(path, result)
        elif path.suffix.lower() == ".parquet":
            _scan_parquet(path, result)
        else:
            result.problems.append(ReleaseError(str(path), "not a zip archive, parquet file or folder"))
            return
    except ReleaseError as err:
        result.problems.append(err)
        return
    if len(result.entries) == before:
        result.problems.append(ReleaseError(str(path), "empty source: no image/mask pairs found (expected "
                                            "NNNNNNNN.image.png + NNNNNNNN.mask.png pairs or a parquet "
                                            "export with image and mask columns)"))


def source_fingerprint(sources: Iterable[str | os.PathLike | None]) -> str:
    """A key for a set of sources: every file's resolved path, size and mtime (no content is read)."""
    from diffseg30k.data.foreign import fingerprint_files  # a JSON list names files elsewhere

    digest = hashlib.sha256()
    for root in sources:
        if root is None:
            continue
        root = Path(root).resolve()
        files = fingerprint_files(root) or ([root] if root.is_file() else
                                            sorted(p for p in root.rglob("*") if p.is_file()))
        for path in files:
            stat = path.stat()
            digest.update(os.fsencode(path) + f"\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def scan_sources(sources: Iterable[str | os.PathLike], layout: str | None = None) -> ScanResult:
    """List every pair in ``sources`` (zips, folders, parquet files) without decoding pixels.

    Sources in an IML layout (:mod:`diffseg30k.data.foreign`; ``layout`` names one, else detected) are
    read by that module's readers.
    """
    from diffseg30k.data.foreign import scan_foreign

    result = ScanResult()
    for source in sources:
        if not scan_foreign(Path(source), result, layout):
            _scan_one(Path(source), result)
    return result


def scan_extra_real(folder: str | os.PathLike) -> ScanResult:
    """Unedited real images (any names) under ``folder``: all-zero masks, split train, base real."""
    folder = Path(folder)
    result = ScanResult()
    if not folder.is_dir():
        result.problems.append(ReleaseError(str(folder), "extra-real source is not a folder"))
        return result
    for path in image_files(folder):
        if printable(path) != str(path):
            result.problems.append(_undecodable_name(path))
            continue
        rel = path.relative_to(folder).with_suffix("").as_posix().replace("/", "_")
        result.entries.append(PairEntry(f"real_{rel}", "train", str(path), "(all-zero mask)",
                                        lambda p=path: (_read_file(p), b""), {"base": "real", "turns": []},
                                        str(folder)))
    if not result.entries:
        result.problems.append(ReleaseError(str(folder), "empty source: no images found"))
    return result
