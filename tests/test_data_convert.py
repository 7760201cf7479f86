"""Conversion of every source kind into a parquet dataset folder, checked through datasets.load_dataset."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from diffseg30k.cli import main
from diffseg30k.data.convert import convert, parse_size
from diffseg30k.data.synthetic import encode_mask, synthetic_pair, write_synthetic_release
from diffseg30k.labels import COLORS, GENERATOR_NAMES

SIZE = (40, 24)


def _source_files(source: Path) -> dict[str, tuple[bytes, bytes]]:
    """{id: (image bytes, mask bytes)} straight from a release zip or folder."""
    if source.suffix == ".zip":
        with zipfile.ZipFile(source) as archive:
            files = {Path(n).name: archive.read(n) for n in archive.namelist()}
    else:
        files = {p.name: p.read_bytes() for p in source.rglob("*.png")}
    ids = sorted({name.split(".")[0] for name in files})
    return {i: (files[f"{i}.image.png"], files[f"{i}.mask.png"]) for i in ids}


def _label_map(mask_bytes: bytes) -> np.ndarray:
    """Independent decoding of a source mask: L/P indices, or RGB looked up colour by colour."""
    image = Image.open(io.BytesIO(mask_bytes))
    if image.mode in ("L", "P"):
        return np.asarray(image)
    rgb = np.asarray(image)
    out = np.full(rgb.shape[:2], 77, np.uint8)
    for label, colour in {**COLORS, 255: (255, 255, 255)}.items():
        out[(rgb == colour).all(-1)] = label
    assert (out != 77).all()
    return out


@pytest.mark.parametrize("as_zip", [True, False], ids=["zip", "folder"])
@pytest.mark.parametrize("mask_mode", ["L", "P", "RGB"])
def test_round_trip_masks_identical(tmp_path, mask_mode, as_zip):
    train = write_synthetic_release(tmp_path / "release", num=6, size=SIZE, mask_mode=mask_mode,
                                    split="train", as_zip=as_zip, unedited_every=3)
    val = write_synthetic_release(tmp_path / "release", num=3, size=SIZE, mask_mode=mask_mode,
                                  split="val", as_zip=as_zip, start_id=101)
    summary = convert([train, val], tmp_path / "out", progress=False)
    assert summary.splits == {"train": 6, "validation": 3} and not summary.skipped

    loaded = datasets.load_dataset(str(tmp_path / "out"))
    assert set(loaded) == {"train", "validation"}
    for split, source in (("train", train), ("validation", val)):
        expected = _source_files(source)
        rows = {row["id"]: row for row in loaded[split]}
        assert set(rows) == set(expected)
        raw_images = loaded[split].cast_column("image", datasets.Image(decode=False))
        for row, raw in zip(loaded[split], raw_images):
            image_bytes, mask_bytes = expected[row["id"]]
            truth = _label_map(mask_bytes)
            assert row["mask"].mode == "L" and row["image"].mode == "RGB"
            np.testing.assert_array_equal(np.asarray(row["mask"]), truth)
            assert raw["image"]["bytes"] == image_bytes  # image PNG copied, not re-encoded
            present = [GENERATOR_NAMES[i - 1] for i in np.unique(truth) if 0 < i < 255]
            assert row["models"] == present
            assert row["edited_fraction"] == pytest.approx((truth > 0).mean(), abs=1e-6)
    assert json.loads((tmp_path / "out" / "id2label.json").read_text())["8"] == "kandinsky"


def test_card_declares_configs_and_features(tmp_path):
    source = write_synthetic_release(tmp_path / "r", num=5, size=SIZE, split="test")
    convert([source], tmp_path / "out", progress=False)
    card = datasets.load_dataset_builder(str(tmp_path / "out"))
    assert card.info.features["mask"] == datasets.Image()
    assert card.info.features["models"] == datasets.List(datasets.Value("string"))
    readme = (tmp_path / "out" / "README.md").read_text()
    for needle in ("configs:", "path: data/test-*", "dataset_info:", "license: other", "kandinsky",
                   "(255, 0, 0)", "@article{ci2025diffseg30k"):
        assert needle in readme
    assert sorted(p.name for p in (tmp_path / "out" / "data").iterdir()) == ["test-00000-of-00001.parquet"]


def _generation_output(root: Path, num: int = 10) -> Path:
    root.mkdir(parents=True)
    lines = []
    for k in range(1, num + 1):
        image, mask = synthetic_pair(k, SIZE)
        image.save(root / f"{k:08d}.image.png")
        encode_mask(mask, "L").save(root / f"{k:08d}.mask.png")
        generators = [GENERATOR_NAMES[i - 1] for i in np.unique(mask) if i > 0]
        # The row format of diffseg30k.generation.pipeline (extra fields included).
        turns = [{"generator": g, "edit_type": "addition", "prompt": f"add a cat {k}", "removal_prompt": "",
                  "object": "cat", "mask_area": 0.1, "seed": k * 10 + t, "quality": 4, "quality_reason": "ok"}
                 for t, g in enumerate(generators)]
        lines.append(json.dumps({"id": f"{k:08d}", "base": "real" if k % 2 else "ai", "base_generator": None,
                                 "base_source": f"coco/{k}.jpg", "caption": None, "models": generators,
                                 "turns": turns}))
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_generation_output_metadata_and_8_2_fallback(tmp_path):
    source = _generation_output(tmp_path / "gen")
    convert([source], tmp_path / "out", progress=False)
    loaded = datasets.load_dataset(str(tmp_path / "out"))
    # No split in the name: sorted ids, every 5th to validation.
    assert sorted(loaded["validation"]["id"]) == ["00000005", "00000010"]
    assert len(loaded["train"]) == 8
    row = next(r for r in loaded["train"] if r["id"] == "00000003")
    assert row["base"] == "real" and row["base_source"] == "coco/3.jpg"
    assert [t["generator"] for t in row["turns"]] == row["models"]
    assert row["turns"][0]["prompt"] == "add a cat 3" and row["turns"][0]["quality"] == 4.0
    assert row["turns"][0]["seed"] == 30
    assert json.loads(row["metadata"])["turns"][0]["object"] == "cat"

    # A converted folder's parquet is itself a valid source: metadata survives a second conversion.
    convert([tmp_path / "out" / "data"], tmp_path / "again", progress=False)
    again = datasets.load_dataset(str(tmp_path / "again"))
    assert sorted(again["validation"]["id"]) == ["00000005", "00000010"]
    assert next(r for r in again["train"] if r["id"] == "00000003") == row


def test_parquet_export_source(tmp_path):
    """The Hub's parquet form: image/mask structs with bytes and path, split from the folder name."""
    folder = tmp_path / "export" / "default" / "validation"
    folder.mkdir(parents=True)
    images, masks, truths = [], [], []
    for k in range(1, 5):
        image, mask = synthetic_pair(k, SIZE)
        for target, pil, name in ((images, image, "image"), (masks, encode_mask(mask, "P"), "mask")):
            buffer = io.BytesIO()
            pil.save(buffer, format="PNG")
            target.append({"bytes": buffer.getvalue(), "path": f"{k:08d}.{name}.png"})
        truths.append(mask)
    pq.write_table(pa.table({"image": images, "mask": masks}), folder / "0000.parquet")
    convert([tmp_path / "export"], tmp_path / "out", progress=False)
    loaded = datasets.load_dataset(str(tmp_path / "out"), split="validation")
    assert loaded["id"] == ["00000001", "00000002", "00000003", "00000004"]
    for row, truth in zip(loaded, truths):
        np.testing.assert_array_equal(np.asarray(row["mask"]), truth)


def test_extra_real_negatives(tmp_path):
    source = write_synthetic_release(tmp_path / "r", num=4, size=SIZE, split="train")
    real = tmp_path / "coco"
    real.mkdir()
    for k in range(3):
        synthetic_pair(50 + k, (30, 20), edited=False)[0].save(real / f"img{k}.jpg", quality=90)
    Image.new("RGBA", (16, 16), (1, 2, 3, 4)).save(real / "alpha.png")
    summary = convert([source], tmp_path / "out", extra_real=real, progress=False)
    assert summary.splits == {"train": 8}
    rows = {r["id"]: r for r in datasets.load_dataset(str(tmp_path / "out"), split="train")}
    assert {"real_img0", "real_img1", "real_img2", "real_alpha"} <= set(rows)
    for key in ("real_img0", "real_alpha"):
        assert rows[key]["image"].mode == "RGB" and rows[key]["models"] == []
        assert rows[key]["edited_fraction"] == 0.0
        assert rows[key]["mask"].size == rows[key]["image"].size
        assert not np.asarray(rows[key]["mask"]).any()


def test_sharding_and_row_groups(tmp_path):
    source = write_synthetic_release(tmp_path / "r", num=10, size=SIZE, split="train")
    summary = convert([source], tmp_path / "out", shard_size=1, rows_per_group=3, progress=False)
    names = sorted(p.name for p in (tmp_path / "out" / "data").iterdir())
    assert names == [f"train-{i:05d}-of-00004.parquet" for i in range(4)] and summary.shards == 4
    assert len(datasets.load_dataset(str(tmp_path / "out"), split="train")) == 10
    assert parse_size("500MB") == 500 * 1024**2 and parse_size("1GiB") == 1024**3 and parse_size(7) == 7
    with pytest.raises(ValueError, match="cannot read size"):
        parse_size("lots")


def test_output_is_atomic_and_overwrite(tmp_path):
    source = write_synthetic_release(tmp_path / "r", num=3, size=SIZE, split="train")
    convert([source], tmp_path / "out", progress=False)
    with pytest.raises(FileExistsError):
        convert([source], tmp_path / "out", progress=False)
    more = write_synthetic_release(tmp_path / "r2", num=5, size=SIZE, split="train")
    convert([more], tmp_path / "out", overwrite=True, progress=False)
    assert len(datasets.load_dataset(str(tmp_path / "out"), split="train")) == 5
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_convert(tmp_path, capsys):
    source = write_synthetic_release(tmp_path / "r", num=4, size=SIZE, split="train", as_zip=True)
    assert main(["convert", str(source), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert "wrote 4 pairs" in capsys.readouterr().out
    assert main(["convert", str(source), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "nothing"), "--out", str(tmp_path / "o2")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    labels = tmp_path / "id2label.json"
    labels.write_text(json.dumps({str(i): f"class{i}" for i in range(9)}))
    argv = [str(source), "--out", str(tmp_path / "o3"), "--verify", "full", "--workers", "1",
            "--shard-size", "1KB", "--id2label", str(labels), "--overwrite", "--quiet"]
    assert main(["convert", *argv]) == 0
    assert json.loads((tmp_path / "o3" / "id2label.json").read_text())["3"] == "class3"
    assert datasets.load_dataset(str(tmp_path / "o3"), split="train")[0]["models"][0].startswith("class")


def _dataset_script():
    import importlib.util

    path = Path(__file__).parents[1] / "dataset_script" / "build.py"
    spec = importlib.util.spec_from_file_location("dataset_script_build", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path.with_name("README.md")


def test_dataset_script_builds_and_its_card_template_is_current(tmp_path):
    build, template = _dataset_script()
    source = write_synthetic_release(tmp_path / "r", num=3, size=SIZE, split="val", as_zip=True)
    assert build.main([str(source), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert datasets.load_dataset(str(tmp_path / "out"), split="validation").num_rows == 3
    build.main(["--card-template", str(tmp_path / "card.md")])
    assert (tmp_path / "card.md").read_text() == template.read_text()


def test_palette_masks_by_index_or_by_colour(tmp_path):
    """P masks: the index is the label (label or display palette) unless the colours carry the labels."""
    folder = tmp_path / "src" / "test_copy"
    folder.mkdir(parents=True)
    truths = {}
    for k in range(1, 4):
        image, mask = synthetic_pair(k, SIZE)
        image.save(folder / f"{k:08d}.image.png")
        truths[f"{k:08d}"] = mask
    quantised = encode_mask(truths["00000001"], "RGB").quantize(colors=16, method=Image.Quantize.MAXCOVERAGE)
    assert not np.array_equal(np.asarray(quantised), truths["00000001"])  # indices are not the labels
    quantised.save(folder / "00000001.mask.png")
    display = Image.fromarray(truths["00000002"], "P")
    display.putpalette([v for i in range(256) for v in (i * 7 % 256, i, 255 - i)])
    display.save(folder / "00000002.mask.png")
    encode_mask(truths["00000003"], "P").save(folder / "00000003.mask.png")
    convert([folder], tmp_path / "out", progress=False)
    for row in datasets.load_dataset(str(tmp_path / "out"), split="test"):
        np.testing.assert_array_equal(np.asarray(row["mask"]), truths[row["id"]])


def test_zip_with_windows_separators_and_junk(tmp_path):
    archive = tmp_path / "val.zip"
    image, mask = synthetic_pair(1, SIZE)
    with zipfile.ZipFile(archive, "w") as handle:
        for name, pil in (("image", image), ("mask", encode_mask(mask, "L"))):
            buffer = io.BytesIO()
            pil.save(buffer, format="PNG")
            handle.writestr(f"val_copy\\00000001.{name}.png", buffer.getvalue())
        handle.writestr("__MACOSX/val_copy/._00000001.image.png", b"junk")
        handle.writestr("val_copy/notes.txt", b"ignored")
    convert([archive], tmp_path / "out", progress=False)
    row = datasets.load_dataset(str(tmp_path / "out"), split="validation")[0]
    assert row["id"] == "00000001"
    np.testing.assert_array_equal(np.asarray(row["mask"]), mask)


def test_interrupted_conversion_resumes_after_finished_shards(tmp_path, monkeypatch):
    from diffseg30k.data import decode

    source = write_synthetic_release(tmp_path / "r", num=9, size=SIZE, split="train")
    (source / "00000004.mask.png").write_bytes(b"bad")  # skipped inside the part finished before the stop
    kwargs = {"shard_size": 1, "rows_per_group": 2, "workers": 1, "progress": False, "on_error": "skip"}
    reference = convert([source], tmp_path / "reference", **kwargs)
    original, calls = decode.decode_pair, []

    def recording(entry, *args, stop_at=None):
        calls.append(entry.id)
        if len(calls) == stop_at:
            raise KeyboardInterrupt
        return original(entry, *args)

    monkeypatch.setattr(decode, "decode_pair", lambda entry, *args: recording(entry, *args, stop_at=6))
    with pytest.raises(KeyboardInterrupt):
        convert([source], tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists() and (tmp_path / ".out.convert-work" / "progress.json").exists()

    calls.clear()
    monkeypatch.setattr(decode, "decode_pair", lambda entry, *args: recording(entry, *args))
    summary = convert([source], tmp_path / "out", **kwargs)
    assert calls == ["00000006", "00000007", "00000008", "00000009"]  # shards [1, 2] and [3, 5] were kept
    assert summary.splits == reference.splits == {"train": 8} and summary.skipped == reference.skipped
    made = sorted((tmp_path / "out" / "data").iterdir())
    expected = sorted((tmp_path / "reference" / "data").iterdir())
    assert [p.name for p in made] == [p.name for p in expected]
    assert all(pq.read_table(a).equals(pq.read_table(b)) for a, b in zip(made, expected))
    assert (tmp_path / "out" / "conversion.json").read_text() == (tmp_path / "reference" / "conversion.json"
                                                                  ).read_text().replace("reference", "out")
    assert not (tmp_path / ".out.convert-work").exists()


def test_conversion_record_names_sources_without_local_paths(tmp_path):
    import json

    from diffseg30k.data.convert import convert
    from diffseg30k.data.synthetic import write_synthetic_release

    source = write_synthetic_release(tmp_path / "raw", num=3, split="train", as_zip=True)
    convert([source], tmp_path / "out", progress=False)
    record = json.loads((tmp_path / "out" / "conversion.json").read_text())
    assert record["sources"] == ["train.zip"]
    assert str(tmp_path) not in (tmp_path / "out" / "conversion.json").read_text()


def test_resumed_conversion_lists_each_scan_problem_once(tmp_path, monkeypatch):
    from diffseg30k.data import decode

    source = write_synthetic_release(tmp_path / "r", num=6, size=SIZE, split="train")
    (source / "00000099.image.png").write_bytes((source / "00000001.image.png").read_bytes())  # no mask
    kwargs = {"shard_size": 1, "rows_per_group": 2, "workers": 1, "progress": False, "on_error": "skip"}
    reference = convert([source], tmp_path / "reference", **kwargs)
    original, calls = decode.decode_pair, []

    def stop_at_fourth(entry, *args):
        calls.append(entry.id)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return original(entry, *args)

    monkeypatch.setattr(decode, "decode_pair", stop_at_fourth)
    with pytest.raises(KeyboardInterrupt):
        convert([source], tmp_path / "out", **kwargs)
    monkeypatch.setattr(decode, "decode_pair", original)
    summary = convert([source], tmp_path / "out", **kwargs)
    assert len(reference.skipped) == 1 and summary.skipped == reference.skipped


def test_parquet_row_groups_are_read_once_by_decoders_straddling_a_boundary(tmp_path, monkeypatch):
    from diffseg30k.data.release import scan_sources

    source = write_synthetic_release(tmp_path / "r", num=16, size=SIZE, split="train")
    convert([source], tmp_path / "first", progress=False, rows_per_group=8)
    entries = scan_sources(sorted((tmp_path / "first" / "data").glob("*.parquet"))).entries
    reads, original = [], pq.ParquetFile.read_row_group

    def counting(self, group, *args, **kwargs):
        if kwargs.get("columns") == ["image", "mask"]:
            reads.append(group)
        return original(self, group, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counting)
    for index in (6, 8, 7, 9, 7, 10):  # decoding threads finish in any order around row 8
        entries[index].read()
    assert reads == [0, 1]
