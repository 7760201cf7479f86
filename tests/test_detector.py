"""Detector: any size / mode in, maps at input size out; batching; sliding windows; safety."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from test_models import _one_thread  # noqa: F401  (autouse: one torch thread in this module too)

from diffseg30k.detector import DetectionResult, Detector
from diffseg30k.models.registry import build_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("detector")
    from diffseg30k.training.checkpoints import export_detector

    export_detector(build_model("segformer-tiny", task="semantic", crop_size=64), path, {"step": 0})
    return path


@pytest.fixture(scope="module")
def detector(checkpoint):
    return Detector.from_pretrained(checkpoint, device="cpu")


def _image(width: int, height: int, mode: str = "RGB") -> Image.Image:
    from diffseg30k.data.synthetic import synthetic_pair

    return synthetic_pair(width * 31 + height, (width, height))[0].convert(mode)


@pytest.mark.parametrize("size,mode", [((67, 45), "RGB"), ((33, 71), "L"), ((50, 50), "RGBA"),
                                       ((31, 17), "P"), ((1, 1), "RGB")])
def test_maps_come_back_at_the_input_size(detector, size, mode):
    result = detector(_image(*size, mode), return_probabilities=True)
    assert isinstance(result, DetectionResult)
    assert result.label_map.shape == (size[1], size[0]) and result.label_map.dtype == np.uint8
    assert result.probabilities.shape == (9, size[1], size[0])
    np.testing.assert_allclose(result.probabilities.sum(axis=0), 1.0, atol=1e-4)
    assert (result.label_map == result.probabilities.argmax(axis=0)).all()
    edited = float((result.label_map > 0).mean())
    assert result.edited_fraction == pytest.approx(edited)
    assert result.is_edited == (edited > 0.01)
    assert sum(g["area"] for g in result.generators.values()) == pytest.approx(edited, abs=1e-4)
    for name, info in result.generators.items():
        assert name in detector.id2label.values() and 0 < info["confidence"] <= 1
    summary = result.to_dict()
    assert summary["width"] == size[0] and summary["task"] == "semantic"


def test_arrays_paths_and_lists(detector, tmp_path):
    image = _image(40, 30)
    image.save(tmp_path / "a.png")
    array = np.asarray(image)
    results = detector([image, array, array / 255.0, str(tmp_path / "a.png"), tmp_path / "a.png",
                        np.asarray(image.convert("L")), _image(24, 24)])
    assert isinstance(results, list) and len(results) == 7
    for result in results[1:5]:
        assert np.array_equal(result.label_map, results[0].label_map)
    assert results[-1].label_map.shape == (24, 24)
    with pytest.raises(ValueError, match="shape"):
        detector(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        detector(np.full((4, 4), 300.0))
    with pytest.raises(ValueError, match="bad.png: not an image file"):
        (tmp_path / "bad.png").write_bytes(b"not a png")
        detector(tmp_path / "bad.png")


def test_batched_results_match_single_calls(detector):
    images = [_image(48, 40), _image(48, 40), _image(48, 40)]
    batched = detector(images, return_probabilities=True)
    assert detector(images[0]).probabilities is None  # not copied out unless asked for
    for image, result in zip(images, batched):
        single = detector(image, return_probabilities=True)
        np.testing.assert_allclose(single.probabilities, result.probabilities, atol=1e-5)
    maps, scores = detector.predict_label_maps(images + [_image(21, 35)])
    for label_map, result in zip(maps, batched):
        assert np.array_equal(label_map, result.label_map)
    assert maps[-1].shape == (35, 21)
    assert scores.shape == (4,) and scores[0] == pytest.approx(batched[0].edited_fraction)


def test_sliding_window_covers_large_images(checkpoint):
    detector = Detector.from_pretrained(checkpoint, device="cpu", tile_size=64, overlap=16)
    image = _image(150, 97)
    result = detector(image, return_probabilities=True)
    assert result.label_map.shape == (97, 150)
    np.testing.assert_allclose(result.probabilities.sum(axis=0), 1.0, atol=1e-4)
    maps, _ = detector.predict_label_maps([image])
    assert np.array_equal(maps[0], result.label_map)
    # One window covering the whole image equals the unpadded single pass.
    whole = Detector.from_pretrained(checkpoint, device="cpu", tile_size=160)(image)
    assert whole.label_map.shape == (97, 150)


def test_only_safetensors_checkpoints_load(checkpoint, tmp_path):
    import shutil

    pickled = tmp_path / "pickled"
    shutil.copytree(checkpoint, pickled)
    (pickled / "model.safetensors").unlink()
    torch.save({}, pickled / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="safetensors"):
        Detector.from_pretrained(pickled)
    with pytest.raises(FileNotFoundError, match="x: no such folder"):
        Detector.from_pretrained(tmp_path / "missing" / "deeper" / "x")
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE=1 is set"):  # offline in tests
        Detector.from_pretrained("nobody/no-such-detector")


def test_hub_ids_download_only_json_and_safetensors(monkeypatch, checkpoint):
    calls = {}

    def fake_snapshot_download(repo_id, revision=None, allow_patterns=None, **kwargs):
        calls.update(repo_id=repo_id, revision=revision, allow_patterns=allow_patterns)
        return str(checkpoint)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    detector = Detector.from_pretrained("someone/diffseg30k-segformer", revision="v1", device="cpu")
    assert calls == {"repo_id": "someone/diffseg30k-segformer", "revision": "v1",
                     "allow_patterns": ["*.json", "*.safetensors"]}
    assert detector.task == "semantic"


@pytest.mark.parametrize("name", ["deeplabv3plus-tiny", "fcn8s-tiny"])
def test_cnn_detectors_and_binary_task(name, tmp_path):
    from diffseg30k.training.checkpoints import export_detector

    export_detector(build_model(name, task="binary"), tmp_path / name, {})
    detector = Detector.from_pretrained(tmp_path / name, device="cpu")
    result = detector(_image(45, 39, "RGBA"), return_probabilities=True)
    assert detector.task == "binary" and result.probabilities.shape == (2, 39, 45)
    assert set(result.generators) <= {"edited"}


def test_fused_segformer_head_matches_the_original():
    import copy

    from diffseg30k.models.segformer import FusedSegformerDecodeHead, fuse_for_inference

    model = build_model("segformer-b0", from_scratch=True).eval()
    norm = model.decode_head.batch_norm
    torch.manual_seed(1)
    norm.running_mean.normal_()
    norm.running_var.uniform_(0.5, 2.0)
    norm.weight.data.normal_()
    norm.bias.data.normal_()
    original = copy.deepcopy(model.decode_head)
    fused = fuse_for_inference(model)
    assert isinstance(fused.decode_head, FusedSegformerDecodeHead)
    assert type(model.decode_head) is type(original)  # the model itself is not modified
    x = torch.randn(2, 3, 96, 64)
    with torch.no_grad():
        torch.testing.assert_close(fused(pixel_values=x).logits, model(pixel_values=x).logits,
                                   atol=1e-4, rtol=1e-4)


def test_sixteen_bit_and_multiframe_inputs_are_normalised_not_clipped(tmp_path):
    from PIL import Image

    from diffseg30k.detector import to_rgb_array

    deep = Image.fromarray(np.array([[0, 25700, 65535]], dtype=np.uint16))
    assert to_rgb_array(deep)[0, :, 0].tolist() == [0, 100, 255]
    frames = [Image.new("RGB", (5, 4), c) for c in ((255, 0, 0), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    first = to_rgb_array(path)
    assert first.shape == (4, 5, 3) and first[0, 0, 0] > 200 and first[0, 0, 1] < 50


@pytest.mark.parametrize("tile_size,overlap", [(256, 256), (64, 100), (0, 0), (64, -1)])
def test_windows_that_cannot_advance_are_refused(checkpoint, tile_size, overlap):
    # overlap >= tile_size used to mean a stride of 1 pixel: ~(side - tile)^2 forward passes per image
    with pytest.raises(ValueError, match="tile_size|overlap"):
        Detector.from_pretrained(checkpoint, device="cpu", tile_size=tile_size, overlap=overlap)
