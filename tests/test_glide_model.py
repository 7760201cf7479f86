"""GLIDE's models, tokenizer and sampler with tiny random configurations (offline)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from diffseg30k.generation.glide import (
    TINY_BASE_INPAINT,
    TINY_UPSAMPLE_INPAINT,
    GaussianDiffusion,
    GlideInpainter,
    GlideTokenizer,
    GlideUNet,
    classifier_free_guidance,
    keep_known,
    write_tiny_tokenizer,
)
from diffseg30k.generation.glide.diffusion import beta_schedule, space_timesteps
from diffseg30k.generation.glide.pipeline import known_mask


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return write_tiny_tokenizer(tmp_path_factory.mktemp("glide-tokenizer"), TINY_BASE_INPAINT.n_vocab)


@pytest.fixture(scope="module")
def inpainter(tokenizer_dir):
    return GlideInpainter.tiny(seed=0, tokenizer_folder=tokenizer_dir)


def _scene(size: int = 48) -> tuple[Image.Image, np.ndarray]:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8))
    paint = np.zeros((size, size + 8), dtype=bool)
    paint[10:30, 12:40] = True
    return image, paint


# --------------------------------------------------------------------------------- tokenizer
def test_tokenizer_pads_truncates_and_lowercases(tokenizer_dir):
    tok = GlideTokenizer.from_folder(tokenizer_dir)
    assert tok.n_vocab == TINY_BASE_INPAINT.n_vocab and tok.end_token == tok.n_vocab - 1
    assert tok.encode("A Red CAR") == tok.encode("a red car") != []
    ids = tok.encode("a red car")
    tokens, mask = tok.batch(["a red car", ""], text_ctx=len(ids) + 3)
    assert tokens.shape == mask.shape == (2, len(ids) + 3)
    assert tokens[0].tolist() == ids + [tok.end_token] * 3
    assert mask[0].tolist() == [True] * len(ids) + [False] * 3
    assert not mask[1].any() and (tokens[1] == tok.end_token).all()
    short, short_mask = tok.padded_tokens_and_mask(ids, 2)
    assert short == ids[:2] and short_mask == [True, True]


def test_tokenizer_accepts_openai_file_names_and_names_bad_folders(tokenizer_dir, tmp_path):
    (tmp_path / "encoder.json").write_text((tokenizer_dir / "vocab.json").read_text())
    (tmp_path / "vocab.bpe").write_text((tokenizer_dir / "merges.txt").read_text())
    assert GlideTokenizer.from_pretrained(tmp_path).encode("a dog") == GlideTokenizer.from_folder(
        tokenizer_dir).encode("a dog")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        GlideTokenizer.from_folder(empty)
    (empty / "vocab.json").write_text(json.dumps({"a": 0}))
    (empty / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(ValueError, match="endoftext"):
        GlideTokenizer.from_folder(empty)


# --------------------------------------------------------------------------------- models
@pytest.mark.parametrize("config", [TINY_BASE_INPAINT, TINY_UPSAMPLE_INPAINT], ids=["base", "upsampler"])
def test_unet_shapes_and_text_conditioning(config):
    torch.manual_seed(0)
    model = GlideUNet(config).eval()
    assert model.input_conv.in_channels == (10 if config.super_res else 7)
    side = config.image_size
    x, image = torch.randn(2, 3, side, side), torch.rand(2, 3, side, side) * 2 - 1
    known = torch.zeros(2, 1, side, side)
    tokens = torch.randint(0, config.n_vocab, (2, config.text_ctx))
    mask = torch.zeros(2, config.text_ctx, dtype=torch.bool)
    mask[:, :4] = True
    extra = {"low_res": torch.randn(2, 3, side // 4, side // 4)} if config.super_res else {}
    with torch.no_grad():
        out = model(x, torch.tensor([5, 30]), image, known, tokens, mask, **extra)
        assert out.shape == (2, 6, side, side) and torch.isfinite(out).all()
        other_text = model(x, torch.tensor([5, 30]), image, known, tokens.flip(1), mask, **extra)
        assert not torch.allclose(out, other_text)  # the prompt reaches the output
        padded_differently = model(x, torch.tensor([5, 30]), image, known, tokens, ~mask, **extra)
        assert not torch.allclose(out, padded_differently)  # padding embeddings replace masked tokens
    if config.super_res:
        with pytest.raises(ValueError, match="low_res"):
            model(x, torch.tensor([5, 30]), image, known, tokens, mask)


# --------------------------------------------------------------------------------- diffusion
def test_respacing_and_schedules():
    assert len(space_timesteps(1000, "100")) == 100 and space_timesteps(1000, "100")[-1] == 999
    fast = space_timesteps(1000, "fast27")
    assert len(fast) == 27 and 999 not in fast and 997 in fast
    assert space_timesteps(1000, "ddim50") == list(range(0, 1000, 20))
    for name in ("linear", "squaredcos_cap_v2"):
        betas = beta_schedule(name, 1000)
        assert betas.shape == (1000,) and (betas > 0).all() and (betas < 1).all()
    diffusion = GaussianDiffusion(beta_schedule("linear", 1000), "10")
    assert diffusion.num_timesteps == 10 and diffusion.timestep_map.tolist() == space_timesteps(1000, "10")
    with pytest.raises(ValueError):
        space_timesteps(10, "20")


def test_sampler_keeps_known_pixels_exactly():
    torch.manual_seed(0)
    model = GlideUNet(TINY_BASE_INPAINT).eval()
    side = TINY_BASE_INPAINT.image_size
    image = torch.rand(1, 3, side, side) * 2 - 1
    known = torch.ones(1, 1, side, side)
    known[..., 4:12, 3:9] = 0
    tokens = torch.randint(0, TINY_BASE_INPAINT.n_vocab, (1, TINY_BASE_INPAINT.text_ctx))
    text = model.encode_text(tokens, torch.ones_like(tokens, dtype=torch.bool))
    diffusion = GaussianDiffusion.from_config(TINY_BASE_INPAINT, "6")

    def fn(x, t):
        return model(x, t, image, known, text=text)

    with torch.no_grad():
        out = diffusion.sample(fn, (1, 3, side, side), torch.Generator().manual_seed(0),
                               denoise=keep_known(image, known))
        free = diffusion.sample(fn, (1, 3, side, side), torch.Generator().manual_seed(0))
    keep = known.expand_as(out).bool()
    assert torch.allclose(out[keep], image[keep], atol=1e-5)
    assert not torch.allclose(out[~keep], image[~keep], atol=1e-2)
    assert not torch.allclose(free[keep], image[keep], atol=1e-2)  # without the step nothing pins them


def test_classifier_free_guidance_combines_conditional_and_unconditional():
    calls = []

    def model(x, t):
        calls.append(x.shape[0])
        cond = torch.cat([torch.full_like(x, 2.0), torch.full_like(x, 0.5)], dim=1)
        uncond = torch.cat([torch.full_like(x, 1.0), torch.full_like(x, -0.5)], dim=1)
        return torch.cat([cond[: len(x) // 2], uncond[len(x) // 2:]])

    out = classifier_free_guidance(model, 3.0)(torch.zeros(1, 3, 4, 4), torch.tensor([7]))
    assert calls == [2] and out.shape == (1, 6, 4, 4)
    assert torch.allclose(out[:, :3], torch.full((1, 3, 4, 4), 1.0 + 3.0 * (2.0 - 1.0)))
    assert torch.allclose(out[:, 3:], torch.full((1, 3, 4, 4), 0.5))  # conditional variance


def test_guidance_scale_changes_the_result(inpainter):
    image, paint = _scene()
    side = inpainter.base.config.image_size
    small, known = torch.rand(1, 3, side, side) * 2 - 1, known_mask(paint, side)
    results = []
    for scale in (1.0, 4.0):
        inpainter.guidance_scale = scale
        results.append(inpainter.sample_base(small, known, "a red car", torch.Generator().manual_seed(3)))
    inpainter.guidance_scale = 3.0
    assert not torch.allclose(results[0], results[1])
    keep = known.expand_as(results[0]).bool()
    assert torch.allclose(results[0][keep], results[1][keep], atol=1e-5)


# --------------------------------------------------------------------------------- two stages
def test_two_stage_inpainting_is_seeded_and_keeps_known_pixels(inpainter):
    image, paint = _scene()
    first = np.asarray(inpainter(image, paint, "a red car", seed=7))
    again = np.asarray(inpainter(image, paint, "a red car", seed=7))
    other = np.asarray(inpainter(image, paint, "a red car", seed=8))
    side = inpainter.resolution
    assert first.shape == (side, side, 3)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    known = torch.nn.functional.interpolate(known_mask(paint, inpainter.base.config.image_size), (side, side))
    known = known[0, 0].numpy().astype(bool)
    source = np.asarray(image.resize((side, side), Image.BICUBIC))
    assert np.array_equal(first[known], source[known])
    assert np.abs(first[~known].astype(int) - source[~known]).mean() > 10
