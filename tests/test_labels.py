import json

import numpy as np
import pytest
from PIL import Image

from diffseg30k import labels
from diffseg30k.io import ImageError, atomic_dir, open_image


def test_ids_names_colours_match_design():
    assert labels.NUM_CLASSES == 9
    assert labels.ID2LABEL[0] == "background"
    assert [labels.ID2LABEL[i] for i in range(1, 9)] == [
        "sd2", "kolors", "sd35", "flux", "sdxl", "glide", "hunyuan", "kandinsky"]
    assert labels.COLORS[1] == (220, 20, 60) and labels.COLORS[6] == (54, 117, 136)
    assert len(set(labels.COLORS.values())) == 9


def test_binary_mapping_keeps_ignore():
    mask = np.array([[0, 1, 8], [255, 3, 0]], dtype=np.uint8)
    assert labels.to_binary(mask).tolist() == [[0, 1, 1], [255, 1, 0]]
    assert labels.map_for_task(mask, "semantic") is not None
    with pytest.raises(ValueError, match="unknown task"):
        labels.map_for_task(mask, "instance")


def test_palette_and_colorize():
    pal = labels.palette()
    assert len(pal) == 768 and pal[3:6] == [220, 20, 60] and pal[765:768] == [255, 255, 255]
    rgb = labels.colorize(np.array([[0, 4]], dtype=np.uint8))
    assert rgb[0, 1].tolist() == [65, 105, 225]


def test_label_set_override(tmp_path):
    (tmp_path / "id2label.json").write_text(json.dumps({"0": "background", "1": "sd2", "2": "mine"}))
    ls = labels.load_label_set(tmp_path)
    assert ls.num_classes == 3 and ls.colors[1] == (220, 20, 60) and ls.label2id["mine"] == 2
    (tmp_path / "id2label.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="id2label.json"):
        labels.load_label_set(tmp_path)
    assert labels.load_label_set(None).num_classes == 9


def test_open_image_checks(tmp_path):
    good = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(good)
    assert open_image(good).size == (8, 8)
    with pytest.raises(ImageError, match="over the limit"):
        open_image(good, max_pixels=10)
    data = good.read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="t.png"):
        open_image(tmp_path / "t.png")
    with pytest.raises(ImageError, match="cannot read"):
        open_image(tmp_path / "missing.png")


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "x").write_text("partial")
        raise RuntimeError("boom")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("done")
    assert (target / "x").read_text() == "done"


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    # mkstemp/mkdtemp create 0600 files and 0700 folders; outputs must look like ordinary writes
    import os
    import stat

    from diffseg30k.io import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        with atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "b.txt").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o755


def test_atomic_dir_replaces_despite_a_stale_old_folder(tmp_path):
    # a run killed while removing the replaced folder leaves `.NAME.old-PID`; a restart with the same pid
    # (PID 1 in containers) must still be able to replace NAME
    import os

    target = tmp_path / "best"
    target.mkdir()
    (target / "v").write_text("1")
    stale = tmp_path / f".best.old-{os.getpid()}"
    stale.mkdir()
    (stale / "leftover").write_text("x")
    with atomic_dir(target, overwrite=True) as tmp:
        (tmp / "v").write_text("2")
    assert (target / "v").read_text() == "2" and not stale.exists()
