"""Exported runtimes (ONNX Runtime fp32/int8, OpenVINO) against torch: odd sizes, tiles, cache, fallback."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
import torch
from test_models import _one_thread  # noqa: F401  (autouse: one torch thread in this module too)

from diffseg30k.detector import Detector
from diffseg30k.models import runtimes
from diffseg30k.models.registry import build_model

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

FAMILIES = ["segformer-tiny", "deeplabv3plus-tiny", "fcn8s-tiny"]
#: fp32 exports: probabilities within this of torch's (float32 kernels differ in summation order).
PROB_ATOL = {"onnx": 1e-4, "openvino": 1e-4, "onnx-int8": 2e-2}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from diffseg30k.training.checkpoints import export_detector

    folders = {}
    for name in FAMILIES:
        torch.manual_seed(0)
        folders[name] = export_detector(build_model(name, crop_size=64),
                                        tmp_path_factory.mktemp("rt") / name, {})
    return folders


def _photos():
    """Real photos (scikit-image's, the mini release's real bases) cropped to odd sizes, and one that
    needs 6 windows at tile 64."""
    from diffseg30k.generation.profiles import MINI

    load_photo = MINI.load_photo

    coffee, chelsea = np.asarray(load_photo("coffee")), np.asarray(load_photo("chelsea"))
    return [coffee[100:145, 200:267], chelsea[50:121, 90:123], coffee[::3, ::3][:97, :150]]


def _agreement(detector: Detector, reference: Detector) -> tuple[float, float]:
    same = total = 0
    worst = 0.0
    for image in _photos():
        got, want = detector(image, return_probabilities=True), reference(image, return_probabilities=True)
        assert got.label_map.shape == image.shape[:2] == want.label_map.shape
        same += int((got.label_map == want.label_map).sum())
        total += got.label_map.size
        worst = max(worst, float(np.abs(got.probabilities - want.probabilities).max()))
    return same / total, worst


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("runtime", ["onnx", "openvino", "onnx-int8"])
def test_exported_runtimes_match_torch_on_odd_sizes_and_tiles(checkpoints, name, runtime):
    kwargs = dict(device="cpu", tile_size=64, overlap=16)
    reference = Detector.from_pretrained(checkpoints[name], **kwargs)
    detector = Detector.from_pretrained(checkpoints[name], runtime=runtime, **kwargs)
    assert detector.runtime == runtime and detector.runtime_note is None
    assert isinstance(detector.model, runtimes.ExportedModel)
    assert detector.tile_count(97, 150) == 6
    labels, worst = _agreement(detector, reference)
    assert labels >= (0.99 if runtime == "onnx-int8" else 0.999)
    assert worst <= PROB_ATOL[runtime]


def test_exports_are_cached_by_sha256_and_reused(checkpoints, monkeypatch):
    folder = checkpoints["fcn8s-tiny"]
    Detector.from_pretrained(folder, device="cpu", runtime="openvino")
    sha = runtimes.weights_sha256(folder, None)
    from diffseg30k.io import sha256_file

    assert sha == sha256_file(folder / "model.safetensors")
    root = folder / runtimes.CACHE_FOLDER / f"{sha[:16]}-v{runtimes.EXPORT_VERSION}"
    assert (root / "model" / "model.onnx").is_file() and (root / "openvino" / "model.xml").is_file()
    assert not [p for p in root.rglob("*.partial")]  # built in temporary folders, moved into place
    calls = []
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: calls.append(a))
    Detector.from_pretrained(folder, device="cpu", runtime="onnx")
    Detector.from_pretrained(folder, device="cpu", runtime="openvino")
    assert calls == []  # both came from the cache


def test_hub_snapshots_export_into_the_diffseg30k_cache(checkpoints, tmp_path, monkeypatch):
    import shutil

    import huggingface_hub.constants

    # a checkpoint inside the Hub cache (what snapshot_download returns) is never written into
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    folder = tmp_path / "hub" / "models--someone--detector" / "snapshots" / "abc"
    shutil.copytree(checkpoints["segformer-tiny"], folder,
                    ignore=shutil.ignore_patterns(runtimes.CACHE_FOLDER))
    monkeypatch.setenv("DIFFSEG30K_CACHE", str(tmp_path / "cache"))
    detector = Detector.from_pretrained(folder, device="cpu", runtime="onnx")
    assert detector.runtime == "onnx" and not (folder / runtimes.CACHE_FOLDER).exists()
    assert list((tmp_path / "cache" / "runtimes").glob("*/model/model.onnx"))


def test_missing_runtime_falls_back_to_torch_said_once(checkpoints, monkeypatch, caplog):
    # sys.modules[name] = None is Python's own "this module cannot be imported" marker: `import
    # onnxruntime` then raises ImportError exactly as on a machine without the package.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    folder = checkpoints["segformer-tiny"]
    with caplog.at_level(logging.WARNING, logger=runtimes.LOG.name):
        detector = Detector.from_pretrained(folder, device="cpu", runtime="onnx")
        image = _photos()[0]
        result = detector(image)
        detector(image)
    assert detector.runtime == "torch" and "ONNX Runtime is not installed" in detector.runtime_note
    assert len([r for r in caplog.records if "ONNX Runtime is not installed" in r.getMessage()]) == 1
    expected = Detector.from_pretrained(folder, device="cpu")(image)
    assert np.array_equal(result.label_map, expected.label_map)
    monkeypatch.setitem(sys.modules, "openvino", None)
    auto = Detector.from_pretrained(folder, device="cpu", runtime="auto")
    assert auto.runtime == "torch" and "openvino" in auto.runtime_note
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'"):
        Detector.from_pretrained(folder, device="cpu", runtime="tensorrt")


def test_failed_export_falls_back_to_torch(checkpoints, tmp_path, monkeypatch):
    import shutil

    folder = tmp_path / "fails"
    shutil.copytree(checkpoints["fcn8s-tiny"], folder, ignore=shutil.ignore_patterns(runtimes.CACHE_FOLDER))
    # an operator the ONNX exporter has no symbolic for stands in for an unsupported detector family
    model = build_model("fcn8s-tiny").eval()
    model.decode = lambda features: torch.fft.rfft2(features[3]).abs()[:, :9]
    detector = Detector(model, device="cpu").use_runtime("onnx", folder)
    assert detector.runtime == "torch" and "UnsupportedOperatorError" in detector.runtime_note
    assert detector(_photos()[0]).label_map.shape == (45, 67)  # torch still serves
    assert not list((folder / runtimes.CACHE_FOLDER).rglob("model.onnx"))  # nothing half-written


def test_tile_batches_give_the_same_probabilities_and_report_progress(checkpoints):
    folder = checkpoints["segformer-tiny"]
    image = _photos()[2]
    one = Detector.from_pretrained(folder, device="cpu", tile_size=64, overlap=16, tile_batch=1)(
        image, return_probabilities=True)
    calls = []
    batched = Detector.from_pretrained(folder, device="cpu", tile_size=64, overlap=16, tile_batch=4)
    result = batched(image, progress=lambda done, total: calls.append((done, total)),
                     return_probabilities=True)
    assert calls == [(4, 6), (6, 6)]
    np.testing.assert_allclose(result.probabilities, one.probabilities, atol=1e-5)


def test_cli_runtime_choices_match_the_registry():
    from diffseg30k.cli.runtime_option import RUNTIME_CHOICES

    assert (*runtimes.RUNTIMES, "auto") == RUNTIME_CHOICES


def test_predict_cli_runs_the_chosen_runtime(checkpoints, tmp_path):
    import json

    from PIL import Image

    from diffseg30k.cli import main

    Image.fromarray(_photos()[1]).save(tmp_path / "photo.png")
    argv = ["predict", str(tmp_path / "photo.png"), "--checkpoint", str(checkpoints["segformer-tiny"]),
            "--out", str(tmp_path / "out"), "--device", "cpu", "--runtime", "onnx"]
    assert main(argv) == 0
    assert json.loads((tmp_path / "out" / "photo.json").read_text())["runtime"] == "onnx"


def test_demo_reports_tiles_progress_and_runtime(checkpoints):
    from diffseg30k.demo import DemoService, runtime_markdown

    detector = Detector.from_pretrained(checkpoints["segformer-tiny"], device="cpu", tile_size=64,
                                        overlap=16, runtime="onnx")
    service = DemoService(detector, "ckpt")
    from PIL import Image

    from diffseg30k.io import normalize_image

    Image.fromarray(_photos()[2]).save(service.outputs.folder / "large.png")
    updates = []
    outputs = service._predict(normalize_image(service.outputs.folder / "large.png"), "large.png",
                               lambda value, desc="", unit="": updates.append((value, desc)))
    verdict, details = outputs[3], outputs[5]
    assert details["tiles"] == 6 and details["runtime"] == "onnx"
    assert "6 overlapping tiles" in verdict
    assert updates[0][0] == (0, 6) and updates[-1][0] == (6, 6)
    assert "s left" in updates[-1][1] and "tile 6/6" in updates[-1][1]
    assert "`onnx`" in runtime_markdown(detector)


# ----------------------------------------------------------------- the families beyond the paper
@pytest.fixture(scope="module")
def family_checkpoints(tmp_path_factory):
    from diffseg30k.training.checkpoints import export_detector

    folders = {}
    for name in ("dctfreq-tiny", "trufor-tiny", "foundation-tiny"):
        torch.manual_seed(0)
        folders[name] = export_detector(build_model(name, crop_size=64), tmp_path_factory.mktemp("rt") / name,
                                        {})
    return folders


@pytest.mark.parametrize("name", ["dctfreq-tiny", "trufor-tiny"])
@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
def test_dct_and_trufor_export_exactly_with_reliability_and_integrity(family_checkpoints, name, runtime):
    # the DCT is a fixed strided convolution (exportable); TruFor's extra outputs are graph outputs too
    kwargs = dict(device="cpu", tile_size=64, overlap=16)
    reference = Detector.from_pretrained(family_checkpoints[name], **kwargs)
    detector = Detector.from_pretrained(family_checkpoints[name], runtime=runtime, **kwargs)
    assert detector.runtime == runtime and detector.runtime_note is None
    labels, worst = _agreement(detector, reference)
    assert labels >= 0.999 and worst <= PROB_ATOL[runtime]
    image = _photos()[2]  # 6 windows
    got, want = detector(image), reference(image)
    assert (got.reliability is None) == (want.reliability is None) == (name != "trufor-tiny")
    if want.reliability is not None:
        np.testing.assert_allclose(got.reliability, want.reliability, atol=1e-4)
        assert got.integrity == pytest.approx(want.integrity, abs=1e-5)


def test_an_export_that_froze_a_shape_falls_back_to_torch(family_checkpoints):
    # foundation-tiny slides windows inside its forward (size-dependent control flow): its traced graph
    # cannot reproduce torch at another size, so the check refuses it rather than run it wrong
    detector = Detector.from_pretrained(family_checkpoints["foundation-tiny"], device="cpu", runtime="onnx")
    assert detector.runtime == "torch" and "unavailable" in detector.runtime_note

    class FrozenCrop(torch.nn.Module):
        """A graph whose crop the tracer records as the example's constant (math.ceil of a size)."""

        def __init__(self):
            super().__init__()
            self.conv, self.config = torch.nn.Conv2d(3, 2, 1), build_model("fcn8s-tiny").config

        def forward(self, pixel_values):
            import math

            from transformers.modeling_outputs import SemanticSegmenterOutput

            logits = self.conv(pixel_values)
            return SemanticSegmenterOutput(logits=logits[..., :math.ceil(pixel_values.shape[-2] / 2), :])

    _, runtime, note = runtimes.prepare_runtime(FrozenCrop().eval(), "onnx")
    assert runtime == "torch" and "does not reproduce torch (logits at 96x160" in note


def test_an_export_that_fails_at_another_size_is_a_clear_runtime_unavailable():
    model = build_model("segformer-tiny", task="binary").eval()

    def broken(pixels):
        raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : Non concat axis dimensions must match\nmore")

    with pytest.raises(runtimes.RuntimeUnavailable, match="graph depends on the input size") as info:
        runtimes.check_export(model, broken)
    assert "Non concat axis dimensions must match" in str(info.value) and "more" not in str(info.value)
