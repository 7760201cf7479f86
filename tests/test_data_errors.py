"""Every bad input gives an error naming the file and the problem; --on-error skip lists each one."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from diffseg30k.cli import main
from diffseg30k.data.convert import convert
from diffseg30k.data.release import ReleaseError
from diffseg30k.data.synthetic import write_synthetic_release
from diffseg30k.labels import LabelSet

SIZE = (32, 24)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb's signature)."""
    data = bytearray(_png(Image.new("RGB", (1, 1))))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


@pytest.fixture
def release(tmp_path) -> Path:
    return write_synthetic_release(tmp_path / "src", num=5, size=SIZE, split="train")


def _convert_error(source, tmp_path, **kwargs) -> str:
    with pytest.raises(ReleaseError) as info:
        convert(source if isinstance(source, list) else [source], tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()
    return str(info.value)


def test_missing_partner(release, tmp_path):
    (release / "00000002.mask.png").unlink()
    message = _convert_error(release, tmp_path)
    assert "00000002.image.png" in message and "missing partner" in message and "00000002.mask.png" in message


@pytest.mark.parametrize("verify", ["fast", "full"])
@pytest.mark.parametrize("damage, problem", [
    (lambda b: b"this is not a png", "not a readable image"),
    (lambda b: b[: len(b) // 2], "truncated"),
    (lambda b: b[:-12], "truncated"),  # IEND missing: every pixel may still decode
], ids=["garbage", "half", "no-iend"])
def test_unreadable_and_truncated_png(release, tmp_path, damage, problem, verify):
    path = release / "00000003.image.png"
    path.write_bytes(damage(path.read_bytes()))
    message = _convert_error(release, tmp_path, verify=verify)
    assert str(path) in message and problem in message


@pytest.mark.parametrize("verify", ["fast", "full"])
def test_corrupted_pixel_data(release, tmp_path, verify):
    path = release / "00000002.image.png"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    message = _convert_error(release, tmp_path, verify=verify)
    assert str(path) in message and "CRC mismatch in chunk b'IDAT'" in message


def test_size_mismatch(release, tmp_path):
    (release / "00000004.mask.png").write_bytes(_png(Image.new("L", (SIZE[0], SIZE[1] + 1))))
    message = _convert_error(release, tmp_path)
    assert "00000004.mask.png" in message and "does not match image size 32x24" in message


def test_mask_values_out_of_range_but_255_allowed(release, tmp_path):
    mask = np.zeros(SIZE[::-1], np.uint8)
    mask[:4] = 255
    (release / "00000001.mask.png").write_bytes(_png(Image.fromarray(mask, "L")))
    convert([release], tmp_path / "ok", progress=False)  # 255 is fine
    mask[5:7] = 9
    mask[8] = 200
    (release / "00000001.mask.png").write_bytes(_png(Image.fromarray(mask, "L")))
    message = _convert_error(release, tmp_path)
    assert "00000001.mask.png" in message and "mask values [9, 200] outside 0-8" in message


def test_rgb_colour_outside_palette(tmp_path):
    release = write_synthetic_release(tmp_path / "src", num=3, size=SIZE, mask_mode="RGB", split="train")
    rgb = np.zeros((*SIZE[::-1], 3), np.uint8)
    rgb[0, 0] = (219, 20, 60)  # one step off Crimson
    (release / "00000002.mask.png").write_bytes(_png(Image.fromarray(rgb, "RGB")))
    message = _convert_error(release, tmp_path)
    assert "00000002.mask.png" in message and "outside the label palette" in message
    assert "(219, 20, 60)" in message


def test_unsupported_mask_mode(release, tmp_path):
    (release / "00000005.mask.png").write_bytes(_png(Image.new("I;16", SIZE)))
    message = _convert_error(release, tmp_path)
    assert "00000005.mask.png" in message and "mask mode I;16 is not supported" in message


def test_duplicate_ids(tmp_path):
    first = write_synthetic_release(tmp_path / "a", num=3, size=SIZE, split="train")
    second = write_synthetic_release(tmp_path / "b", num=2, size=SIZE, split="train", start_id=3)
    message = _convert_error([first, second], tmp_path)
    assert "duplicate id '00000003'" in message and str(second / "00000003.image.png") in message


@pytest.mark.parametrize("member", ["../escape/00000009.image.png", "/abs/00000009.image.png",
                                    "train_copy/../../00000009.mask.png"])
def test_zip_path_traversal(tmp_path, member):
    archive = write_synthetic_release(tmp_path / "src", num=2, size=SIZE, split="train", as_zip=True)
    with zipfile.ZipFile(archive, "a") as handle:
        handle.writestr(member, b"x")
    message = _convert_error(archive, tmp_path)
    assert f"{archive}:{member}" in message
    assert "absolute path" in message or "path traversal" in message


@pytest.mark.parametrize("verify", ["fast", "full"])
@pytest.mark.parametrize("kind", ["image", "mask"])
@pytest.mark.parametrize("width, height", [(9000, 9000), (100_000, 100_000)])
def test_decompression_bomb(release, tmp_path, width, height, kind, verify):
    """Headers claiming 81 Mpx (over the toolkit's limit) and 10 Gpx (PIL's own guard too)."""
    (release / f"00000001.{kind}.png").write_bytes(_png_claiming(width, height))
    message = _convert_error(release, tmp_path, verify=verify)
    assert f"00000001.{kind}.png" in message
    assert "over the limit" in message or "decompression bomb" in message


def test_empty_sources(tmp_path):
    (tmp_path / "empty").mkdir()
    message = _convert_error(tmp_path / "empty", tmp_path)
    assert str(tmp_path / "empty") in message and "empty source" in message
    with zipfile.ZipFile(tmp_path / "train.zip", "w") as handle:
        handle.writestr("train_copy/readme.txt", "nothing here")
    assert "empty source" in _convert_error(tmp_path / "train.zip", tmp_path)
    assert "not a readable zip" in _convert_error(_write(tmp_path / "bad.zip", b"PK nope"), tmp_path)
    assert "no such file" in _convert_error(tmp_path / "missing", tmp_path)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_bad_metadata_line(tmp_path, release):
    (release / "metadata.jsonl").write_text('{"id": "00000001", "base": "real"}\n{oops\n')
    message = _convert_error(release, tmp_path)
    assert f"{release / 'metadata.jsonl'}:2" in message and "bad metadata line" in message
    (release / "metadata.jsonl").write_text('{"id": "00000001", "base": "painting"}\n')
    assert "base must be 'real' or 'ai'" in _convert_error(release, tmp_path)


def test_metadata_row_without_pair(tmp_path, release):
    (release / "metadata.jsonl").write_text('{"id": "00000001", "base": "real"}\n{"id": "00000042"}\n')
    message = _convert_error(release, tmp_path)
    assert f"{release / 'metadata.jsonl'}:2" in message and "'00000042' but no 00000042.image.png" in message


def test_label_set_override_limits_values(release, tmp_path):
    labels = LabelSet(id2label={0: "background", 1: "sd2"}, colors={0: (0, 0, 0), 1: (220, 20, 60)})
    message = _convert_error(release, tmp_path, label_set=labels)
    assert "outside 0-1" in message


def test_skip_lists_every_bad_file_and_keeps_the_rest(tmp_path, capsys):
    release = write_synthetic_release(tmp_path / "src", num=8, size=SIZE, split="train")
    (release / "00000001.mask.png").unlink()
    (release / "00000002.image.png").write_bytes(b"garbage")
    (release / "00000003.mask.png").write_bytes(_png(Image.new("L", (5, 5))))
    (release / "00000004.mask.png").write_bytes(_png(Image.new("L", SIZE, 42)))
    dup = write_synthetic_release(tmp_path / "dup", num=1, size=SIZE, split="train", start_id=8)
    summary = convert([release, dup], tmp_path / "out", on_error="skip", progress=False)
    assert summary.splits == {"train": 4}
    reasons = dict(summary.skipped)
    assert len(summary.skipped) == 5
    assert "missing partner" in reasons[str(release / "00000001.image.png")]
    assert "not a readable image" in reasons[str(release / "00000002.image.png")]
    assert "does not match image size" in reasons[str(release / "00000003.mask.png")]
    assert "outside 0-8" in reasons[str(release / "00000004.mask.png")]
    assert "duplicate id" in reasons[str(dup / "00000008.image.png")]
    record = json.loads((tmp_path / "out" / "conversion.json").read_text())
    # conversion.json names files relative to their source's folder (it is published as is)
    assert {s["file"] for s in record["skipped"]} == {
        str(Path(f).relative_to(tmp_path / ("dup" if "/dup/" in f else "src"))) for f in reasons}
    assert sorted(datasets.load_dataset(str(tmp_path / "out"), split="train")["id"]) == [
        "00000005", "00000006", "00000007", "00000008"]

    argv = ["convert", str(release), "--out", str(tmp_path / "cli"), "--quiet"]
    assert main([*argv, "--on-error", "skip"]) == 0
    out = capsys.readouterr().out
    assert "skipped 4 files:" in out and str(release / "00000002.image.png") in out
    assert main(["convert", str(release), "--out", str(tmp_path / "cli2"), "--quiet"]) == 2
    assert "00000001.image.png: missing partner" in capsys.readouterr().err


def test_skip_everything_is_still_an_error(tmp_path):
    release = write_synthetic_release(tmp_path / "src", num=2, size=SIZE, split="train")
    for path in release.glob("*.image.png"):
        path.write_bytes(b"bad")
    message = _convert_error(release, tmp_path, on_error="skip")
    assert "no pair could be converted" in message
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
