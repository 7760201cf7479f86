"""Issue 11: adversarial inputs -- zip bombs, source deletion, concurrent writers, corrupt streams and
unwritable outputs -- each refused with one line naming the file."""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffseg30k.cli import main
from diffseg30k.data.convert import convert
from diffseg30k.data.release import ReleaseError
from diffseg30k.data.synthetic import write_synthetic_release

SIZE = (32, 24)


def _png(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **kwargs)
    return buffer.getvalue()


def _png_header(width: int, height: int) -> bytes:
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + len(ihdr).to_bytes(4, "big") + b"IHDR" + ihdr
            + zlib.crc32(b"IHDR" + ihdr).to_bytes(4, "big"))


def _zip_with(tmp_path: Path, image: bytes, name: str = "train.zip") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("train/00000001.image.png", image)
        archive.writestr("train/00000001.mask.png", _png(Image.new("L", SIZE, 0)))
    return path


# ----------------------------------------------------------------------------------- 3: zip bombs
def test_zip_bomb_member_is_refused_from_its_compression_ratio(tmp_path, monkeypatch):
    """A member inflating 1000:1 is refused before a byte of it is inflated."""
    archive = _zip_with(tmp_path, _png_header(*SIZE) + bytes(8 << 20))
    inflated = []
    original = zipfile.ZipExtFile.read

    def counting(self, n=-1):
        data = original(self, n)
        inflated.append(len(data))
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting)
    with pytest.raises(ReleaseError, match=r"00000001.image.png: member inflates \d+:1 .*zip bomb"):
        convert([archive], tmp_path / "out", progress=False)
    assert sum(inflated) < 1 << 20  # only the small mask member was read


def test_member_larger_than_its_declared_image_is_refused_after_the_header(tmp_path):
    """Incompressible bytes after a 32x24 PNG header: far more than such an image can take."""
    noise = np.random.default_rng(0).integers(0, 256, 3 << 20, np.uint8).tobytes()
    archive = _zip_with(tmp_path, _png_header(*SIZE) + noise)
    with pytest.raises(ReleaseError, match=r"00000001.image.png: member is \d+ bytes, more than an image "
                                           r"of the size its header declares can take"):
        convert([archive], tmp_path / "out", progress=False)


def test_metadata_member_is_streamed(tmp_path):
    release = write_synthetic_release(tmp_path / "src", num=2, size=SIZE, split="train", as_zip=True)
    with zipfile.ZipFile(release, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("train_copy/metadata.jsonl", "\n" * (4 << 20) + '{"id": 1, "base": "real"}\n')
    summary = convert([release], tmp_path / "out", progress=False)
    assert summary.splits == {"train": 2}
