"""IML layouts shipped as zip archives (``CocoGlide.zip`` holds ``CocoGlide/{real,fake,mask}/``; a
ManiDataset zip holds ``Tp/`` + ``Gt/``): the layout's folder is extracted once into the cache, with the
archive checks of the official release (no absolute or ``..`` member paths, per-member size limit, the
bytes actually read counted), then read by :mod:`diffseg30k.data.foreign`. Problems name the archive
member (``CocoGlide.zip:CocoGlide/mask/x.png``), not the cache copy.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path, PurePosixPath

from diffseg30k.data import foreign
from diffseg30k.data.release import (
    MAX_MEMBER_BYTES,
    ReleaseError,
    ScanResult,
    check_zip_member,
    unsafe_member_reason,
)

_MARKERS = {"mani": (("tp/",), ("gt/",)), "cocoglide": (("fake/",), ("mask/",))}


def zip_layout(path: Path) -> tuple[str, str] | None:
    """(IML layout, member prefix of its folder) inside a zip archive, or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n.replace("\\", "/") for n in archive.namelist()]
    except (OSError, zipfile.BadZipFile):
        return None
    folders = {""}
    for name in names:
        parts = name.split("/")
        folders.update("/".join(parts[:i]) + "/" for i in range(1, len(parts)))
    lowered = {f.lower() for f in folders}
    for prefix in sorted(folders, key=lambda f: (f.count("/"), f)):
        for layout, (first, second) in _MARKERS.items():
            if all(any((prefix + m).lower() in lowered for m in group) for group in (first, second)):
                return layout, prefix
    return None


def _copy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, label: str) -> None:
    """Copy one member, stopping at the size limit whatever its header claims."""
    check_zip_member(info, label)  # declared size and compression ratio (zip bombs), before inflating
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with archive.open(info) as source, open(target, "wb") as out:
        while chunk := source.read(1 << 20):
            written += len(chunk)
            if written > MAX_MEMBER_BYTES:
                raise ReleaseError(label, f"member inflates past the limit of {MAX_MEMBER_BYTES} bytes")
            out.write(chunk)


def extract_layout(path: Path, prefix: str) -> Path:
    """The layout folder of ``path`` extracted into the cache (once per archive version)."""
    from diffseg30k.data.release import source_fingerprint
    from diffseg30k.io import atomic_dir, cache_dir

    key = hashlib.sha256(f"{source_fingerprint([path])}\0{prefix}".encode()).hexdigest()[:24]
    target = cache_dir("extracted") / key
    folder = target / (PurePosixPath(prefix).name or path.stem)
    if (target / ".complete").is_file():
        return folder
    try:
        with zipfile.ZipFile(path) as archive, atomic_dir(target, overwrite=True) as tmp:
            for info in archive.infolist():
                name = info.filename.replace("\\", "/")
                if info.is_dir() or not name.startswith(prefix):
                    continue
                label = f"{path}:{name}"
                reason = unsafe_member_reason(name)
                if reason:
                    raise ReleaseError(label, reason)
                _copy(archive, info, tmp / folder.name / name[len(prefix):], label)
            (tmp / ".complete").write_text("ok\n")
    except (OSError, zipfile.BadZipFile) as err:
        raise ReleaseError(str(path), f"cannot extract the archive ({err})") from err
    return folder


def scan_zip(path: Path, result: ScanResult) -> None:
    """Extract the IML layout inside ``path`` and read it; names point into the archive."""
    found = zip_layout(path)
    if found is None:
        raise ReleaseError(str(path), "no IML layout (Tp/ + Gt/, or fake/ + mask/) inside the archive")
    layout, prefix = found
    folder = extract_layout(path, prefix)
    entries, problems = len(result.entries), len(result.problems)
    foreign.LAYOUTS[layout](folder, result)
    local, shown = f"{folder}/", f"{path}:{prefix}"
    for entry in result.entries[entries:]:
        entry.image_name = entry.image_name.replace(local, shown)
        entry.mask_name = entry.mask_name.replace(local, shown)
    result.problems[problems:] = [ReleaseError(p.file.replace(local, shown), p.problem.replace(local, shown))
                                  for p in result.problems[problems:]]


foreign.register_layout("zip", scan_zip)
