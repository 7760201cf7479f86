"""IML layouts (IMDL-BenCo ManiDataset/JsonDataset, CocoGlide, Hub parquet) and the dataset presets:
converted as binary-only datasets, loaded by path or preset name, bad input named."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import diffseg30k
from diffseg30k.cli import main
from diffseg30k.data import foreign, presets
from diffseg30k.data.convert import convert
from diffseg30k.data.release import ReleaseError

sys.path.insert(0, str(Path(__file__).parent))
import _foreign_fixtures as fx  # noqa: E402


def _masks(split) -> dict[str, np.ndarray]:
    return {row["id"]: np.asarray(row["mask"]) for row in split}


def test_mani_pairs_by_name_with_mask_suffix_and_binarises_jpeg_masks(tmp_path):
    root = fx.write_mani(tmp_path / "CASIA-like", num=4)
    fx.image(7).save(root / "Tp" / "im4_a.tif")  # any suffix after _ - . ; the longest image-name prefix wins
    fx.mask_image(4).save(root / "Gt" / "im4_a_edgemask.bmp")
    summary = convert([root], tmp_path / "out", progress=False)
    assert summary.splits == {"test": 5} and not summary.skipped
    assert json.loads((tmp_path / "out" / "id2label.json").read_text()) == {"0": "background", "1": "edited"}
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Binary-only" in card and "127.5" in card and "mani layout" in card
    masks = _masks(diffseg30k.load_benchmark(tmp_path / "out", task="binary", split="test", progress=False))
    for k in range(4):  # JPEG-compressed 0/255 masks come back exactly (threshold 127.5)
        np.testing.assert_array_equal(masks[f"im{k}"], fx.region(k))
    np.testing.assert_array_equal(masks["im4_a"], fx.region(4))
    with pytest.raises(ValueError, match="binary-only.*task='binary'"):
        diffseg30k.load_benchmark(tmp_path / "out", progress=False)


def test_binarisation_threshold_and_modes():
    grey = Image.fromarray(np.array([[0, 127, 128, 255]], np.uint8), "L")
    assert np.asarray(foreign.binarise(grey)).tolist() == [[0, 0, 1, 1]]
    pixels = [[[255, 255, 0], [255, 0, 0], [130, 128, 124], [129, 128, 126]]]  # sums 510, 255, 382, 383
    rgb = Image.fromarray(np.array(pixels, np.uint8), "RGB")
    assert np.asarray(foreign.binarise(rgb)).tolist() == [[1, 0, 0, 1]]  # mean of the channels > 127.5
    deep = Image.fromarray(np.array([[0, 30000, 40000]], np.uint16))
    assert np.asarray(foreign.binarise(deep)).tolist() == [[0, 0, 1]]
    photo = np.full((1, 3, 4), 250, np.uint8)  # a bright photo whose transparent hole is the edit
    photo[0, 1, 3] = 0
    assert np.asarray(foreign.binarise(Image.fromarray(photo, "RGBA"))).tolist() == [[0, 1, 0]]
    photo[..., 3] = 255  # opaque: back to the brightness rule
    assert np.asarray(foreign.binarise(Image.fromarray(photo, "RGBA"))).tolist() == [[1, 1, 1]]


def test_mani_bad_inputs_are_named_and_skippable(tmp_path, capsys):
    lonely = tmp_path / "lonely"
    (lonely / "Tp").mkdir(parents=True)
    fx.image(0).save(lonely / "Tp" / "a.png")
    with pytest.raises(ReleaseError, match=r"lonely: has Tp/ but no Gt/ folder"):
        convert([lonely], tmp_path / "o1", progress=False)
    assert main(["convert", str(lonely), "--out", str(tmp_path / "o1"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lonely: has Tp/ but no Gt/ folder" in err[0]

    root = fx.write_mani(tmp_path / "bad", num=3, jpeg_masks=False)
    fx.image(9).save(root / "Tp" / "orphan.jpg")
    fx.mask_image(1).save(root / "Gt" / "stray_gt.png")
    fx.mask_image(2, (20, 20)).save(root / "Gt" / "im2_gt.png")  # another size than its image
    fx.image(8).save(tmp_path / "elsewhere.png")
    (root / "Tp" / "link.png").symlink_to(tmp_path / "elsewhere.png")
    with pytest.raises(ReleaseError, match=r"link\.png: a link to .*elsewhere\.png, outside .* \(and 2 more"):
        convert([root], tmp_path / "o2", progress=False)
    summary = convert([root], tmp_path / "o3", on_error="skip", progress=False)
    reasons = {f.split("/")[-1]: r for f, r in summary.skipped}
    assert summary.splits == {"test": 2}
    assert "unpaired: no image" in reasons["stray_gt.png"] and "unpaired: no mask" in reasons["orphan.jpg"]
    assert "outside" in reasons["link.png"]
    assert "mask size 20x20 does not match image size 32x24" in reasons["im2_gt.png"]


def test_json_dataset_negatives_and_bad_entries(tmp_path):
    listing = fx.write_json_dataset(tmp_path / "js", num=4)
    table = diffseg30k.load_benchmark(listing, task="binary", split="test", progress=False)
    masks = _masks(table)
    assert set(masks) == {"j0", "j1", "j2", "j3"} and not masks["j1"].any()
    np.testing.assert_array_equal(masks["j2"], fx.region(2))
    # the cache key covers the files the JSON names: a changed mask is converted again
    fx.mask_image(5).save(tmp_path / "js" / "Gt" / "j2.png")
    again = _masks(diffseg30k.load_benchmark(listing, task="binary", split="test", progress=False))
    np.testing.assert_array_equal(again["j2"], fx.region(5))

    (tmp_path / "outside.png").write_bytes(fx.encoded(fx.image(1), "PNG"))
    items = json.loads(listing.read_text()) + [["../outside.png", "Negative"], ["Tp/missing.png", "Negative"],
                                               "not-a-pair"]
    listing.write_text(json.dumps(items))
    with pytest.raises(ReleaseError, match=r"list\.json\[4\] image: path '\.\./outside\.png' lies outside"):
        convert([listing], tmp_path / "o1", progress=False)
    summary = convert([listing], tmp_path / "o2", on_error="skip", progress=False)
    assert summary.splits == {"test": 4}
    assert [f.rsplit("list.json", 1)[1] for f, _ in summary.skipped] == ["[4] image", "[5] image", "[6]"]
    assert "missing file 'Tp/missing.png'" in summary.skipped[1][1]


def test_cocoglide_folder_layout_with_prompts(tmp_path):
    root = fx.write_cocoglide(tmp_path / "CocoGlide", num=3)
    convert([root], tmp_path / "out", preset="cocoglide", progress=False)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "# CocoGlide" in card and "TruFor" in card and "cocoglide layout" in card
    table = diffseg30k.load_benchmark(tmp_path / "out", task="binary", split="test", progress=False)
    rows = {r["id"]: r for r in table}
    assert len(rows) == 6
    fake = rows["glide_inpainting_val2017_1001_up"]
    np.testing.assert_array_equal(np.asarray(fake["mask"]), fx.region(1, (24, 24)))
    assert fake["turns"][0]["generator"] == "glide" and fake["turns"][0]["prompt"] == "a dog 1"
    assert not np.asarray(rows["dog_1001"]["mask"]).any() and rows["dog_1001"]["base"] == "real"
    (root / "table.csv").unlink()  # without the table: real/fake/mask matched by COCO image id
    again = diffseg30k.load_benchmark(root, task="binary", split="test", progress=False)
    masks = _masks(again)
    assert len(masks) == 6 and not masks["dog_1002"].any()
    np.testing.assert_array_equal(masks["glide_inpainting_val2017_1002_up"], fx.region(2, (24, 24)))


HUB = {"cocoglide": ("cocoglide", "data/test-00000-of-00001.parquet", "test"),
       "opensdi-test": ("opensdi", "data/sdxl-00000-of-00001.parquet", "sdxl"),
       "sid-set": ("sid", "data/validation-00000-of-00001.parquet", "validation"),
       "magicbrush": ("magicbrush", "data/dev-00000-of-00001.parquet", "dev")}


@pytest.mark.parametrize("name", sorted(HUB))
def test_hub_presets_load_by_id_from_their_own_columns(tmp_path, monkeypatch, name):
    import huggingface_hub

    kind, shard, split = HUB[name]
    snapshot = tmp_path / "snapshot"
    fx.write_parquet(snapshot / shard, fx.hub_rows(kind))
    calls = []

    def fake_download(repo_id, repo_type, revision, allow_patterns):
        calls.append((repo_id, repo_type, allow_patterns))
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    preset = presets.get_preset(name)
    table = diffseg30k.load_benchmark(name, task="binary", split=split, progress=False)
    assert calls == [(preset.hub_id, "dataset", list(preset.hub_files))]
    by_id = diffseg30k.load_benchmark(preset.hub_id, task="binary", split=split, progress=False)
    assert by_id["id"] == table["id"]  # the Hub id is the preset too (converted from its own columns)
    masks = [np.asarray(m) for m in table["mask"]]
    assert len(masks) == 4 and all(m.shape == (fx.SIZE[1], fx.SIZE[0]) for m in masks)
    for k, mask in enumerate(masks):
        edited = k == 2 if kind == "sid" else kind == "magicbrush" or k % 2
        if edited:
            np.testing.assert_array_equal(mask, fx.region(k))
        elif kind == "sid" and k % 2:  # full synthetic, no mask: every pixel generated
            assert mask.all()
        else:
            assert not mask.any()
    if kind == "magicbrush":
        assert table["id"][0] == "500_1"
    with pytest.raises(ValueError, match="binary-only"):
        diffseg30k.load_benchmark(name, split=split, progress=False)


@pytest.mark.parametrize("name", ["tgif", "tgif2", "autosplice"])
def test_download_only_presets_read_a_folder_in_their_layout(tmp_path, name):
    preset = presets.get_preset(name)
    assert preset.hub_id is None and preset.download.startswith("https://") and preset.layout == "mani"
    with pytest.raises(ValueError, match=f"{name}: not on the Hub; download it from"):
        diffseg30k.load_benchmark(name, task="binary", progress=False)
    root = fx.write_mani(tmp_path / name, num=2)
    assert main(["convert", str(root), "--out", str(tmp_path / "out"), "--preset", name, "--quiet"]) == 0
    card = (tmp_path / "out" / "README.md").read_text()
    assert preset.title in card and preset.licence.split(" (")[0] in card


def test_preset_registry_entries_are_complete(tmp_path):
    assert {"cocoglide", "opensdi-test", "sid-set", "tgif", "tgif2", "magicbrush", "autosplice"} <= set(
        presets.PRESETS)
    for preset in presets.PRESETS.values():
        assert preset.layout in foreign.LAYOUTS and preset.licence and preset.citation and preset.description
        assert preset.hub_id or preset.download
    assert presets.find_preset("OpenSDI_test") is presets.PRESETS["opensdi-test"]
    with pytest.raises(ValueError, match="did you mean cocoglide"):
        presets.get_preset("cocoglid")
    with pytest.raises(ValueError, match="not a dataset preset \\(cocoglide, "):
        diffseg30k.load_benchmark("cocoglid")
    with pytest.raises(ValueError, match="cannot mix DiffSeg30k sources and IML layouts"):
        foreign.layout_of([tmp_path, fx.write_json_dataset(tmp_path / "js")])


def test_json_list_spanning_sub_datasets_keeps_ids_apart(tmp_path):
    for sub in ("CASIA", "Columbia"):
        (tmp_path / sub / "Tp").mkdir(parents=True)
        fx.image(len(sub)).save(tmp_path / sub / "Tp" / "1.png")
    (tmp_path / "CASIA" / "Gt").mkdir()
    fx.mask_image(3).save(tmp_path / "CASIA" / "Gt" / "1_gt.png")
    listing = tmp_path / "all.json"
    windows = "CASIA\\Gt\\1_gt.png"  # a list written on Windows
    listing.write_text(json.dumps([["CASIA/Tp/1.png", windows], ["Columbia/Tp/1.png", "Negative"]]))
    table = diffseg30k.load_benchmark(listing, task="binary", split="test", progress=False)
    masks = _masks(table)
    assert set(masks) == {"CASIA_Tp_1", "Columbia_Tp_1"} and not masks["Columbia_Tp_1"].any()
    np.testing.assert_array_equal(masks["CASIA_Tp_1"], fx.region(3))


def test_layouts_inside_zip_archives(tmp_path):
    import zipfile

    root = fx.write_cocoglide(tmp_path / "src" / "CocoGlide", num=2)
    archive = tmp_path / "CocoGlide.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for file in sorted(root.rglob("*")):
            out.write(file, file.relative_to(tmp_path / "src").as_posix())
    table = diffseg30k.load_benchmark(archive, task="binary", split="test", progress=False)
    masks = _masks(table)
    assert len(masks) == 4
    np.testing.assert_array_equal(masks["glide_inpainting_val2017_1001_up"], fx.region(1, (24, 24)))

    mani = fx.write_mani(tmp_path / "m", num=2, jpeg_masks=False)
    fx.image(9).save(mani / "Tp" / "orphan.jpg")
    bad = tmp_path / "mani.zip"
    with zipfile.ZipFile(bad, "w") as out:
        for file in sorted(mani.rglob("*")):
            out.write(file, file.relative_to(mani).as_posix())
        out.writestr("../evil.png", b"x")
    with pytest.raises(ReleaseError, match=r"mani\.zip:\.\./evil\.png: archive member path contains '\.\.'"):
        convert([bad], tmp_path / "o1", progress=False)
    with zipfile.ZipFile(bad, "w") as out:
        for file in sorted(mani.rglob("*")):
            out.write(file, file.relative_to(mani).as_posix())
    with pytest.raises(ReleaseError, match=r"mani\.zip:Tp/orphan\.jpg: unpaired: no mask"):
        convert([bad], tmp_path / "o2", progress=False)
