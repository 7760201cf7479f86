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


# ------------------------------------------------------------------- 5: --overwrite and sources
def test_overwrite_never_deletes_sources_or_unrelated_folders(tmp_path, capsys):
    project = tmp_path / "proj"
    source = write_synthetic_release(project / "data_src", num=2, size=SIZE, split="val", as_zip=True)
    (project / "thesis.tex").write_text("years of work")
    argv = ["convert", str(source), "--quiet", "--overwrite", "--out"]
    assert main([*argv, str(project)]) == 2
    assert "the output folder contains the source" in capsys.readouterr().err
    assert main([*argv, str(source.parent)]) == 2  # the folder holding the zip: contains it too
    capsys.readouterr()
    release = tmp_path / "release"
    release.mkdir()
    inside = source.rename(release / "val.zip")
    assert main(["convert", str(release), "--quiet", "--overwrite", "--out", str(release)]) == 2
    assert "the output folder is the source" in capsys.readouterr().err
    assert main(["convert", str(release), "--quiet", "--out", str(release / "converted")]) == 2
    assert "lies inside the source" in capsys.readouterr().err
    unrelated = tmp_path / "notes"
    unrelated.mkdir()
    (unrelated / "keep.txt").write_text("mine")
    assert main(["convert", str(inside), "--quiet", "--overwrite", "--out", str(unrelated)]) == 2
    assert "was not written by `diffseg30k convert`" in capsys.readouterr().err
    assert (project / "thesis.tex").exists() and inside.exists() and (unrelated / "keep.txt").exists()
    converted = tmp_path / "converted"
    for _ in range(2):  # a folder the converter wrote is replaced
        assert main(["convert", str(inside), "--quiet", "--overwrite", "--out", str(converted)]) == 0
    capsys.readouterr()


def test_convert_out_dot_and_outputs_under_a_file(tmp_path, monkeypatch, capsys):
    source = write_synthetic_release(tmp_path / "src", num=2, size=SIZE, split="train", as_zip=True)
    monkeypatch.chdir(tmp_path)
    assert main(["convert", str(source), "--quiet", "--out", "."]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "contains the source" in err and "empty name" not in err
    (tmp_path / "file").write_text("x")
    assert main(["convert", str(source), "--quiet", "--out", str(tmp_path / "file" / "out")]) == 2
    assert f"{tmp_path / 'file'} is a file, not a folder" in capsys.readouterr().err


# -------------------------------------------------------------------- 8: one writer per output
def test_convert_waits_for_the_lock_beside_its_output(tmp_path, monkeypatch, capsys):
    import threading

    from diffseg30k.outputs import lock_path, output_lock

    source = write_synthetic_release(tmp_path / "src", num=2, size=SIZE, split="train")
    out = tmp_path / "out"
    assert lock_path(out) == tmp_path / ".out.lock"  # beside the output, whatever the cache
    monkeypatch.setenv("DIFFSEG30K_CACHE", str(tmp_path / "cache-b"))
    done = threading.Event()
    with output_lock(out, "a conversion with another cache"):
        worker = threading.Thread(target=lambda: (convert([source], out, progress=False), done.set()))
        worker.start()
        assert not done.wait(1.0)  # blocked behind the holder
    worker.join(30)
    assert done.is_set() and (out / "conversion.json").is_file()
    assert "waiting for a conversion with another cache" in capsys.readouterr().err
    assert not lock_path(out).exists()


# ------------------------------------------------------------ 11 / 17: disk full, skip-all listing
def test_disk_full_while_converting_is_one_line_and_removes_the_work_folder(tmp_path, monkeypatch, capsys):
    import errno

    import pyarrow.parquet as pq

    def full(self, table, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    source = write_synthetic_release(tmp_path / "src", num=2, size=SIZE, split="train")
    assert main(["convert", str(source), "--quiet", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "disk full" in err and str(tmp_path / "out") in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_skip_with_nothing_converted_prints_the_skipped_files(tmp_path, capsys):
    source = write_synthetic_release(tmp_path / "src", num=2, size=SIZE, split="train")
    for path in source.glob("*.image.png"):
        path.write_bytes(b"bad")
    assert main(["convert", str(source), "--quiet", "--on-error", "skip", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no pair could be converted; skipped 2 files:" in err
    assert f"  {source / '00000001.image.png'}: not a readable image" in err


# ------------------------------------------------------------------------ 15: non-UTF-8 names
def test_non_utf8_file_names_are_named_escaped_and_skippable(tmp_path, capsys):
    import os

    source = write_synthetic_release(tmp_path / "src", num=3, size=SIZE, split="train")
    for kind in ("image", "mask"):
        os.rename(source / f"00000002.{kind}.png", os.fsdecode(bytes(source) + f"/0000\xff002.{kind}.png"
                                                               .encode("latin-1")))
    assert main(["convert", str(source), "--quiet", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "0000\\xff002.image.png: file name is not valid UTF-8" in err
    assert main(["convert", str(source), "--quiet", "--on-error", "skip", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "skipped 2 files:" in out and "0000\\xff002.mask.png: file name is not valid UTF-8" in out


# ---------------------------------------------------------------- 9 / 10: fast verify, lossless masks
def _recompressed_png(path: Path, corrupt) -> bytes:
    """The PNG at ``path`` with its IDAT payload passed through ``corrupt`` and the CRC made valid again."""
    data = bytearray(path.read_bytes())
    pos = 8
    while data[pos + 4:pos + 8] != b"IDAT":
        pos += 12 + int.from_bytes(data[pos:pos + 4], "big")
    length = int.from_bytes(data[pos:pos + 4], "big")
    payload = corrupt(bytes(data[pos + 8:pos + 8 + length]))
    chunk = b"IDAT" + payload
    return (bytes(data[:pos]) + len(payload).to_bytes(4, "big") + chunk
            + zlib.crc32(chunk).to_bytes(4, "big") + bytes(data[pos + 12 + length:]))


@pytest.mark.parametrize("corrupt, problem", [
    (lambda p: p[:2] + bytes(b ^ 0x5A for b in p[2:10]) + p[10:], "compressed image data is invalid"),
    (lambda p: p[: len(p) // 2], "ends early"),
    (lambda p: zlib.compress(zlib.decompress(p)[:-7]), "inflates to"),
], ids=["garbled", "cut", "short-rows"])
def test_fast_verify_inflates_the_idat_stream(tmp_path, corrupt, problem):
    """CRCs valid, zlib data broken: refused by --verify fast, not later inside a DataLoader."""
    source = write_synthetic_release(tmp_path / "src", num=2, size=SIZE, split="train")
    path = source / "00000002.image.png"
    path.write_bytes(_recompressed_png(path, corrupt))
    with pytest.raises(ReleaseError, match=f"00000002.image.png: corrupt PNG: .*{problem}"):
        convert([source], tmp_path / "out", progress=False, verify="fast")


def test_jpeg_mask_named_png_is_refused(tmp_path):
    source = write_synthetic_release(tmp_path / "src", num=2, size=SIZE, split="train")
    mask = source / "00000001.mask.png"
    buffer = io.BytesIO()
    Image.open(mask).convert("L").save(buffer, format="JPEG", quality=90)
    mask.write_bytes(buffer.getvalue())
    with pytest.raises(ReleaseError, match="00000001.mask.png: mask file is JPEG data, not PNG: label maps "
                                           "must be lossless"):
        convert([source], tmp_path / "out", progress=False)


# ----------------------------------------------------------- 14: a corrupt image during training
def test_corrupt_training_image_names_the_row_id_and_shard(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = write_synthetic_release(tmp_path / "src", num=4, size=(40, 40), split="train")
    convert([source], tmp_path / "ds", progress=False)
    shard = next((tmp_path / "ds" / "data").glob("train-*.parquet"))
    table = pq.read_table(shard)
    images = table.column("image").to_pylist()
    images[2] = {**images[2], "bytes": images[2]["bytes"][:200]}  # truncated inside its pixel data
    table = table.set_column(table.schema.get_field_index("image"), "image",
                             pa.array(images, table.schema.field("image").type))
    pq.write_table(table, shard)
    sample_id = table.column("id")[2].as_py()
    code = main(["train", "--dataset", str(tmp_path / "ds"), "--out", str(tmp_path / "run"), "--model",
                 "segformer-tiny", "--from-scratch", "--crop-size", "32", "--batch-size", "4",
                 "--max-steps", "2", "--num-workers", "1", "--log-with", "none", "--no-progress",
                 "--eval-every", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.count("error:") == 1, err
    assert f"training sample id {sample_id} (row 2 of shard {shard}): sample {sample_id} image" in err


# ------------------------------------------------------------ 6: generate, one writer, repair
def test_generate_refuses_a_second_writer_and_a_rerun_repairs_missing_files(tmp_path):
    from diffseg30k.generation import pipeline as gp
    from diffseg30k.outputs import OutputBusy, output_lock

    args = dict(profile="mini", num_images=1, seed=1, size=64, editors=("sd2",), progress=False)
    out = tmp_path / "gen"
    with output_lock(out, "another generate"), pytest.raises(OutputBusy, match="another generate"):
        gp.generate(gp.GenerationConfig(out=out, **args))
    gp.generate(gp.GenerationConfig(out=out, **args))
    published = sorted(out.glob("*.png"))
    assert published, "no sample kept"
    digests = {p.name: p.read_bytes() for p in published}
    published[0].unlink()  # e.g. lost to a second writer before this fix
    gp.generate(gp.GenerationConfig(out=out, **args))
    assert {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))} == digests


@pytest.mark.parametrize("option, problem", [
    (["--size", "0"], "size must be an integer of at least 16"),
    (["--real-fraction", "2.5"], "real_fraction must be between 0 and 1"),
])
def test_generate_refuses_impossible_numbers(tmp_path, capsys, option, problem):
    assert main(["generate", "--out", str(tmp_path / "g"), "--no-progress", *option]) == 2
    assert problem in capsys.readouterr().err


# ------------------------------------------------- 11 / 13 / 16: outputs, weights and shards named
@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from diffseg30k.models.registry import build_model
    from diffseg30k.training.checkpoints import export_detector

    return export_detector(build_model("segformer-tiny", crop_size=32, from_scratch=True),
                           tmp_path_factory.mktemp("ck") / "best", {})


def test_predict_out_naming_a_file_and_truncated_weights_are_one_line(tiny_checkpoint, tmp_path, capsys):
    import shutil

    image = tmp_path / "a.png"
    Image.new("RGB", (32, 32), (9, 9, 9)).save(image)
    (tmp_path / "taken").write_text("x")
    argv = ["predict", str(image), "--checkpoint", str(tiny_checkpoint), "--out"]
    assert main([*argv, str(tmp_path / "taken")]) == 2
    assert "taken: exists and is a file, not a folder" in capsys.readouterr().err
    assert main([*argv, str(tmp_path / "taken" / "sub")]) == 2
    assert "taken is a file, not a folder" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    assert main(["predict", str(image), "--checkpoint", str(broken), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{weights}: not a readable safetensors file, truncated" in err


def test_evaluate_report_under_a_file_is_one_line(tiny_checkpoint, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["evaluate", "--checkpoint", str(tiny_checkpoint), "--dataset", str(tmp_path), "--report",
                 str(tmp_path / "file" / "report")]) == 2
    assert "file is a file, not a folder" in capsys.readouterr().err


def test_output_on_a_read_only_file_system_is_one_line(tmp_path, monkeypatch):
    import os

    from diffseg30k.outputs import OutputError, check_output_dir

    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", lambda path: ReadOnly())
    with pytest.raises(OutputError, match="read-only file system"):
        check_output_dir(tmp_path / "out")


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_load_benchmark_names_a_damaged_shard(tmp_path, damage):
    from diffseg30k import load_benchmark

    source = write_synthetic_release(tmp_path / "src", num=4, size=SIZE, split="train")
    convert([source], tmp_path / "ds", progress=False)
    shard = next((tmp_path / "ds" / "data").glob("train-*.parquet"))
    data = bytearray(shard.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 3] ^= 0x10  # inside a data page: found by its page checksum
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"{shard}: truncated or corrupt parquet shard"):
        load_benchmark(tmp_path / "ds", split="train")


# --------------------------------------------------------------------------------- 18: smaller
def test_metric_merge_of_another_type_names_it():
    from diffseg30k.metrics import DiffSegMetric

    with pytest.raises(TypeError, match="merge\\(\\) takes another DiffSegMetric, got str"):
        DiffSegMetric().merge("x")


@pytest.mark.parametrize("option, problem", [
    ({"eval_every": -1}, "eval_every must be >= 0"), ({"save_every": -3}, "save_every must be >= 0"),
    ({"keep_checkpoints": 0}, "keep_checkpoints must be >= 1")])
def test_train_refuses_negative_schedules(option, problem):
    from diffseg30k.training.config import TrainConfig

    with pytest.raises(ValueError, match=problem):
        TrainConfig(dataset="x", out="y", **option).resolved("adamw")


def test_editor_option_that_must_be_a_number(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path / "g"), "--no-progress", "--editors", "sd2",
                 "--editor-option", "sd2.steps=abc"]) == 2
    assert "editor option sd2.steps='abc': expected an integer >= 1" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


def test_crop_larger_than_every_image_and_no_validation_split(tmp_path, capsys):
    from diffseg30k.data.synthetic import synthetic_dataset
    from diffseg30k.train import TrainConfig, train

    fast = dict(batch_size=2, num_workers=0, threads=1, progress=False, log_with="none", from_scratch=True)
    data = synthetic_dataset(4, (40, 40), seed=1)
    with pytest.raises(ValueError, match="--crop-size 64 is larger than every training image .* 40x40"):
        train(TrainConfig(dataset=data, out=tmp_path / "a", crop_size=64, max_steps=1, **fast))
    train(TrainConfig(dataset=data, out=tmp_path / "b", crop_size=32, max_steps=1, **fast))
    assert "no 'validation' split: nothing is evaluated, and best/ is simply the model at the last step" \
        in capsys.readouterr().out


def test_demo_outputs_live_under_gradio_temp_dir_and_go_at_exit(tmp_path):
    import os
    import subprocess
    import sys

    code = ("from diffseg30k.demo import OutputStore; s = OutputStore.temporary(); "
            "(s.new_slot() / 'x.png').write_bytes(b'1'); print(s.folder)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "GRADIO_TEMP_DIR": str(tmp_path / "gradio")})
    folder = Path(result.stdout.strip())
    assert folder.parent == tmp_path / "gradio" and not folder.exists()


def test_train_and_generate_outputs_under_a_file_are_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    bad = str(tmp_path / "file" / "out")
    assert main(["train", "--dataset", str(tmp_path), "--out", bad, "--log-with", "none"]) == 2
    assert f"{tmp_path / 'file'} is a file, not a folder" in capsys.readouterr().err
    assert main(["generate", "--out", bad, "--no-progress", "--num-images", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'file'} is a file, not a folder" in err


def test_disk_full_while_generating_is_one_line_not_a_failed_sample_each(tmp_path, monkeypatch, capsys):
    import errno

    from diffseg30k.generation import workspace

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(workspace, "atomic_write_bytes", full)
    assert main(["generate", "--out", str(tmp_path / "g"), "--no-progress", "--num-images", "2", "--size",
                 "64", "--editors", "sd2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "disk full (no space left on device)" in err and str(tmp_path / "g") in err
    assert not (tmp_path / "g" / "failures.jsonl").exists()
