"""Detector registry: every entry builds, saves and loads (safetensors), and learns."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import save_file

from diffseg30k.models.registry import available_models, build_model, get_spec, load_model

TINY = ["segformer-tiny", "deeplabv3plus-tiny", "fcn8s-tiny"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: on a shared 2-core machine oversubscribed threads stall for seconds."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_registry_lists_every_family():
    names = available_models()
    for name in TINY + [f"segformer-b{i}" for i in range(6)] + ["deeplabv3plus-r50", "fcn8s-r50"]:
        assert name in names
    with pytest.raises(KeyError, match="available"):
        get_spec("unet-xl")


@pytest.mark.parametrize("name", available_models())
def test_every_detector_builds_from_config(name):
    model = build_model(name, task="binary", from_scratch=True, crop_size=64).eval()
    assert model.config.diffseg_task == "binary" and model.config.num_labels == 2
    assert model.config.id2label == {0: "background", 1: "edited"}
    assert model.config.crop_size == 64 and len(model.config.image_mean) == 3
    with torch.no_grad():
        logits = model(pixel_values=torch.randn(1, 3, 64, 64)).logits
    assert logits.shape[:2] == (1, 2) and 64 // logits.shape[-1] in (4, 8)


@pytest.mark.parametrize("name", ["segformer-b0", "deeplabv3plus-r50", "fcn8s-r50"])
def test_full_size_detectors_learn_from_scratch(name):
    torch.manual_seed(0)
    model = build_model(name, task="binary", from_scratch=True).train()
    pixels = torch.randn(1, 3, 64, 64)
    labels = torch.zeros(1, 64, 64, dtype=torch.long)
    labels[:, 16:48, 16:48] = 1
    pixels[:, :, 16:48, 16:48] += 1.5
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    losses = []
    for _ in range(3):
        loss = model(pixel_values=pixels, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_deeplab_uses_output_stride_16_and_fcn_32():
    from diffseg30k.models.resnet_backbone import resnet_features

    deeplab = build_model("deeplabv3plus-r50", from_scratch=True).eval()
    fcn = build_model("fcn8s-r50", from_scratch=True).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert [f.shape[-1] for f in resnet_features(deeplab.backbone, x)] == [16, 8, 4, 4]
        assert [f.shape[-1] for f in resnet_features(fcn.backbone, x)] == [16, 8, 4, 2]
    # Dilation keeps ImageNet parameter shapes: the body loads a plain ResNet-50 state dict.
    from transformers import ResNetModel

    deeplab.backbone.load_state_dict(ResNetModel(deeplab.config.resnet_config()).state_dict())


@pytest.mark.parametrize("name", TINY)
def test_save_load_round_trip_is_identical(name, tmp_path):
    model = build_model(name, task="semantic", crop_size=48).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin"))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["diffseg_task"] == "semantic" and config["id2label"]["4"] == "flux"
    assert config["crop_size"] == 48 and config["diffseg_model"] == name
    loaded = load_model(tmp_path).eval()
    assert type(loaded) is type(model)
    x = torch.randn(2, 3, 45, 61)
    with torch.no_grad():  # same weights bit for bit; kernels may round differently (memory alignment)
        expected, got = model(pixel_values=x).logits, loaded(pixel_values=x).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(got.argmax(1), expected.argmax(1))
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_custom_detectors_are_registered_with_auto_classes(tmp_path):
    from transformers import AutoConfig, AutoModelForSemanticSegmentation

    build_model("fcn8s-tiny").save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert config.model_type == "diffseg-fcn8s"
    model = AutoModelForSemanticSegmentation.from_pretrained(tmp_path, use_safetensors=True)
    assert type(model).__name__ == "FCN8sForSemanticSegmentation"


def test_pretrained_backbones_load_from_local_folders(tmp_path):
    """The Hub code path (``from_pretrained(..., use_safetensors=True)``) on local folders."""
    from transformers import ResNetConfig, ResNetForImageClassification, SegformerForImageClassification

    from diffseg30k.models.resnet_backbone import RESNET_TINY
    from diffseg30k.models.segformer import segformer_config

    # microsoft/resnet-50 is a ResNetForImageClassification checkpoint
    classifier = ResNetForImageClassification(ResNetConfig(**RESNET_TINY, num_labels=5))
    classifier.save_pretrained(tmp_path / "resnet")
    deeplab = build_model("deeplabv3plus-r50", pretrained=str(tmp_path / "resnet"))
    for key, value in classifier.resnet.state_dict().items():
        assert torch.equal(deeplab.backbone.state_dict()[key], value)

    # nvidia/mit-bX store the pre-5.x key names; transformers renames them while loading.
    encoder = SegformerForImageClassification(segformer_config("b0", {"num_labels": 3}))
    encoder.save_pretrained(tmp_path / "mit")
    save_file({_legacy_segformer_key(k): v.contiguous() for k, v in encoder.state_dict().items()},
              str(tmp_path / "mit" / "model.safetensors"), metadata={"format": "pt"})
    segformer = build_model("segformer-b0", task="binary", pretrained=str(tmp_path / "mit"))
    assert segformer.config.num_labels == 2
    for key, value in encoder.segformer.state_dict().items():
        assert torch.equal(segformer.segformer.state_dict()[key], value), key


_LEGACY = [(r"stages\.(\d+)\.patch_embeddings\.", r"encoder.patch_embeddings.\1."),
           (r"stages\.(\d+)\.blocks\.", r"encoder.block.\1."),
           (r"stages\.(\d+)\.layer_norm", r"encoder.layer_norm.\1"),
           (r"attention\.sequence_reduction\.sequence_reduction", "attention.self.sr"),
           (r"attention\.sequence_reduction\.layer_norm", "attention.self.layer_norm"),
           (r"attention\.q_proj", "attention.self.query"), (r"attention\.k_proj", "attention.self.key"),
           (r"attention\.v_proj", "attention.self.value"), (r"attention\.o_proj", "attention.output.dense"),
           (r"mlp\.fc1", "mlp.dense1"), (r"mlp\.fc2", "mlp.dense2"),
           (r"layernorm_before", "layer_norm_1"), (r"layernorm_after", "layer_norm_2")]


def _legacy_segformer_key(key: str) -> str:
    for pattern, replacement in _LEGACY:
        key = re.sub(pattern, replacement, key)
    return key


def test_pickled_weights_are_refused(tmp_path):
    model = build_model("segformer-tiny")
    model.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(OSError):
        load_model(tmp_path)


def test_reordered_segformer_head_is_the_same_function_with_the_same_gradients():
    import copy

    from transformers import SegformerForSemanticSegmentation
    from transformers.models.segformer.modeling_segformer import SegformerDecodeHead

    from diffseg30k.models.segformer import (
        ReorderedSegformerDecodeHead,
        reorder_decode_head,
        segformer_config,
    )

    torch.manual_seed(0)
    no_dropout = {"num_labels": 9, "classifier_dropout_prob": 0.0, "drop_path_rate": 0.0}
    stock = SegformerForSemanticSegmentation(segformer_config("tiny", no_dropout)).train()
    fast = reorder_decode_head(copy.deepcopy(stock)).train()
    assert type(stock.decode_head) is SegformerDecodeHead
    assert isinstance(fast.decode_head, ReorderedSegformerDecodeHead)
    assert stock.state_dict().keys() == fast.state_dict().keys()
    x, y = torch.randn(2, 3, 64, 96), torch.randint(0, 9, (2, 64, 96))
    stock_loss, fast_loss = stock(pixel_values=x, labels=y).loss, fast(pixel_values=x, labels=y).loss
    stock_loss.backward()
    fast_loss.backward()
    torch.testing.assert_close(fast_loss, stock_loss, atol=1e-5, rtol=1e-5)
    scale = max(p.grad.abs().max().item() for p in stock.parameters())
    for (name, a), b in zip(stock.named_parameters(), fast.parameters()):
        assert (a.grad - b.grad).abs().max().item() <= 1e-4 * scale, name
    assert type(build_model("segformer-tiny").decode_head) is ReorderedSegformerDecodeHead


@pytest.mark.parametrize("name", ["fcn8s-tiny", "deeplabv3plus-tiny"])
def test_srm_stem_round_trips_and_sees_high_frequencies(name, tmp_path):
    from diffseg30k.models.stem import SRMStem, build_stem

    model = build_model(name, task="binary", crop_size=32, stem="srm").eval()
    assert isinstance(model.stem, SRMStem)
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["diffseg_stem"] == "srm"
    loaded = load_model(tmp_path).eval()
    assert isinstance(loaded.stem, SRMStem)
    assert any(k.startswith("stem.mix.") for k in loaded.state_dict())
    x = torch.randn(1, 3, 32, 40)
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values=x).logits, model(pixel_values=x).logits)
    # the fixed filters are high-pass: a constant image has zero residuals at the centre
    stem = SRMStem()
    flat = torch.full((1, 3, 16, 16), 0.7)
    residuals = torch.nn.functional.conv2d(flat, stem.srm, padding=2, groups=3)
    assert residuals[..., 2:-2, 2:-2].abs().max() < 1e-6
    assert residuals.shape[1] == 9
    assert isinstance(build_model("fcn8s-tiny").stem, torch.nn.Identity)
    with pytest.raises(ValueError, match="unknown input stem 'sobel'"):
        build_stem("sobel")


def test_class_balanced_losses_weigh_classes_by_inverse_frequency_to_their_power():
    from diffseg30k.models.common import LOSSES, balanced_segmentation_loss
    from diffseg30k.training.config import LOSS_NAMES, TrainConfig

    assert tuple(LOSSES) == LOSS_NAMES
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    labels[:, :2, :] = 1                     # 32 pixels of class 1, 96 of class 0, none of class 2
    labels[0, 0, 0] = 255                    # ignored
    pixel = torch.nn.functional.cross_entropy(logits, labels, reduction="none", ignore_index=255)
    valid = labels != 255
    per_class = [pixel[valid & (labels == c)] for c in (0, 1)]
    for name, power in (("balanced", 1.0), ("sqrt-balanced", 0.5)):
        weights = [len(p) ** -power for p in per_class]
        expected = sum(w * p.sum() for w, p in zip(weights, per_class)) / sum(
            w * len(p) for w, p in zip(weights, per_class))
        assert torch.allclose(LOSSES[name](logits, labels), expected, atol=1e-6), name
    # power 1: each present class weighs the same in total, i.e. the mean of the per-class means
    mean_of_means = (per_class[0].mean() + per_class[1].mean()) / 2
    assert torch.allclose(balanced_segmentation_loss(logits, labels), mean_of_means, atol=1e-6)
    with pytest.raises(ValueError, match="loss must be one of"):
        TrainConfig(dataset="x", out="y", loss="focal").resolved("adamw")
