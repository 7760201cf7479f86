"""The distortion registry: every distortion deterministic, geometry right, names parsed strictly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from diffseg30k.data.distortions import (
    DISTORTIONS,
    PAPER_DISTORTIONS,
    get_distortion,
    parse_distortions,
)
from diffseg30k.data.synthetic import synthetic_pair
from diffseg30k.experiments.evaluation import resize_prediction


@pytest.fixture(scope="module")
def pair() -> tuple[Image.Image, np.ndarray]:
    return synthetic_pair(7, (72, 56))


@pytest.mark.parametrize("name", DISTORTIONS)
def test_each_distortion_is_deterministic(pair, name):
    image, mask = pair
    distortion = get_distortion(name)
    first, ref1 = distortion.apply(image, mask)
    second, ref2 = distortion.apply(image.copy(), mask.copy())
    assert first.mode == "RGB"
    assert first.tobytes() == second.tobytes()
    assert np.array_equal(ref1, ref2)


@pytest.mark.parametrize("name", ["jpeg60", "jpeg80", "webp", "blur", "noise"])
def test_pixel_distortions_change_pixels_not_geometry(pair, name):
    image, mask = pair
    out, reference = get_distortion(name).apply(image, mask)
    assert out.size == image.size
    assert reference is mask
    assert not np.array_equal(np.asarray(out), np.asarray(image))


def test_jpeg_quality_orders_the_error(pair):
    image, _ = pair
    pixels = np.asarray(image, np.float64)
    err60 = np.abs(np.asarray(get_distortion("jpeg60")(image), np.float64) - pixels).mean()
    err95 = np.abs(np.asarray(get_distortion("jpeg95")(image), np.float64) - pixels).mean()
    assert err95 < err60


def test_resize_changes_the_input_and_keeps_the_reference(pair):
    image, mask = pair
    out, reference = get_distortion("resize256").apply(image, mask)
    assert out.size == (256, 256)
    assert reference.shape == mask.shape
    back = resize_prediction(np.asarray(Image.fromarray(mask).resize((256, 256), Image.NEAREST)), mask.shape)
    assert back.shape == mask.shape
    assert (back == mask).mean() > 0.95


def test_crop_crops_image_and_reference_alike(pair):
    image, mask = pair
    out, reference = get_distortion("crop50").apply(image, mask)
    assert out.size == (36, 28)
    assert reference.shape == (28, 36)
    assert np.array_equal(reference, mask[14:42, 18:54])


def test_noise_is_seeded_by_content():
    a, _ = synthetic_pair(1, (32, 32))
    b, _ = synthetic_pair(2, (32, 32))
    noise = get_distortion("noise")
    delta_a = np.asarray(noise(a), np.int16) - np.asarray(a, np.int16)
    delta_b = np.asarray(noise(b), np.int16) - np.asarray(b, np.int16)
    assert not np.array_equal(delta_a, delta_b)


def test_names_are_parsed_and_expanded():
    names = [d.name for d in parse_distortions("paper,jpeg60,blur")]
    assert names == ["none", *PAPER_DISTORTIONS, "blur"]
    assert [d.name for d in parse_distortions("all", include_baseline=False)] == list(DISTORTIONS)
    assert get_distortion("resize512").name == "resize512"
    assert get_distortion("webp75").name == "webp"
    assert get_distortion("Baseline").name == "none"


@pytest.mark.parametrize("name,message", [("jpeg0", "quality"), ("jpeg101", "quality"),
                                          ("sharpen", "unknown"), ("crop5", "crop percent")])
def test_bad_names_are_rejected_clearly(name, message):
    with pytest.raises(ValueError, match=message):
        get_distortion(name)
