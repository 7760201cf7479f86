"""`diffseg30k predict`: an overlay PNG with legend, a label-map PNG and a JSON per image."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from diffseg30k.cli import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from diffseg30k.models.registry import build_model
    from diffseg30k.training.checkpoints import export_detector

    path = tmp_path_factory.mktemp("ckpt") / "best"
    return export_detector(build_model("fcn8s-tiny", task="semantic"), path, {"step": 0})


def test_predict_writes_overlay_mask_and_json(checkpoint, tmp_path, capsys):
    from diffseg30k.data.synthetic import synthetic_pair

    images = tmp_path / "in"
    images.mkdir()
    synthetic_pair(1, (61, 43))[0].save(images / "photo.png")
    synthetic_pair(2, (30, 30))[0].convert("L").save(images / "grey.jpg")
    (images / "sub").mkdir()
    synthetic_pair(3, (20, 24))[0].save(images / "sub" / "photo.png")  # same stem: kept apart
    out = tmp_path / "out"
    argv = ["predict", str(images / "photo.png"), str(images / "grey.jpg"), str(images / "sub" / "photo.png"),
            "--checkpoint", str(checkpoint), "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    assert "photo.png" in capsys.readouterr().out
    for stem, (width, height) in (("photo", (61, 43)), ("grey", (30, 30)), ("photo-1", (20, 24))):
        record = json.loads((out / f"{stem}.json").read_text())
        assert record["width"] == width and record["height"] == height
        assert set(record) >= {"image", "checkpoint", "edited_fraction", "is_edited", "generators"}
        overlay = Image.open(out / f"{stem}.overlay.png")
        assert overlay.width >= width and overlay.height > height  # legend strip below the image
        mask = np.asarray(Image.open(out / f"{stem}.mask.png"))
        assert mask.shape == (height, width) and mask.max() < 9
        assert record["edited_fraction"] == pytest.approx(float((mask > 0).mean()), abs=1e-5)


def test_predict_errors_name_the_problem(checkpoint, tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"nope")
    assert main(["predict", str(tmp_path / "bad.png"), "--checkpoint", str(checkpoint),
                 "--out", str(tmp_path / "o")]) == 2
    assert "bad.png" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "bad.png"), "--checkpoint", str(tmp_path / "nothing"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_predict_small_tile_size_keeps_a_real_stride(checkpoint, tmp_path, monkeypatch):
    # --tile-size at or below the default 256-pixel overlap used to give a 1-pixel stride (a hang)
    from diffseg30k.data.synthetic import synthetic_pair
    from diffseg30k.models import inference

    calls = []
    forward = inference._forward_padded
    monkeypatch.setattr(inference, "_forward_padded", lambda m, p: calls.append(p.shape) or forward(m, p))
    synthetic_pair(5, (96, 70))[0].save(tmp_path / "photo.png")
    argv = ["predict", str(tmp_path / "photo.png"), "--checkpoint", str(checkpoint), "--out",
            str(tmp_path / "out"), "--device", "cpu", "--tile-size", "64"]
    assert main(argv) == 0
    assert 1 < len(calls) <= 9
    mask = np.asarray(Image.open(tmp_path / "out" / "photo.mask.png"))
    assert mask.shape == (70, 96)


def test_predict_normalises_each_image_once(checkpoint, tmp_path, monkeypatch):
    from diffseg30k import detector as detector_module
    from diffseg30k.data.synthetic import synthetic_pair

    calls = []
    normalize = detector_module.normalize_image
    monkeypatch.setattr(detector_module, "normalize_image",
                        lambda *a, **k: calls.append(1) or normalize(*a, **k))
    synthetic_pair(6, (40, 30))[0].save(tmp_path / "photo.png")
    argv = ["predict", str(tmp_path / "photo.png"), "--checkpoint", str(checkpoint), "--out",
            str(tmp_path / "out"), "--device", "cpu"]
    assert main(argv) == 0
    assert len(calls) == 1
