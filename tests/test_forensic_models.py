"""The detector families beyond the paper: TruFor-style, DCT frequency, frozen foundation features."""

from __future__ import annotations

import hashlib
import json

import datasets
import numpy as np
import pytest
import torch

from diffseg30k.data.synthetic import synthetic_dataset
from diffseg30k.models.registry import build_model, get_spec, load_model

FAMILIES = ["trufor-tiny", "dctfreq-tiny", "foundation-tiny"]
FAST = dict(crop_size=48, batch_size=4, num_workers=0, threads=1, progress=False, log_with="none")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data() -> datasets.DatasetDict:
    return datasets.DatasetDict(train=synthetic_dataset(12, (64, 64), seed=1),
                                validation=synthetic_dataset(4, (70, 54), seed=2))


@pytest.mark.parametrize("name", FAMILIES)
def test_tiny_family_trains_in_the_loop_and_its_loss_falls(name, data, tmp_path):
    from diffseg30k.train import TrainConfig, train

    best = train(TrainConfig(dataset=data, out=tmp_path, model=name, task="semantic", max_steps=40, lr=3e-3,
                             eval_every=0, save_every=0, augment="trufor", **FAST))
    info = json.loads((best / "diffseg30k.json").read_text())
    assert info["loss_last"] < 0.8 * info["loss_first"], info
    assert 0.0 <= info["eval"]["semantic_miou"] <= 1.0
    assert type(load_model(best)).__name__ == type(build_model(name)).__name__


@pytest.mark.parametrize("name", FAMILIES)
def test_round_trip_auto_classes_and_detector_on_odd_sizes(name, tmp_path):
    from transformers import AutoConfig, AutoModelForSemanticSegmentation

    from diffseg30k.detector import Detector

    model = build_model(name, task="semantic", crop_size=48).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    assert AutoConfig.from_pretrained(tmp_path).model_type == model.config.model_type
    loaded = AutoModelForSemanticSegmentation.from_pretrained(tmp_path, use_safetensors=True).eval()
    assert type(loaded) is type(model)
    x = torch.randn(2, 3, 45, 61)
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values=x).logits, model(pixel_values=x).logits)
    detector = Detector.from_pretrained(tmp_path, device="cpu", tile_size=160)
    rng = np.random.default_rng(0)
    for shape in [(37, 53, 3), (300, 171, 3)]:  # one pass; tiled (and, for the ViT, windowed)
        result = detector(rng.integers(0, 255, shape, dtype=np.uint8), return_probabilities=True)
        assert result.label_map.shape == shape[:2] and result.probabilities.shape == (9, *shape[:2])
        assert np.allclose(result.probabilities.sum(0), 1, atol=1e-4)


def test_trufor_outputs_reliability_map_and_integrity_score():
    model = build_model("trufor-tiny", task="binary").eval()
    labels = torch.zeros(2, 64, 64, dtype=torch.long)
    labels[0, 8:40, 8:40] = 1
    out = model(pixel_values=torch.randn(2, 3, 64, 64), labels=labels)
    assert out.confidence.shape == (2, 1, 16, 16) and out.integrity.shape == (2,)
    plain = model.config.confidence_loss_weight, model.config.detection_loss_weight
    model.config.confidence_loss_weight = model.config.detection_loss_weight = 0.0
    ce_only = model(pixel_values=torch.randn(2, 3, 64, 64), labels=labels).loss
    model.config.confidence_loss_weight, model.config.detection_loss_weight = plain
    assert torch.isfinite(out.loss) and torch.isfinite(ce_only)
    out.loss.backward()  # confidence and detection heads receive gradients from their terms
    assert model.detection[0].weight.grad.abs().sum() > 0
    assert model.confidence_head.classifier.weight.grad.abs().sum() > 0
    assert model.noiseprint[0].weight.grad.abs().sum() > 0


# ------------------------------------------------------------------- TruFor's released checkpoint
def _published_trufor_layout(hidden=(16, 32, 64, 96), depths=(1, 1, 1, 1), sr=(8, 4, 2, 1), decoder=64,
                             noise_depth=5, noise_width=16) -> dict[str, torch.Size]:
    """Names and shapes of grip-unina/TruFor's ``trufor.pth.tar`` (test_docker/src/models/cmx:
    myEncoderDecoder with dual_segformer.mit_b2, MLPDecoder x2, DnCNN make_net, confpool detection),
    written out from the published module definitions, at a small size."""
    shapes: dict[str, tuple] = {"dncnn.0.weight": (noise_width, 3, 3, 3), "dncnn.0.bias": (noise_width,)}
    for j in range(noise_depth - 2):
        shapes[f"dncnn.{2 + 3 * j}.weight"] = (noise_width, noise_width, 3, 3)
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"dncnn.{3 + 3 * j}.{name}"] = (noise_width,)
        shapes[f"dncnn.{3 + 3 * j}.num_batches_tracked"] = ()
    last = 2 + 3 * (noise_depth - 2)
    shapes.update({f"dncnn.{last}.weight": (1, noise_width, 3, 3), f"dncnn.{last}.bias": (1,)})

    def linear(key, out, inp, bias=True):
        shapes[f"{key}.weight"] = (out, inp)
        if bias:
            shapes[f"{key}.bias"] = (out,)

    def norm(key, c, bn=False):
        for name in ("weight", "bias") + (("running_mean", "running_var") if bn else ()):
            shapes[f"{key}.{name}"] = (c,)
        if bn:
            shapes[f"{key}.num_batches_tracked"] = ()

    def conv(key, out, inp, k, bias=True):
        shapes[f"{key}.weight"] = (out, inp, k, k)
        if bias:
            shapes[f"{key}.bias"] = (out,)

    for extra in ("", "extra_"):
        for s, c in enumerate(hidden, start=1):
            conv(f"backbone.{extra}patch_embed{s}.proj", c, 3 if s == 1 else hidden[s - 2],
                 7 if s == 1 else 3)
            norm(f"backbone.{extra}patch_embed{s}.norm", c)
            for j in range(depths[s - 1]):
                block = f"backbone.{extra}block{s}.{j}"
                norm(f"{block}.norm1", c)
                linear(f"{block}.attn.q", c, c)
                linear(f"{block}.attn.kv", 2 * c, c)
                linear(f"{block}.attn.proj", c, c)
                if sr[s - 1] > 1:
                    conv(f"{block}.attn.sr", c, c, sr[s - 1])
                    norm(f"{block}.attn.norm", c)
                norm(f"{block}.norm2", c)
                linear(f"{block}.mlp.fc1", 4 * c, c)
                shapes[f"{block}.mlp.dwconv.dwconv.weight"], shapes[f"{block}.mlp.dwconv.dwconv.bias"] = \
                    (4 * c, 1, 3, 3), (4 * c,)
                linear(f"{block}.mlp.fc2", c, 4 * c)
            norm(f"backbone.{extra}norm{s}", c)
    for i, c in enumerate(hidden):
        linear(f"backbone.FRMs.{i}.channel_weights.mlp.0", 4 * c, 4 * c)
        linear(f"backbone.FRMs.{i}.channel_weights.mlp.2", 2 * c, 4 * c)
        conv(f"backbone.FRMs.{i}.spatial_weights.mlp.0", c, 2 * c, 1)
        conv(f"backbone.FRMs.{i}.spatial_weights.mlp.2", 2, c, 1)
        ffm = f"backbone.FFMs.{i}"
        for k in (1, 2):
            linear(f"{ffm}.cross.channel_proj{k}", 2 * c, c)
            linear(f"{ffm}.cross.cross_attn.kv{k}", 2 * c, c, bias=False)
            linear(f"{ffm}.cross.end_proj{k}", c, 2 * c)
            norm(f"{ffm}.cross.norm{k}", c)
        conv(f"{ffm}.channel_emb.residual", c, 2 * c, 1, bias=False)
        conv(f"{ffm}.channel_emb.channel_embed.0", c, 2 * c, 1)
        shapes[f"{ffm}.channel_emb.channel_embed.1.weight"] = (c, 1, 3, 3)
        shapes[f"{ffm}.channel_emb.channel_embed.1.bias"] = (c,)
        conv(f"{ffm}.channel_emb.channel_embed.3", c, c, 1)
        norm(f"{ffm}.channel_emb.channel_embed.4", c, bn=True)
        norm(f"{ffm}.channel_emb.norm", c, bn=True)
    for head, classes in (("decode_head", 2), ("decode_head_conf", 1)):
        for k, c in enumerate(hidden, start=1):
            linear(f"{head}.linear_c{k}.proj", decoder, c)
        conv(f"{head}.linear_fuse.0", decoder, 4 * decoder, 1)
        norm(f"{head}.linear_fuse.1", decoder, bn=True)
        conv(f"{head}.linear_pred", classes, decoder, 1)
    linear("detection.0", 128, 8)
    linear("detection.3", 1, 128)
    return {k: torch.Size(v) for k, v in shapes.items()}


def _random_state(layout: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {k: (torch.tensor(3) if not shape else torch.rand(shape, generator=generator) + 0.5
                if k.endswith("running_var") else torch.randn(shape, generator=generator) * 0.05)
            for k, shape in layout.items()}


def test_released_trufor_weights_convert_once_to_safetensors(tmp_path):
    from diffseg30k.detector import Detector
    from diffseg30k.models.trufor_weights import TruForWeightsError, convert_released_weights

    state = _random_state(_published_trufor_layout())
    source = tmp_path / "trufor.pth.tar"
    torch.save({"epoch": 10, "state_dict": {f"module.{k}": v for k, v in state.items()}}, source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    with pytest.raises(TruForWeightsError, match="sha256"):
        convert_released_weights(source, tmp_path / "bad", sha256="0" * 64)
    out = convert_released_weights(source, tmp_path / "converted", sha256=digest,
                                   num_attention_heads=[1, 1, 2, 2])
    assert not list(out.glob("*.bin")) and (out / "model.safetensors").is_file()
    model = load_model(out)
    got = model.state_dict()
    kv = state["backbone.extra_block3.0.attn.kv.weight"]
    assert torch.equal(got["noise_encoder.stages.2.blocks.0.attention.k_proj.weight"], kv[:64])
    assert torch.equal(got["noise_encoder.stages.2.blocks.0.attention.v_proj.weight"], kv[64:])
    assert torch.equal(got["rgb_encoder.stages.0.patch_embeddings.layer_norm.bias"],
                       state["backbone.patch_embed1.norm.bias"])
    assert torch.equal(got["noiseprint.11.weight"], state["dncnn.11.weight"])
    assert torch.equal(got["fuse.3.cross.cross_attn.kv2.weight"],
                       state["backbone.FFMs.3.cross.cross_attn.kv2.weight"])
    assert torch.equal(got["confidence_head.linear_projections.3.proj.weight"],
                       state["decode_head_conf.linear_c4.proj.weight"])
    assert torch.equal(got["detection.3.weight"], state["detection.3.weight"])
    # the fuse convolution's bias is folded into the BatchNorm: same function in eval mode
    features = torch.randn(1, 4 * 64, 5, 5)
    conv = torch.nn.functional.conv2d(features, state["decode_head.linear_fuse.0.weight"],
                                      state["decode_head.linear_fuse.0.bias"])
    bn = lambda x, p: torch.nn.functional.batch_norm(  # noqa: E731
        x, p["running_mean"], p["running_var"], p["weight"], p["bias"], eps=model.decode_head.batch_norm.eps)
    expected = bn(conv, {n: state[f"decode_head.linear_fuse.1.{n}"]
                         for n in ("running_mean", "running_var", "weight", "bias")})
    head = model.decode_head.eval()
    torch.testing.assert_close(head.batch_norm(head.linear_fuse(features)), expected)
    assert convert_released_weights(source, out) == out  # converted once: the folder is reused
    result = Detector.from_pretrained(out, device="cpu")(np.zeros((40, 48, 3), np.uint8))
    assert result.label_map.shape == (40, 48)
    # the converted folder initialises a semantic TruFor (all but the 2-class classifier)
    semantic = build_model("trufor-tiny", task="semantic", pretrained=str(out))
    assert get_spec("trufor-tiny").tiny
    assert semantic.config.num_labels == 9


def test_released_trufor_checkpoint_errors_are_clear(tmp_path):
    from diffseg30k.models.trufor_weights import TruForWeightsError, convert_released_weights

    pickled = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "hook": _published_trufor_layout}, pickled)
    with pytest.raises(TruForWeightsError, match="weights_only"):
        convert_released_weights(pickled, tmp_path / "a")
    foreign = tmp_path / "foreign.pth"
    torch.save({"state_dict": {"encoder.conv.weight": torch.zeros(1)}}, foreign)
    with pytest.raises(TruForWeightsError, match="layout"):
        convert_released_weights(foreign, tmp_path / "b")
    with pytest.raises(TruForWeightsError, match="sha256"):
        convert_released_weights("https://example.invalid/trufor.pth.tar", tmp_path / "c")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --------------------------------------------------------------------------------- DCT frequency
def test_block_dct_is_orthonormal_and_anchored_on_the_jpeg_grid():
    from diffseg30k.models.dct_frequency import BlockDCT, dct_basis

    basis = dct_basis().flatten(1).double()
    torch.testing.assert_close(basis @ basis.T, torch.eye(64, dtype=torch.float64), atol=1e-5, rtol=0)
    x = torch.randn(1, 3, 32, 40)
    low, high, coeffs = BlockDCT(low_band=4).bands(x)
    torch.testing.assert_close(low + high, x)
    everything, nothing, _ = BlockDCT(low_band=15).bands(x)
    torch.testing.assert_close(everything, x, atol=1e-5, rtol=0)
    assert nothing.abs().max() < 1e-5 and coeffs.shape == (1, 192, 4, 5)
    flat = torch.ones(1, 1, 16, 16)  # constant 8x8 blocks have only a DC coefficient
    assert BlockDCT(4).bands(flat)[1].abs().max() < 1e-5
    shifted = torch.roll(x, shifts=(8, 8), dims=(2, 3))  # shifting by one block shifts the coefficients
    torch.testing.assert_close(BlockDCT(4).coefficients(shifted), torch.roll(coeffs, (1, 1), (2, 3)))


def test_mit_weights_initialise_both_frequency_branches(tmp_path):
    from transformers import SegformerForImageClassification

    from diffseg30k.models.mit_streams import encoder_config, mit_sizes

    encoder = SegformerForImageClassification(encoder_config(mit_sizes("tiny"), num_labels=3))
    encoder.save_pretrained(tmp_path)
    from diffseg30k.models.common import diffseg_config_kwargs
    from diffseg30k.models.dct_frequency import build_dct_frequency

    extra = diffseg_config_kwargs("binary", None, 64, "dctfreq-tiny")
    model = build_dct_frequency("tiny", extra, str(tmp_path))
    source = encoder.segformer.state_dict()
    for branch in (model.high_encoder, model.low_encoder):
        widened = branch.state_dict()["stages.0.patch_embeddings.proj.weight"]
        assert torch.equal(widened[:, :3], source["stages.0.patch_embeddings.proj.weight"])
        assert not widened[:, 3:].any()
        assert torch.equal(branch.state_dict()["stages.3.blocks.0.mlp.fc2.weight"],
                           source["stages.3.blocks.0.mlp.fc2.weight"])


# ----------------------------------------------------------------------------- foundation features
def test_foundation_backbone_is_frozen_and_loaded_by_concrete_class(tmp_path):
    from transformers import CLIPConfig, CLIPModel, Dinov2Config, Dinov2Model

    from diffseg30k.models.common import diffseg_config_kwargs
    from diffseg30k.models.foundation import TINY_DINOV2, build_foundation

    vit = Dinov2Model(Dinov2Config(**{k: v for k, v in TINY_DINOV2.items() if k != "model_type"}))
    vit.save_pretrained(tmp_path / "dinov2")
    extra = diffseg_config_kwargs("binary", None, 64, "foundation-tiny")
    model = build_foundation({}, extra, str(tmp_path / "dinov2"), head_channels=16, detail_channels=8,
                             window_size=64, window_overlap=16).train()
    assert torch.equal(model.backbone.state_dict()["embeddings.patch_embeddings.projection.weight"],
                       vit.state_dict()["embeddings.patch_embeddings.projection.weight"])
    assert not model.backbone.training and not any(p.requires_grad for p in model.backbone.parameters())
    labels = torch.zeros(1, 64, 64, dtype=torch.long)
    model(pixel_values=torch.randn(1, 3, 64, 64), labels=labels).loss.backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.classifier.weight.grad is not None
    # CLIP checkpoints are whole CLIPModels: the vision tower loads, CLIP's normalisation is stored
    clip = CLIPModel(CLIPConfig(vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                                   num_attention_heads=2, patch_size=8, image_size=32),
                                text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                 num_attention_heads=2), projection_dim=16))
    clip.save_pretrained(tmp_path / "clip")
    clip_model = build_foundation({}, extra, str(tmp_path / "clip"), head_channels=16, window_size=64,
                                  window_overlap=16).eval()
    assert type(clip_model.backbone).__name__ == "CLIPVisionModel"
    assert clip_model.config.image_mean[0] == pytest.approx(0.4815, abs=1e-3)
    with torch.no_grad():  # 96 px > 64 px window: native-resolution sliding windows
        assert clip_model(pixel_values=torch.randn(1, 3, 96, 72)).logits.shape == (1, 2, 24, 18)


def test_foundation_sliding_windows_match_one_pass_inside_a_window():
    model = build_model("foundation-tiny", task="binary").eval()
    x = torch.randn(1, 3, 100, 120)
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values=x).logits, model.window_logits(x))
        big = torch.randn(1, 3, 300, 200)
        windowed = model(pixel_values=big).logits
        assert windowed.shape == (1, 2, 75, 50)
        # the first window's corner is that window's own logits (windows start at 0, 96, 172 / 0, 72)
        corner = model.window_logits(big[..., :128, :128])[..., :16, :16]
        torch.testing.assert_close(windowed[..., :16, :16], corner)


# ------------------------------------------------------------------------------ --augment trufor
def test_trufor_augmentation_aligns_crops_to_the_jpeg_grid():
    from PIL import Image

    from diffseg30k.data.transforms import TRUFOR_AUGMENT, make_augment, plan_crop, train_crop

    assert make_augment("trufor") is TRUFOR_AUGMENT and TRUFOR_AUGMENT.align == 8
    rng = np.random.default_rng(0)
    plans = [plan_crop(517, 389, 64, rng, TRUFOR_AUGMENT) for _ in range(200)]
    assert all(p.box[0] % 8 == 0 and p.box[1] % 8 == 0 for p in plans)
    assert {round(p.scale, 1) for p in plans} > {1.0} and all(0.5 <= p.scale <= 1.5 for p in plans)
    robust = [plan_crop(517, 389, 64, rng, make_augment("robust")) for _ in range(50)]
    assert any(p.box[0] % 8 for p in robust)  # only the trufor recipe aligns
    image = Image.fromarray(rng.integers(0, 255, (90, 60, 3), dtype=np.uint8))
    pixels, labels = train_crop(image, np.zeros((90, 60), np.uint8), 64, rng, TRUFOR_AUGMENT)
    assert pixels.shape == (64, 64, 3) and labels.shape == (64, 64)


# ------------------------------------------------------------------ benchmark: --families and ratios
def test_benchmark_families_option_picks_each_configs_models(tmp_path, capsys):
    from diffseg30k.cli import main
    from diffseg30k.experiments.config import paper_config, quick_config

    quick = quick_config().with_families(["segformer", "trufor", "dctfreq", "foundation"])
    assert quick.families["trufor"] == "trufor-tiny" and quick.ablation_families[-1] == "foundation"
    assert paper_config().with_families(["foundation"]).families == {"foundation": "foundation-dinov2-b"}
    with pytest.raises(ValueError, match="unknown"):
        quick_config().with_families(["unet"])
    assert main(["benchmark", "--families", "segformer,trufor", "--dry-run", "--out", str(tmp_path)]) == 0
    assert "families" in capsys.readouterr().out


def test_robustness_ratio_interval_resamples_both_sets_jointly(tmp_path):
    from diffseg30k.experiments.families import paired_ratio
    from diffseg30k.experiments.predictions import PredictionRecord, write_predictions

    rng = np.random.default_rng(0)
    references = [rng.integers(0, 9, (16, 16)).astype(np.uint8) for _ in range(12)]
    meta = {"task": "semantic"}
    clean = write_predictions(tmp_path / "clean", [PredictionRecord(str(i), r, r, 1.0)
                                                   for i, r in enumerate(references)], meta)
    broken = [r if i % 2 else np.zeros_like(r) for i, r in enumerate(references)]
    jpeg = write_predictions(tmp_path / "jpeg", [PredictionRecord(str(i), b, r, 1.0)
                                                 for i, (b, r) in enumerate(zip(broken, references))], meta)
    same = paired_ratio(clean, clean, resamples=20)
    assert same["ratio"] == pytest.approx(1.0) and same["ci"] == pytest.approx([1.0, 1.0])
    worse = paired_ratio(clean, jpeg, resamples=50)
    assert 0.2 < worse["ratio"] < 0.9 and worse["count"] == 12
    assert worse["ci"][0] <= worse["ratio"] <= worse["ci"][1] < 1.0


@pytest.mark.parametrize("name", ["trufor-tiny", "foundation-tiny"])
def test_new_family_checkpoints_stage_for_push(name, tmp_path):
    from diffseg30k.hub.repo import stage_model_repo
    from diffseg30k.training.checkpoints import export_detector

    export_detector(build_model(name, task="binary"), tmp_path / "ck", {"step": 0})
    folder, _ = stage_model_repo(tmp_path / "ck", tmp_path / "repo", f"someone/{name}")
    assert (folder / "model.safetensors").is_file() and name in (folder / "README.md").read_text()
    assert type(load_model(folder)).__name__ == type(build_model(name)).__name__


# ------------------------------------------------------------------ registry shape (issue 14)
@pytest.mark.parametrize("name, display, prefixes", [
    ("trufor-b2", "TruFor-style", ("rgb_encoder.", "noise_encoder.")),
    ("dctfreq-tiny", "DCT-frequency", ("high_encoder.", "low_encoder.")),
    ("foundation-clip-b16", "Foundation (frozen ViT)", ("backbone.",)),
])
def test_new_family_specs_carry_display_and_backbone_prefixes(name, display, prefixes):
    spec = get_spec(name)
    assert spec.display_name == display and spec.backbone_prefixes == prefixes and len(spec.short_name) == 3


def test_spec_prefixes_put_both_streams_in_the_backbone_group():
    from diffseg30k.training.config import TrainConfig
    from diffseg30k.training.loop import _param_groups

    model, spec = build_model("trufor-tiny", task="binary"), get_spec("trufor-tiny")
    config = TrainConfig(dataset=None, out="x", lr=1.0, head_lr_mult=10.0, weight_decay=0.0)
    by_lr: dict[float, int] = {}
    for group in _param_groups(model, config, spec.backbone_prefixes):
        by_lr[group["lr"]] = by_lr.get(group["lr"], 0) + sum(p.numel() for p in group["params"])
    streams = sum(p.numel() for n, p in model.named_parameters() if n.startswith(spec.backbone_prefixes))
    assert streams > 0 and by_lr[1.0] == streams and by_lr[10.0] > 0
    assert any(n.startswith("noise_encoder.") for n, _ in model.named_parameters())


def test_augment_trufor_is_a_generated_train_flag():
    import argparse
    import dataclasses

    from diffseg30k.cli import train_cmd
    from diffseg30k.data.transforms import AUGMENTATIONS
    from diffseg30k.training.config import TrainConfig

    field = next(f for f in dataclasses.fields(TrainConfig) if f.name == "augment")
    assert tuple(field.metadata["choices"]) == AUGMENTATIONS and "trufor" in field.metadata["help"]
    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    assert parser.parse_args(["--augment", "trufor"]).augment == "trufor"
    with pytest.raises(SystemExit):
        parser.parse_args(["--augment", "truform"])


def test_families_table_registers_from_its_module_with_spec_display_names():
    from diffseg30k.experiments.families import TABLE
    from diffseg30k.experiments.report import renderers, table_titles
    from diffseg30k.experiments.steps import plan_steps

    steps = [s.name for s in plan_steps()]
    assert steps.index("tab8") < steps.index("figures") < steps.index("families") < steps.index("cross")
    assert list(table_titles())[-2:] == ["families", "cross"] and TABLE.requires == ("tab2", "tab4")
    results = {"families": {"distortions": ["jpeg60"], "rows": [
        {"family": "trufor", "model": "trufor-tiny", "binary_miou": 0.5, "semantic_miou": 0.25,
         "ratios": {"jpeg60": {"ratio": 0.8, "ci": [0.7, 0.9]}}}]}}
    text = "\n".join(renderers()["families"](results))
    assert "TruFor-style (`trufor-tiny`)" in text and "0.800 [0.700, 0.900]" in text
