"""load_benchmark for every source kind (converted folder, raw zip/folder/parquet, Hub id) and both tasks."""

from __future__ import annotations

import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

import diffseg30k
from diffseg30k.data import load as load_module
from diffseg30k.data.convert import convert
from diffseg30k.data.synthetic import write_synthetic_release

SIZE = (32, 24)


@pytest.fixture
def release(tmp_path) -> Path:
    """A raw release folder holding train.zip and val.zip; one mask carries an ignore (255) band."""
    root = tmp_path / "release"
    write_synthetic_release(root, num=5, size=SIZE, split="train", as_zip=True, unedited_every=5)
    write_synthetic_release(root, num=3, size=SIZE, split="val", as_zip=True, start_id=11)
    return root


def _masks(split) -> dict[str, np.ndarray]:
    return {row["id"]: np.asarray(row["mask"]) for row in split}


def _check_binary(binary, semantic) -> None:
    truth = _masks(semantic)
    for sample_id, mask in _masks(binary).items():
        expected = (truth[sample_id] > 0).astype(np.uint8)
        expected[truth[sample_id] == 255] = 255
        np.testing.assert_array_equal(mask, expected)


def test_converted_folder_both_tasks_and_streaming(tmp_path, release):
    convert([release], tmp_path / "ds", progress=False)
    semantic = diffseg30k.load_benchmark(tmp_path / "ds", progress=False)
    assert isinstance(semantic, datasets.DatasetDict) and set(semantic) == {"train", "validation"}
    assert max(int(m.max()) for m in _masks(semantic["train"]).values()) > 1
    binary = diffseg30k.load_benchmark(str(tmp_path / "ds"), task="binary", progress=False)
    assert binary["train"].column_names == semantic["train"].column_names
    assert binary["train"].features == semantic["train"].features
    _check_binary(binary["train"], semantic["train"])
    row = binary["validation"][0]
    assert row["image"].mode == "RGB" and row["mask"].mode == "L" and isinstance(row["models"], list)

    stream = diffseg30k.load_benchmark(tmp_path / "ds", task="binary", split="train", streaming=True)
    assert isinstance(stream, datasets.IterableDataset)
    _check_binary(list(stream), semantic["train"])
    one = diffseg30k.load_benchmark(tmp_path / "ds", split="val", streaming=True)
    assert [r["id"] for r in one] == semantic["validation"]["id"]


def test_binary_keeps_ignore_and_survives_user_transforms(tmp_path):
    release = write_synthetic_release(tmp_path / "r", num=3, size=SIZE, split="test")
    mask = np.asarray(Image.open(release / "00000001.mask.png")).copy()
    mask[:3] = 255
    Image.fromarray(mask, "L").save(release / "00000001.mask.png")
    binary = diffseg30k.load_benchmark(release, task="binary", split="test", progress=False)
    out = np.asarray(binary[0]["mask"])
    assert (out[:3] == 255).all() and set(np.unique(out)) <= {0, 1, 255}
    # The mapping lives in the data, so a user transform (as a training loop sets) still sees 0/1 masks.
    seen = binary.with_transform(lambda batch: {"m": [np.asarray(m) for m in batch["mask"]]})[0]["m"]
    np.testing.assert_array_equal(seen, out)


def test_binary_mapping_in_parallel_processes_matches(tmp_path, release, monkeypatch):
    semantic = diffseg30k.load_benchmark(release, split="train", progress=False)
    monkeypatch.setattr(load_module, "PARALLEL_BINARY_ROWS", 2)
    monkeypatch.setattr(load_module.os, "cpu_count", lambda: 2)
    binary = load_module.map_task(semantic, "binary")
    assert binary.cache_files and len({f["filename"] for f in binary.cache_files}) > 2  # one per process
    _check_binary(binary, semantic)


def test_raw_sources_are_converted_once_and_cached(tmp_path, release, monkeypatch):
    first = diffseg30k.load_benchmark(release, task="semantic", progress=False)
    zipped = diffseg30k.load_benchmark(release / "val.zip", split="validation", progress=False)
    assert zipped["id"] == first["validation"]["id"]

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr("diffseg30k.data.convert.convert", no_conversion)
    again = diffseg30k.load_benchmark(release, task="binary", progress=False)
    _check_binary(again["train"], first["train"])
    # Touching the source changes the fingerprint: it is converted again.
    (release / "train.zip").touch()
    with pytest.raises(AssertionError, match="converted again"):
        diffseg30k.load_benchmark(release, progress=False)


def test_raw_folder_and_parquet_sources(tmp_path):
    folder = write_synthetic_release(tmp_path / "raw", num=5, size=SIZE, mask_mode="RGB", split="val")
    from_folder = diffseg30k.load_benchmark(folder, task="binary", split="validation", progress=False)
    assert len(from_folder) == 5
    convert([folder], tmp_path / "ds", progress=False)
    parquet = next((tmp_path / "ds" / "data").glob("*.parquet"))
    exported = tmp_path / "export" / "validation-00000-of-00001.parquet"
    exported.parent.mkdir()
    shutil.copy(parquet, exported)
    from_parquet = diffseg30k.load_benchmark(exported, split="validation", progress=False)
    assert from_parquet["id"] == from_folder["id"]
    _check_binary(from_folder, from_parquet)
    _check_binary(diffseg30k.load_benchmark(exported, task="binary", split="validation"), from_parquet)
    zipped = write_synthetic_release(tmp_path / "z", num=4, size=SIZE, mask_mode="P", split="test",
                                     as_zip=True)
    _check_binary(diffseg30k.load_benchmark(zipped, task="binary", split="test"),
                  diffseg30k.load_benchmark(zipped, task="semantic", split="test"))


def _hub_cache_snapshot(repo_id: str, files: dict[str, Path]) -> Path:
    """Lay out files as huggingface_hub's cache holds a downloaded dataset repo snapshot."""
    from huggingface_hub import constants

    repo = Path(constants.HF_HUB_CACHE) / f"datasets--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name, path in files.items():
        shutil.copy(path, snapshot / name)
    return snapshot


def test_hub_repo_with_zip_archives(tmp_path, release):
    """The official repo's form (zip archives), served from the local Hub cache as a download would be."""
    repo_id = "tester/Diffseg30k-zips"
    _hub_cache_snapshot(repo_id, {"train.zip": release / "train.zip", "val.zip": release / "val.zip",
                                  "README.md": Path(__file__)})
    hub = diffseg30k.load_benchmark(repo_id, task="binary", progress=False)
    local = diffseg30k.load_benchmark(release, task="binary", progress=False)
    assert set(hub) == {"train", "validation"}
    for split in hub:
        assert hub[split]["id"] == local[split]["id"]
        _check_binary(hub[split], diffseg30k.load_benchmark(release, split=split, progress=False))
    cached = load_module.resolve_hub(repo_id, progress=False)
    assert cached == load_module.resolve_hub(repo_id, progress=False) and cached.parent.name == "converted"


def test_hub_repo_in_parquet_form_goes_to_load_dataset(tmp_path, release):
    convert([release], tmp_path / "ds", progress=False)
    snapshot = _hub_cache_snapshot("tester/parquet-form", {})
    shutil.copytree(tmp_path / "ds", snapshot, dirs_exist_ok=True)
    assert load_module.resolve_hub("tester/parquet-form") is None
    assert load_module.resolve_source("tester/parquet-form") == "tester/parquet-form"


def test_bad_sources_and_arguments(tmp_path, release):
    with pytest.raises(ValueError, match="not in the local Hub cache"):
        diffseg30k.load_benchmark("nobody/nothing")
    with pytest.raises(ValueError, match="no such file or folder"):
        diffseg30k.load_benchmark(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown task"):
        diffseg30k.load_benchmark(release, task="panoptic")
    convert([release], tmp_path / "ds", progress=False)
    with pytest.raises(ValueError, match="test"):
        diffseg30k.load_benchmark(tmp_path / "ds", split="test")


def test_concurrent_processes_share_one_conversion(tmp_path, release):
    """As under `accelerate launch`: every rank asks for the same raw source at the same time."""
    import subprocess
    import sys

    code = ("import sys; from diffseg30k.data.load import converted_cache; "
            "print(converted_cache([sys.argv[1]], progress=False))")
    runs = [subprocess.Popen([sys.executable, "-c", code, str(release)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    folders = {out.strip().splitlines()[-1] for out, _ in outputs}
    assert len(folders) == 1 and load_module.is_converted_folder(Path(folders.pop()))


def test_binary_mapping_checks_each_mask_before_decoding_it():
    import io

    from diffseg30k.io import ImageError

    buffer = io.BytesIO()
    Image.new("L", (64, 64), 3).save(buffer, format="PNG")
    truncated = buffer.getvalue()[:-30]  # a parquet export not built by the converter: nothing was checked
    with pytest.raises(ImageError, match="00000007.mask.png"):
        load_module._binary_png({"bytes": truncated, "path": "00000007.mask.png"})
    mapped = load_module._binary_png({"bytes": buffer.getvalue(), "path": "00000007.mask.png"})
    assert set(np.unique(np.asarray(Image.open(io.BytesIO(mapped["bytes"]))))) == {1}
