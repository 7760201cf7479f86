"""The GLIDE editor through the generation registry: mini profile, exact compositing and labels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from diffseg30k.generation.editors.base import EditRequest
from diffseg30k.generation.editors.registry import create_editor, get_editor_class
from diffseg30k.labels import LABEL2ID


@pytest.fixture(scope="module")
def editor():
    editor = create_editor("glide", profile="mini", device="cpu")
    editor.load()
    return editor


def _request(seed: int = 0, size: int = 96) -> EditRequest:
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    mask = np.zeros((size, size), dtype=bool)
    mask[20:60, 30:75] = True
    return EditRequest(image=image, mask=mask, prompt="a small wooden table", seed=seed)


def test_registry_builds_the_glide_adapter(editor):
    assert get_editor_class("glide").__name__ == "GlideEditor"
    assert editor.name == "glide" and editor.label_id == LABEL2ID["glide"] == 6
    assert type(editor).resolution == 256 and editor.pipeline.resolution == 64  # mini: tiny 16 -> 64 px


def test_editor_changes_and_labels_only_masked_pixels(editor):
    from diffseg30k.generation.composite import apply_label, composite

    request = _request(seed=3)
    raw = editor.inpaint(request)
    assert raw.mode == "RGB" and raw.size == (64, 64)
    assert np.array_equal(np.asarray(raw), np.asarray(editor.inpaint(_request(seed=3))))  # seeded
    edited = np.asarray(composite(request.image, raw, request.mask))
    before = np.asarray(request.image)
    changed = (edited != before).any(axis=-1)
    assert not changed[~request.mask].any()
    assert changed[request.mask].mean() > 0.9
    labels = apply_label(np.zeros(request.mask.shape, np.uint8), request.mask, editor.label_id)
    assert set(np.unique(labels[request.mask])) == {6} and not labels[~request.mask].any()


def test_editor_options_reach_the_sampler():
    editor = create_editor("glide", profile="mini", steps=2, upsample_steps=2, guidance_scale=1.0,
                           tiny_seed=5)
    editor.load()
    pipe = editor.pipeline
    assert pipe.base_diffusion.num_timesteps == 2 and pipe.upsample_diffusion.num_timesteps == 2
    assert pipe.guidance_scale == 1.0
    assert editor.inpaint(_request()).size == (64, 64)
    editor.unload()
    assert editor.pipeline is None
