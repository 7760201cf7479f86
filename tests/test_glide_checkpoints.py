"""Conversion of glide-text2im checkpoints: every tensor in the original naming is consumed."""

from __future__ import annotations

import hashlib
import warnings

import pytest
import torch

from diffseg30k.generation.glide import (
    BASE_INPAINT,
    TINY_BASE_INPAINT,
    TINY_UPSAMPLE_INPAINT,
    UPSAMPLE_INPAINT,
    CheckpointError,
    GlideConfig,
    convert_checkpoint,
    convert_state_dict,
    load_unet,
)
from diffseg30k.generation.glide.checkpoints import recorded_sha256
from diffseg30k.io import cache_dir


def original_layout(cfg: GlideConfig) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of glide-text2im's (Super-Res)InpaintText2ImUNet, written out from
    its constructor (unet.py / text2im_model.py / xf.py), independently of this toolkit's modules."""
    shapes: dict[str, tuple[int, ...]] = {}
    mc, width = cfg.model_channels, cfg.xf_width
    emb = 4 * mc

    def linear(name, cin, cout):
        shapes.update({f"{name}.weight": (cout, cin), f"{name}.bias": (cout,)})

    def conv(name, cin, cout, k=3, dims=2):
        shapes.update({f"{name}.weight": (cout, cin) + (k,) * dims, f"{name}.bias": (cout,)})

    def norm(name, c):
        shapes.update({f"{name}.weight": (c,), f"{name}.bias": (c,)})

    def resblock(name, cin, cout):
        norm(f"{name}.in_layers.0", cin)
        conv(f"{name}.in_layers.2", cin, cout)
        linear(f"{name}.emb_layers.1", emb, 2 * cout)
        norm(f"{name}.out_layers.0", cout)
        conv(f"{name}.out_layers.3", cout, cout)
        if cin != cout:
            conv(f"{name}.skip_connection", cin, cout, k=1)

    def attention(name, c):
        norm(f"{name}.norm", c)
        conv(f"{name}.qkv", c, 3 * c, k=1, dims=1)
        conv(f"{name}.encoder_kv", width, 2 * c, k=1, dims=1)
        conv(f"{name}.proj_out", c, c, k=1, dims=1)

    linear("time_embed.0", mc, emb)
    linear("time_embed.2", emb, emb)
    attn_ds = {cfg.image_size // r for r in cfg.attention_resolutions}
    mult = cfg.mult
    ch = mult[0] * mc
    conv("input_blocks.0.0", cfg.in_channels, ch)
    chans, ds, block = [ch], 1, 1
    for level, m in enumerate(mult):
        for _ in range(cfg.num_res_blocks):
            resblock(f"input_blocks.{block}.0", ch, m * mc)
            ch = m * mc
            if ds in attn_ds:
                attention(f"input_blocks.{block}.1", ch)
            chans.append(ch)
            block += 1
        if level != len(mult) - 1:
            resblock(f"input_blocks.{block}.0", ch, ch)
            chans.append(ch)
            ds *= 2
            block += 1
    resblock("middle_block.0", ch, ch)
    attention("middle_block.1", ch)
    resblock("middle_block.2", ch, ch)
    block = 0
    for level, m in reversed(list(enumerate(mult))):
        for i in range(cfg.num_res_blocks + 1):
            resblock(f"output_blocks.{block}.0", ch + chans.pop(), m * mc)
            ch, position = m * mc, 1
            if ds in attn_ds:
                attention(f"output_blocks.{block}.1", ch)
                position = 2
            if level and i == cfg.num_res_blocks:
                resblock(f"output_blocks.{block}.{position}", ch, ch)
                ds //= 2
            block += 1
    norm("out.0", ch)
    conv("out.2", ch, 6)
    for i in range(cfg.xf_layers):
        prefix = f"transformer.resblocks.{i}"
        linear(f"{prefix}.attn.c_qkv", width, 3 * width)
        linear(f"{prefix}.attn.c_proj", width, width)
        norm(f"{prefix}.ln_1", width)
        linear(f"{prefix}.mlp.c_fc", width, 4 * width)
        linear(f"{prefix}.mlp.c_proj", 4 * width, width)
        norm(f"{prefix}.ln_2", width)
    norm("final_ln", width)
    shapes["token_embedding.weight"] = (cfg.n_vocab, width)
    shapes["positional_embedding"] = (cfg.text_ctx, width)
    shapes["padding_embedding"] = (cfg.text_ctx, width)
    linear("transformer_proj", width, emb)
    return shapes


def original_state_dict(cfg: GlideConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=generator) * 0.05
            for name, shape in original_layout(cfg).items()}


def _save(tmp_path, cfg, name="base_inpaint.pt", seed=0):
    path = tmp_path / name
    torch.save(original_state_dict(cfg, seed), path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("cfg", [BASE_INPAINT, UPSAMPLE_INPAINT], ids=["base-inpaint", "upsample-inpaint"])
def test_full_size_original_names_map_onto_every_parameter(cfg):
    with torch.device("meta"):
        original = {k: torch.empty(s) for k, s in original_layout(cfg).items()}
    converted = convert_state_dict(original, cfg)  # raises on any unused tensor or unfilled parameter
    assert len(converted) == len(original)
    expected_parameters = 398_368_198 if cfg.super_res else 385_037_638  # as glide-text2im builds them
    assert sum(t.numel() for t in converted.values()) == expected_parameters


@pytest.mark.parametrize("cfg", [TINY_BASE_INPAINT, TINY_UPSAMPLE_INPAINT], ids=["base", "upsampler"])
def test_conversion_consumes_every_tensor_and_loads_strictly(tmp_path, cfg):
    path, digest = _save(tmp_path, cfg)
    original = torch.load(path, weights_only=True)
    target = convert_checkpoint(path, cfg, sha256=digest, progress=False)
    assert target.suffix == ".safetensors" and digest[:16] in target.name
    model = load_unet(path, cfg, sha256=digest)
    state = model.state_dict()
    assert len(state) == len(original)
    assert torch.equal(state["input_conv.weight"], original["input_blocks.0.0.weight"])
    assert torch.equal(state["text_encoder.layers.1.fc2.weight"],
                       original["transformer.resblocks.1.mlp.c_proj.weight"])
    assert torch.equal(state["middle.attention.qkv.weight"], original["middle_block.1.qkv.weight"][..., 0])
    # every original value appears once in the converted model
    assert sorted(t.sum().item() for t in state.values()) == pytest.approx(
        sorted(t.sum().item() for t in original.values()))
    # a second load reads only the converted file, even when the .pt is gone
    path.unlink()
    assert torch.equal(load_unet(path, cfg, sha256=digest).output_conv.weight, state["output_conv.weight"])


def test_wrong_sha256_is_rejected(tmp_path):
    path, digest = _save(tmp_path, TINY_BASE_INPAINT)
    wrong = "0" * 64
    with pytest.raises(CheckpointError, match=f"{path.name}.*sha256 is {digest}, expected {wrong}"):
        load_unet(path, TINY_BASE_INPAINT, sha256=wrong)


def test_unpinned_digest_is_recorded_then_enforced(tmp_path):
    path, digest = _save(tmp_path, TINY_BASE_INPAINT, name="unpinned.pt")
    with pytest.warns(UserWarning, match=f"no sha256 pinned; computed {digest}"):
        convert_checkpoint(path, TINY_BASE_INPAINT, progress=False)
    assert recorded_sha256(str(path)) == digest
    torch.save(original_state_dict(TINY_BASE_INPAINT, seed=1), path)  # the file changes on disk ...
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_unet(path, TINY_BASE_INPAINT)  # ... but the verified conversion is what loads
    first = original_state_dict(TINY_BASE_INPAINT)["input_blocks.0.0.weight"]
    assert torch.equal(model.input_conv.weight, first)
    (cache_dir("glide") / f"unpinned-{digest[:16]}.safetensors").unlink()
    with pytest.raises(CheckpointError, match=f"expected {digest}"):  # re-conversion checks the record
        load_unet(path, TINY_BASE_INPAINT)


def test_url_sources_are_downloaded_verified_and_converted(tmp_path):
    path, digest = _save(tmp_path, TINY_UPSAMPLE_INPAINT, name="upsample_inpaint.pt")
    model = load_unet(path.as_uri(), TINY_UPSAMPLE_INPAINT, sha256=digest, progress=False)
    assert model.config.super_res and model.input_conv.in_channels == 10
    assert not list((cache_dir("glide", "downloads")).glob("upsample_inpaint*"))  # download removed
    path.unlink()
    assert load_unet(path.as_uri(), TINY_UPSAMPLE_INPAINT, sha256=digest).config.super_res  # from cache


@pytest.mark.parametrize("change", ["extra", "missing", "shape"])
def test_mismatched_checkpoints_name_the_problem(tmp_path, change):
    state = original_state_dict(TINY_BASE_INPAINT)
    if change == "extra":
        state["unemb.weight"] = torch.zeros(3)
    elif change == "missing":
        del state["output_blocks.0.0.out_layers.3.bias"]
    else:
        state["token_embedding.weight"] = torch.zeros(7, TINY_BASE_INPAINT.xf_width)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    expected = {"extra": "unexpected.*unemb.weight", "missing": r"missing.*decoder\.0\.resnet\.conv2\.bias",
                "shape": "shape mismatch.*token_embedding"}[change]
    with pytest.raises(CheckpointError, match=expected), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_unet(path, TINY_BASE_INPAINT)


def test_pickled_code_and_missing_files_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weights": torch.zeros(1), "config": GlideConfig()}, path)
    with pytest.raises(CheckpointError, match="not a plain tensor file .*it was not loaded") as info, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert_checkpoint(path, TINY_BASE_INPAINT, progress=False)
    assert "weights_only" not in str(info.value)  # torch's advice to unpickle is never passed on
    with pytest.raises(CheckpointError, match="not found"):
        load_unet(tmp_path / "absent.pt", TINY_BASE_INPAINT)


def test_paper_profile_loads_checkpoints_and_tokenizer_from_local_files(tmp_path):
    """The adapter's paper path (checkpoints + tokenizer folder), here with tiny-architecture files."""
    import numpy as np
    from PIL import Image

    from diffseg30k.generation.editors.base import EditRequest
    from diffseg30k.generation.editors.registry import create_editor
    from diffseg30k.generation.glide import write_tiny_tokenizer

    base, base_digest = _save(tmp_path, TINY_BASE_INPAINT, name="base_inpaint.pt")
    up, up_digest = _save(tmp_path, TINY_UPSAMPLE_INPAINT, name="upsample_inpaint.pt", seed=1)
    editor = create_editor("glide", profile="paper", base_checkpoint=str(base), base_sha256=base_digest,
                           upsample_checkpoint=str(up), upsample_sha256=up_digest,
                           tokenizer=str(write_tiny_tokenizer(tmp_path / "tok")),
                           base_config="tiny-base-inpaint", upsample_config="tiny-upsample-inpaint",
                           steps=2, upsample_steps=2)
    editor.load()
    assert editor.pipeline.guidance_scale == 5.0  # the paper's guidance scale
    mask = np.zeros((32, 32), dtype=bool)
    mask[8:20, 8:20] = True
    image = Image.new("RGB", (32, 32), (120, 60, 30))
    out = editor.inpaint(EditRequest(image=image, mask=mask, prompt="a dog", seed=0))
    assert out.size == (64, 64)
    with pytest.raises(CheckpointError, match="sha256"):
        create_editor("glide", profile="paper", base_checkpoint=str(base), base_sha256="f" * 64,
                      base_config="tiny-base-inpaint").load()


def _reference_inputs(cfg: GlideConfig):
    g = torch.Generator().manual_seed(123)
    s = cfg.image_size
    x = torch.randn(2, 3, s, s, generator=g)
    image = torch.rand(2, 3, s, s, generator=g) * 2 - 1
    known = (torch.rand(2, 1, s, s, generator=g) > 0.5).float()
    tokens = torch.randint(0, cfg.n_vocab, (2, cfg.text_ctx), generator=g)
    mask = torch.arange(cfg.text_ctx)[None] < torch.tensor([[5], [0]])
    low = torch.rand(2, 3, s // 4, s // 4, generator=g) * 2 - 1
    return x, torch.tensor([10, 40]), image, known, tokens, mask, low


#: Outputs of openai/glide-text2im (commit 69b5307) for ``original_state_dict(cfg, seed=0)`` and
#: ``_reference_inputs(cfg)``: out[0, :, 3, 5], out[1, :, 7, 2] and mean |out| (its GroupNorm set to
#: the tiny configs' 8 groups).
REFERENCE_OUTPUTS = {
    False: ([0.01642, -0.073305, 0.045205, -0.05823, -0.033219, -0.037027],
            [0.016068, -0.099357, 0.044702, -0.034633, -0.027773, -0.040146], 0.040194),
    True: ([0.051093, 0.044765, 0.026795, 0.106208, -0.053273, 0.078409],
           [0.100287, 0.039033, -0.006096, 0.092947, -0.045338, 0.085703], 0.064545),
}


@pytest.mark.parametrize("cfg", [TINY_BASE_INPAINT, TINY_UPSAMPLE_INPAINT], ids=["base", "upsampler"])
def test_converted_weights_reproduce_the_original_implementation(tmp_path, cfg):
    path, digest = _save(tmp_path, cfg)
    model = load_unet(path, cfg, sha256=digest)
    x, t, image, known, tokens, mask, low = _reference_inputs(cfg)
    with torch.no_grad():
        out = model(x, t, image, known, tokens, mask, low_res=low if cfg.super_res else None)
    first, second, mean_abs = REFERENCE_OUTPUTS[cfg.super_res]
    assert out[0, :, 3, 5].tolist() == pytest.approx(first, abs=2e-5)
    assert out[1, :, 7, 2].tolist() == pytest.approx(second, abs=2e-5)
    assert out.abs().mean().item() == pytest.approx(mean_abs, abs=2e-6)


def test_respaced_schedules_match_the_original_implementation():
    from diffseg30k.generation.glide import GaussianDiffusion
    from diffseg30k.generation.glide.diffusion import beta_schedule

    # glide-text2im SpacedDiffusion: betas[0], betas[-1], sum, timestep_map[:3], posterior log-var[1]
    reference = {("linear", "fast27"): (9.999999999998899e-05, 0.9721254110239479, 4.754871879309956,
                                        [0, 22, 44], -9.224006664764183),
                 ("squaredcos_cap_v2", "100"): (4.128422482196914e-05, 0.9999899991985922, 7.873191357093428,
                                                [0, 10, 20], -10.15394511055059)}
    for (schedule, spacing), (first, last, total, steps, log_var) in reference.items():
        diffusion = GaussianDiffusion(beta_schedule(schedule, 1000), spacing)
        betas = diffusion.tables["betas"]
        assert betas[0].item() == pytest.approx(first, rel=1e-12)
        assert betas[-1].item() == pytest.approx(last, rel=1e-12)
        assert betas.sum().item() == pytest.approx(total, rel=1e-12)
        assert diffusion.timestep_map[:3].tolist() == steps
        assert diffusion.tables["posterior_log_variance"][1].item() == pytest.approx(log_var, rel=1e-12)


def test_a_download_failing_verification_is_fetched_again_next_time(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    url_path, _ = _save(served, TINY_BASE_INPAINT, name="retry_inpaint.pt", seed=1)  # a wrong file served
    good, digest = _save(tmp_path, TINY_BASE_INPAINT, name="retry_inpaint.pt", seed=0)
    with pytest.raises(CheckpointError, match=f"retry_inpaint.pt: sha256 is .*, expected {digest}"):
        load_unet(url_path.as_uri(), TINY_BASE_INPAINT, sha256=digest, progress=False)
    url_path.write_bytes(good.read_bytes())  # the server now has the right file
    model = load_unet(url_path.as_uri(), TINY_BASE_INPAINT, sha256=digest, progress=False)
    expected = original_state_dict(TINY_BASE_INPAINT)["input_blocks.0.0.weight"]
    assert torch.equal(model.input_conv.weight, expected)
