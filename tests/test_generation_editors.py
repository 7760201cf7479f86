"""Every editor adapter with tiny random components: real diffusers pipeline, exact masks, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from diffseg30k.generation.composite import apply_label, composite
from diffseg30k.generation.editors.base import EditRequest
from diffseg30k.generation.editors.registry import (
    EDITORS,
    create_editor,
    get_editor_class,
    installed_generators,
    is_variant,
    label_of,
)
from diffseg30k.labels import GENERATOR_BY_NAME, GENERATOR_NAMES

DIFFUSERS_CLASSES = {
    "sd2": "StableDiffusionInpaintPipeline", "kolors": "KolorsPipeline",
    "sd35": "StableDiffusion3InpaintPipeline", "flux": "FluxFillPipeline",
    "sdxl": "StableDiffusionXLInpaintPipeline", "hunyuan": "HunyuanDiTPipeline",
    "kandinsky": "KandinskyV22InpaintCombinedPipeline", "sdxl-lora": "StableDiffusionXLInpaintPipeline",
}
TESTED = list(EDITORS)  # every registered adapter's module is importable (it registered itself)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    yy, xx = np.mgrid[0:64, 0:64]
    pixels = np.stack([xx * 4, yy * 4, (xx + yy) * 2], axis=-1) % 256
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


@pytest.fixture(scope="module")
def region() -> np.ndarray:
    mask = np.zeros((64, 64), dtype=bool)
    mask[12:40, 20:52] = True
    return mask


_LOADED: dict[str, object] = {}


def _editor(name: str):
    if name not in _LOADED:
        editor = create_editor(name, profile="mini")
        editor.load()
        _LOADED[name] = editor
    return _LOADED[name]


@pytest.mark.parametrize("name", TESTED)
def test_adapter_edits_only_inside_the_mask_and_labels_exactly_those_pixels(name, photo, region):
    editor = _editor(name)
    if name in DIFFUSERS_CLASSES:
        assert type(editor.pipeline).__name__ == DIFFUSERS_CLASSES[name]
    raw = editor.inpaint(EditRequest(photo, region, "a red car", seed=3))
    assert raw.mode == "RGB"
    edited = composite(photo, raw, region)
    before, after = np.asarray(photo), np.asarray(edited)
    changed = np.any(before != after, axis=-1)
    assert not changed[~region].any(), "pixels outside the mask changed"
    assert changed[region].mean() > 0.5, "the editor left the masked region (almost) untouched"
    labels = apply_label(np.zeros(region.shape, np.uint8), region, GENERATOR_BY_NAME[editor.name].id)
    assert set(np.unique(labels)) == {0, GENERATOR_BY_NAME[label_of(name)].id}
    np.testing.assert_array_equal(labels > 0, region)


@pytest.mark.parametrize("name", [n for n in TESTED if n != "glide"])
def test_adapter_is_deterministic_per_seed(name, photo, region):
    editor = _editor(name)
    first = np.asarray(editor.inpaint(EditRequest(photo, region, "a dog", seed=11)))
    again = np.asarray(editor.inpaint(EditRequest(photo, region, "a dog", seed=11)))
    other = np.asarray(editor.inpaint(EditRequest(photo, region, "a dog", seed=12)))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_text_to_image_makes_an_ai_base():
    image = _editor("sd2").text_to_image("A cat on a sofa.", seed=1, size=64)
    assert image.mode == "RGB" and np.asarray(image).std() > 1


def test_registry_names_every_generator_and_the_lora_variant():
    assert set(GENERATOR_NAMES) <= set(EDITORS)
    assert is_variant("sdxl-lora") and not is_variant("sdxl")
    assert label_of("sdxl-lora") == "sdxl" and get_editor_class("sdxl-lora").editor_name == "sdxl-lora"
    assert "sdxl-lora" not in installed_generators()
    with pytest.raises(ValueError, match="unknown editor 'nope'"):
        create_editor("nope")


def test_lora_variant_loads_a_lora_file_and_changes_the_model(photo, region):
    plain, lora = _editor("sdxl"), _editor("sdxl-lora")
    assert lora.variant == "sdxl-lora" and lora.name == "sdxl"
    assert type(lora.pipeline.scheduler).__name__ == "DDIMScheduler" and lora.num_steps < plain.num_steps
    request = EditRequest(photo, region, "a dog", seed=5, options={"num_inference_steps": 2})
    assert not np.array_equal(np.asarray(plain.inpaint(request)), np.asarray(lora.inpaint(request)))


def test_paper_profile_loads_by_repo_id_with_revision_from_a_local_folder(tmp_path, photo, region):
    tiny = _editor("sd2").pipeline
    tiny.save_pretrained(tmp_path / "sd2", safe_serialization=True)
    assert list((tmp_path / "sd2" / "unet").glob("*.safetensors"))
    editor = create_editor("sd2", repo_id=str(tmp_path / "sd2"), profile="paper", steps=2, resolution=64)
    assert editor.repo_id == str(tmp_path / "sd2")
    editor.load()
    assert type(editor.pipeline).__name__ == "StableDiffusionInpaintPipeline"
    out = editor.inpaint(EditRequest(photo, region, "a red car", seed=3))
    assert out.size == (64, 64)
    assert create_editor("flux").repo_id == GENERATOR_BY_NAME["flux"].editor_repo


def test_tiny_lora_follows_the_seed_not_what_the_cache_already_holds(tmp_path, monkeypatch):
    def fused_unet(seed: int) -> dict[str, torch.Tensor]:
        editor = create_editor("sdxl-lora", profile="mini", tiny_seed=seed)
        editor.load()
        return {k: v.clone() for k, v in editor.pipeline.unet.state_dict().items()}

    monkeypatch.setenv("DIFFSEG30K_CACHE", str(tmp_path / "used"))
    fused_unet(0)  # leaves the seed-0 LoRA in the cache
    after_another_seed = fused_unet(1)
    monkeypatch.setenv("DIFFSEG30K_CACHE", str(tmp_path / "fresh"))
    fresh = fused_unet(1)
    assert all(torch.equal(after_another_seed[k], fresh[k]) for k in fresh)
