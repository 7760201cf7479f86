"""Safe file handling shared by every floor: size-checked image decoding, atomic writes, caches."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import stat
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

#: Largest image (in pixels) decoded anywhere in the toolkit; override with DIFFSEG30K_MAX_PIXELS.
MAX_PIXELS = int(os.environ.get("DIFFSEG30K_MAX_PIXELS", 8192 * 8192))


class ImageError(ValueError):
    """An image that cannot be used; the message names the file and the problem."""


#: The image files the toolkit reads from plain folders (``--extra-real``, ``--source``, negatives).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Image files (:data:`IMAGE_SUFFIXES`, any case) under ``folder``, recursively, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def torch_dtype(value: Any, device: str | None = None, gpu_default: str = "float16") -> Any:
    """A ``torch.dtype`` from a name (``"bfloat16"``, ``"torch.float16"``), a dtype, or ``None``
    (``gpu_default`` on CUDA devices, float32 elsewhere)."""
    import torch

    if value is None:
        value = gpu_default if str(device or "").startswith("cuda") else "float32"
    if isinstance(value, torch.dtype):
        return value
    dtype = getattr(torch, str(value).removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown torch dtype {value!r} (e.g. float32, float16, bfloat16)")
    return dtype


def cache_dir(*parts: str) -> Path:
    """The toolkit's cache folder (``$DIFFSEG30K_CACHE`` or ``~/.cache/diffseg30k``), created."""
    root = Path(os.environ.get("DIFFSEG30K_CACHE", Path.home() / ".cache" / "diffseg30k"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_image(source: str | os.PathLike | bytes | Image.Image, name: str | None = None,
               max_pixels: int = MAX_PIXELS, load: bool = True) -> Image.Image:
    """Open and fully decode an image, checking its header size before any pixel is decoded.

    Raises :class:`ImageError` naming ``name`` (or the path) for unreadable, truncated or oversized
    files. PIL images pass through after the same size check.
    """
    label = name or (str(source) if not isinstance(source, bytes | Image.Image) else "<image>")
    if isinstance(source, Image.Image):
        image = source
    else:
        try:
            fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
        except OSError as err:
            raise ImageError(f"{label}: cannot read file ({err.strerror or err})") from err
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(fp)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
                Image.DecompressionBombError) as err:
            fp.close()
            raise ImageError(f"{label}: not a readable image ({err})") from err
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(f"{label}: image is {width}x{height} = {width * height} pixels, over the "
                         f"limit of {max_pixels} (set DIFFSEG30K_MAX_PIXELS to raise it)")
    if width == 0 or height == 0:
        raise ImageError(f"{label}: image has zero size")
    if not load:  # header checked; the caller decodes (e.g. only the rows it needs)
        return image
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{label}: truncated or corrupt image data ({err})") from err
    return image


@dataclass
class NormalizedImage:
    """An RGB image ready for a detector and what was done to get it."""

    image: Image.Image
    notes: list[str] = field(default_factory=list)


def normalize_image(source: str | os.PathLike | bytes | Image.Image, name: str = "image",
                    max_pixels: int = MAX_PIXELS, exif_transpose: bool = True) -> NormalizedImage:
    """Decode (size-checked) any still or animated image into 8-bit RGB.

    First frame of animations, EXIF orientation applied (unless ``exif_transpose`` is False, which
    keeps the stored pixel grid that dataset masks are aligned to), CMYK/YCbCr/palette converted,
    16-bit and float scaled to 8 bits, grey replicated, alpha dropped (the detectors read stored RGB
    values). Raises :class:`ImageError` naming ``name``.
    """
    try:
        image = open_image(source, name=name, max_pixels=max_pixels)
    except ImageError as err:
        if "cannot identify image file" in str(err):
            raise ImageError(f"{name}: not an image file (or a format Pillow cannot read)") from err
        raise
    notes = []
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        image.seek(0)
        notes.append(f"multi-frame image: used the first of {frames} frames")
    orientation = image.getexif().get(0x0112, 1) if exif_transpose else 1
    if orientation not in (1, None):
        image = ImageOps.exif_transpose(image)
        notes.append(f"rotated upright from EXIF orientation {orientation}")
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 1 / 257 if values.max() > 255 else (255.0 if mode == "F" and values.max() <= 1 else 1)
        image = Image.fromarray(np.clip(values * scale + 0.5, 0, 255).astype(np.uint8), "L")
        notes.append(f"high bit depth ({mode}) scaled to 8 bits")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        notes.append(f"{image.mode} image: transparency ignored (stored colours analysed)")
        image = image.convert("RGBA")
    elif image.mode in ("L", "1"):
        notes.append("grayscale image: analysed as RGB")
    elif image.mode not in ("RGB", "P"):
        notes.append(f"{image.mode} image converted to RGB")
    return NormalizedImage(image.convert("RGB"), notes)


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (``os.umask`` is process-wide)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what a plain open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Text flavour of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder in a temporary sibling and move it to ``path`` only when the block succeeds.

    A failed or interrupted build leaves no folder at ``path`` that looks complete.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists "
                              "(--overwrite on the command line, overwrite=True in Python, replaces it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial"))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give what a plain mkdir would
        yield tmp
        _normal_permissions(tmp)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)  # left by a run killed mid-cleanup with the same pid
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _normal_permissions(folder: Path) -> None:
    """Give files written by libraries that create them owner-only (safetensors: 0600) the permissions a
    plain ``open()`` would (umask), so weights and staged repositories are readable like other outputs."""
    wanted = 0o666 & ~_umask()
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode | wanted != mode:
                os.chmod(path, mode | wanted)


def safetensors_names(path: str | os.PathLike) -> list[str]:
    """The tensor names of a safetensors file, after checking that its header parses and that its data
    is all there (no tensor is read); a ``ValueError`` naming the file for a truncated or corrupt one."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            return list(handle.keys())
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a readable safetensors file, truncated or corrupt ({err})") from err


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
