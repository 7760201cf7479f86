"""Issue 16 follow-ups: TruFor's reliability/integrity reach users, input stems for every family, the
block DCT against scipy, FAMILY_MODELS derived from the registry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_forensic_models import _one_thread  # noqa: F401  (autouse: one torch thread in this module too)

from diffseg30k.models.registry import DETECTORS, build_model, load_model

STEM_MODELS = ["segformer-tiny", "trufor-tiny", "dctfreq-tiny", "foundation-tiny", "fcn8s-tiny",
               "deeplabv3plus-tiny"]


@pytest.fixture(scope="module")
def trufor_checkpoint(tmp_path_factory):
    from diffseg30k.training.checkpoints import export_detector

    torch.manual_seed(0)
    return export_detector(build_model("trufor-tiny", task="semantic", crop_size=64),
                           tmp_path_factory.mktemp("trufor") / "best", {"step": 0})


def _reference(model, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sigmoid of the confidence at the input size, sigmoid of the integrity) by hand: pad to 32."""
    height, width = pixels.shape[-2:]
    padded = F.pad(pixels, (0, (-width) % 32, 0, (-height) % 32))
    with torch.no_grad():
        out = model(pixel_values=padded)
    confidence = F.interpolate(out.confidence, size=padded.shape[-2:], mode="bilinear", align_corners=False)
    return torch.sigmoid(confidence[0, 0, :height, :width]), torch.sigmoid(out.integrity[0])


# ------------------------------------------------------------------ 1. reliability and integrity
def test_detector_gives_trufors_reliability_map_and_integrity_score(trufor_checkpoint):
    from diffseg30k.detector import Detector

    detector = Detector.from_pretrained(trufor_checkpoint, device="cpu", tile_size=64, overlap=16)
    image = np.random.default_rng(0).integers(0, 255, (45, 61, 3), dtype=np.uint8)  # one padded pass
    result = detector(image)
    want_map, want_score = _reference(detector.model, detector._pixels([image]))
    assert result.reliability.shape == (45, 61) and result.reliability.dtype == np.float32
    np.testing.assert_allclose(result.reliability, want_map.numpy(), atol=1e-5)
    assert result.integrity == pytest.approx(float(want_score), abs=1e-6)
    assert result.to_dict()["integrity"] == pytest.approx(result.integrity, abs=1e-6)
    large = np.random.default_rng(1).integers(0, 255, (97, 150, 3), dtype=np.uint8)  # 6 windows
    tiled = detector(large)
    pixels = detector._pixels([large])
    from diffseg30k.models.inference import tile_windows

    windows = tile_windows(97, 150, 64, 16)
    scores = [float(_reference(detector.model, pixels[..., t:t + 64, w:w + 64])[1]) for t, w in windows]
    assert len(windows) == 6 and tiled.integrity == pytest.approx(max(scores), abs=1e-6)
    assert tiled.reliability.shape == (97, 150)
    assert 0 <= tiled.reliability.min() <= tiled.reliability.max() <= 1
    top_left = _reference(detector.model, pixels[..., :64, :64])[0].numpy()
    np.testing.assert_allclose(tiled.reliability[:32, :32], top_left[:32, :32], atol=1e-5)  # one window


def test_other_families_give_no_reliability_and_no_integrity_key():
    from diffseg30k.detector import Detector

    detector = Detector(build_model("segformer-tiny", crop_size=64), device="cpu")
    result = detector(np.zeros((40, 50, 3), dtype=np.uint8))
    assert result.reliability is None and result.integrity is None
    assert "integrity" not in result.to_dict()


def test_predict_writes_the_reliability_png_and_the_integrity_score(trufor_checkpoint, tmp_path, capsys):
    from PIL import Image

    from diffseg30k.cli import main
    from diffseg30k.data.synthetic import synthetic_pair

    synthetic_pair(1, (61, 43))[0].save(tmp_path / "photo.png")
    argv = ["predict", str(tmp_path / "photo.png"), "--checkpoint", str(trufor_checkpoint),
            "--out", str(tmp_path / "out"), "--device", "cpu"]
    assert main(argv) == 0
    assert "integrity 0." in capsys.readouterr().out
    record = json.loads((tmp_path / "out" / "photo.json").read_text())
    assert 0.0 <= record["integrity"] <= 1.0 and record["reliability"] == "photo.reliability.png"
    grey = Image.open(tmp_path / "out" / "photo.reliability.png")
    assert grey.mode == "L" and grey.size == (61, 43)


def test_predict_removes_a_reliability_png_left_by_another_detector(tmp_path):
    from diffseg30k.detector import Detector
    from diffseg30k.predict import predict_images

    model = build_model("dctfreq-tiny", task="binary")
    model.save_pretrained(tmp_path / "dct")
    image = np.full((24, 40, 3), 120, dtype=np.uint8)
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo.reliability.png").write_bytes(b"left by a TruFor run")
    list(predict_images(Detector.from_pretrained(tmp_path / "dct"), [tmp_path / "photo.png"], out))
    assert not (out / "photo.reliability.png").exists()
    assert "reliability" not in json.loads((out / "photo.json").read_text())


def test_demo_verdict_shows_the_integrity_score_when_present():
    from diffseg30k.demo import verdict_markdown
    from diffseg30k.detector import DetectionResult

    labels = np.zeros((8, 8), dtype=np.uint8)
    result = DetectionResult(labels, None, {}, 0.0, False, "binary", {0: "real", 1: "edited"},
                             integrity=0.8125)
    text = verdict_markdown(result, [], 0.01)
    assert "integrity score" in text and "0.812" in text
    result.integrity = None
    assert "integrity" not in verdict_markdown(result, [], 0.01)


# ------------------------------------------------------------------------------- 2. input stems
@pytest.mark.parametrize("name", STEM_MODELS)
@pytest.mark.parametrize("stem", ["srm", "bayar"])
def test_every_family_takes_a_stem_that_changes_the_forward_and_round_trips(name, stem, tmp_path):
    x = torch.randn(1, 3, 64, 64)
    torch.manual_seed(0)
    plain = build_model(name, crop_size=64).eval()
    torch.manual_seed(0)
    model = build_model(name, crop_size=64, stem=stem).eval()
    assert model.config.diffseg_stem == stem and type(model.stem).__name__.lower().startswith(stem)
    with torch.no_grad():
        model.stem.mix[-1].weight.mul_(20)  # a trained stem, not a near-identity start
        logits = model(pixel_values=x).logits
        assert not torch.allclose(logits, plain(pixel_values=x).logits, atol=1e-4)
    model.save_pretrained(tmp_path)
    loaded = load_model(tmp_path).eval()
    assert type(loaded) is type(model) and loaded.config.diffseg_stem == stem
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values=x).logits, logits, atol=1e-4, rtol=1e-4)


def test_stem_trains_and_the_fused_segformer_keeps_it():
    from diffseg30k.detector import Detector

    torch.manual_seed(0)
    model = build_model("segformer-tiny", crop_size=64, stem="srm")
    labels = torch.randint(0, 9, (2, 64, 64))
    model(pixel_values=torch.randn(2, 3, 64, 64), labels=labels).loss.backward()
    assert model.stem.mix[0].weight.grad.abs().sum() > 0
    with torch.no_grad():
        model.stem.mix[-1].weight.mul_(20)
    image = np.random.default_rng(0).integers(0, 255, (40, 52, 3), dtype=np.uint8)
    fused = Detector(model, device="cpu")(image, return_probabilities=True)
    unfused = Detector(model, device="cpu", fuse=False)(image, return_probabilities=True)
    np.testing.assert_allclose(fused.probabilities, unfused.probabilities, atol=1e-4)


def test_bayar_filters_keep_their_constraint():
    from diffseg30k.models.stem import BayarStem

    stem = BayarStem()
    with torch.no_grad():
        stem.weight.add_(torch.randn_like(stem.weight))
    weight = stem.constrained_weight()
    assert torch.allclose(weight[:, 0, 2, 2], torch.full((9,), -1.0))
    torch.testing.assert_close(weight.flatten(1).sum(1), torch.zeros(9), atol=1e-5, rtol=0)
    flat = torch.ones(1, 3, 16, 16)  # a constant image has no prediction error
    residuals = F.conv2d(flat, weight, padding=2, groups=3)
    assert residuals[..., 2:-2, 2:-2].abs().max() < 1e-5


def test_unknown_stem_is_refused():
    with pytest.raises(ValueError, match="unknown input stem"):
        build_model("segformer-tiny", stem="dct")


# ------------------------------------------------------------------------------- 3. DCT vs scipy
def test_block_dct_matches_scipy_dctn_on_every_8x8_block():
    from scipy.fft import dctn

    from diffseg30k.models.dct_frequency import BlockDCT

    x = torch.randn(2, 3, 24, 40, dtype=torch.float64)
    got = BlockDCT(low_band=4).coefficients(x.float()).double()  # (B, C * 64, 3, 5)
    blocks = x.numpy().reshape(2, 3, 3, 8, 5, 8).transpose(0, 1, 2, 4, 3, 5)  # (B, C, by, bx, 8, 8)
    want = dctn(blocks, type=2, norm="ortho", axes=(-2, -1))  # coefficient (u, v) of each block
    want = want.reshape(2, 3, 3, 5, 64).transpose(0, 1, 4, 2, 3).reshape(2, 192, 3, 5)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)


def test_dct_model_pads_odd_sizes_on_the_grid():
    torch.manual_seed(0)
    model = build_model("dctfreq-tiny", crop_size=64).eval()
    x = torch.randn(1, 3, 45, 61)
    with torch.no_grad():
        odd = model(pixel_values=x).logits
        padded = model(pixel_values=F.pad(x, (0, 3, 0, 3))).logits  # the same 8x8 grid, bottom/right
    assert odd.shape[-2:] == (12, 16)
    torch.testing.assert_close(odd, padded[..., :12, :16])


# ------------------------------------------------------------------- 4. FAMILY_MODELS from specs
def test_family_models_derive_from_the_specs_and_keep_every_old_name():
    from diffseg30k.experiments.config import FAMILY_MODELS, family_models, paper_config, quick_config

    assert FAMILY_MODELS == {
        "quick": {"segformer": "segformer-tiny", "deeplabv3plus": "deeplabv3plus-tiny", "fcn8s": "fcn8s-tiny",
                  "trufor": "trufor-tiny", "dctfreq": "dctfreq-tiny", "foundation": "foundation-tiny"},
        "paper": {"segformer": "segformer-b2", "deeplabv3plus": "deeplabv3plus-r50", "fcn8s": "fcn8s-r50",
                  "trufor": "trufor-b2", "dctfreq": "dctfreq-b2", "foundation": "foundation-dinov2-b"}}
    for name in family_models("quick").values():
        assert DETECTORS.get(name).tiny
    assert quick_config().with_families(["trufor"]).families == {"trufor": "trufor-tiny"}
    assert paper_config().with_families(["dctfreq"]).families == {"dctfreq": "dctfreq-b2"}


def test_a_new_spec_line_adds_its_family_and_a_second_entry_is_refused():
    from dataclasses import replace

    from diffseg30k.experiments.config import quick_config
    from diffseg30k.models.registry import family_models

    base = DETECTORS.get("segformer-tiny")
    DETECTORS.register(replace(base, name="newfam-tiny", family="newfam"))
    try:
        assert family_models("quick")["newfam"] == "newfam-tiny"
        assert quick_config().with_families(["newfam"]).families == {"newfam": "newfam-tiny"}
        DETECTORS.register(replace(base, name="newfam-tiny2", family="newfam"))
        with pytest.raises(ValueError, match="two 'quick' benchmark entries"):
            family_models("quick")
    finally:
        for name in ("newfam-tiny", "newfam-tiny2"):
            if name in DETECTORS:
                DETECTORS.unregister(name)
