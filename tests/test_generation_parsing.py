"""VLM answer parsing (recorded-style answers, malformed ones included), planning balance, pixels."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffseg30k.generation.composite import apply_label, composite, fit_square, mask_area
from diffseg30k.generation.pipeline import GenerationConfig, plans_for
from diffseg30k.generation.prompts import DEFAULT_REMOVAL_PROMPT, parse_edit_answer, request_text
from diffseg30k.generation.quality import (
    EXEMPLAR_ANSWERS,
    QUESTION,
    StatisticsQualityScorer,
    VLMQualityScorer,
    parse_quality_answer,
)
from diffseg30k.generation.regions import Region, choose_regions, deduplicate, parse_object_list


# ------------------------------------------------------------------------------ edit prompts
@pytest.mark.parametrize("answer, edit_type, prompt", [
    ('```json\n{"edit_type": "attribute", "prompt": "a red vintage bicycle leaning on the wall", '
     '"new_object": ""}\n```', "attribute", "a red vintage bicycle leaning on the wall"),
    ('{"edit_type": "addition", "prompt": "a golden retriever sitting on the grass", "new_object": "dog"}',
     "addition", "a golden retriever sitting on the grass"),
    ("Sure! Here is the JSON you asked for:\n{'edit_type': 'removal', 'prompt': 'green lawn continuing "
     "behind the bench',}", "removal", "green lawn continuing behind the bench"),
    ("Prompt: a wooden bench covered in fresh snow", "attribute", "a wooden bench covered in fresh snow"),
    ("**Edit prompt:** A blue ceramic vase with white flowers.", "attribute",
     "A blue ceramic vase with white flowers"),
    ("A black leather handbag on the chair", "attribute", "A black leather handbag on the chair"),
])
def test_edit_answers_are_parsed(answer, edit_type, prompt):
    instruction = parse_edit_answer(answer, edit_type, "bag")
    assert instruction.parsed and instruction.prompt == prompt and instruction.edit_type == edit_type
    assert instruction.removal_prompt == (DEFAULT_REMOVAL_PROMPT if edit_type == "addition" else None)


@pytest.mark.parametrize("answer", [
    "", "   \n", '{"edit_type": "attribute"}', '{"prompt": ""}', "I'm sorry, I can't help with that image.",
    "x" * 400, '{"edit_type": "attribute", "prompt": ', '{"edit_type": "attribute", "prompt": null}',
    '{"prompt": ["a red umbrella", "a blue umbrella"]}',
])
def test_malformed_edit_answers_fall_back_to_a_template(answer):
    instruction = parse_edit_answer(answer, "attribute", "umbrella")
    assert not instruction.parsed
    assert "umbrella" in instruction.prompt and instruction.edit_type == "attribute"


def test_request_text_names_object_type_and_format():
    text = request_text("person", "removal")
    assert "person" in text and "remove" in text and '"edit_type": "removal"' in text
    with pytest.raises(ValueError, match="unknown edit type"):
        request_text("person", "recolour")


# ------------------------------------------------------------------------------ quality
@pytest.mark.parametrize("answer, score", [
    (EXEMPLAR_ANSWERS[0], 4.0), (EXEMPLAR_ANSWERS[1], 1.0),
    ("2, the reason is that the dog has five legs.", 2.0),
    ("Score: 3/5. The reason is that the lighting on the cup does not match.", 3.0),
    ("**5**, the reason is that the image looks natural and high quality.", 5.0),
    ("1(score), the reason is that the face is an incomplete fragment.", 1.0),
    ("I would rate it 4 out of 5 because the bench blends in well.", 4.0),
    ("3.5, the reason is that the edge of the sign is blurry.", 3.5),
    ("\u201c0, the reason is that the car melts into the road.\u201d", 0.0),
])
def test_quality_answers_are_parsed(answer, score):
    parsed, reason = parse_quality_answer(answer)
    assert parsed == score and reason and not reason[0].isdigit()


@pytest.mark.parametrize("answer", ["The image looks fine.", "", "7, the reason is that it is great.",
                                    "Rating: 10/10"])
def test_unreadable_quality_answers_are_rejected(answer):
    score, reason = parse_quality_answer(answer)
    assert score is None and "unreadable" in reason


def test_vlm_quality_prompt_has_the_two_fig7_exemplars():
    image = Image.new("RGB", (8, 8))
    messages = VLMQualityScorer(vlm=None, exemplar_images=[image]).messages(image)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[1]["content"][0]["text"].startswith("4, the reason is that the man")
    assert messages[3]["content"][0]["text"].startswith("1, the reason is that the red-haired woman")
    assert messages[0]["content"][0]["type"] == "image" and messages[2]["content"][0]["type"] == "text"
    assert messages[-1]["content"][1]["text"] == QUESTION


def _textured(seed: int = 0, size: int = 48) -> np.ndarray:
    """A photo-like image: smooth colour gradients plus luma texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    texture = rng.normal(0, 12, (size, size))
    base = np.stack([120 + 80 * yy, 90 + 60 * xx, 140 - 50 * yy], axis=-1) + texture[..., None]
    return np.clip(base, 0, 255).astype(np.uint8)


def test_statistics_scorer_rejects_flat_clipped_and_noise_edits_and_says_what_it_measured():
    mask = np.zeros((48, 48), dtype=bool)
    mask[12:36, 12:36] = True
    scorer = StatisticsQualityScorer()
    flat = _textured()
    flat[mask] = (0, 0, 0)
    result = scorer.score(Image.fromarray(flat), mask)
    assert not result.accepted and "flat fill" in result.reason and "clipped" in result.reason
    assert "luma high-frequency energy 0.00x" in result.reason
    noisy = _textured()
    noisy[mask] = np.random.default_rng(1).integers(20, 230, (int(mask.sum()), 3), dtype=np.uint8)
    result = scorer.score(Image.fromarray(noisy), mask)
    assert not result.accepted and "noise texture" in result.reason and "chroma" in result.reason
    recoloured = _textured()
    recoloured[mask] = recoloured[mask][:, ::-1]  # channels swapped: an attribute change, texture kept
    result = scorer.score(Image.fromarray(recoloured), mask)
    assert result.accepted, result.reason
    assert "matches its surroundings" in result.reason


# ------------------------------------------------------------------------------ regions
@pytest.mark.parametrize("answer, names", [
    ("person, dog, frisbee, grass", ["person", "dog", "frisbee", "grass"]),
    ("1. Person\n2. Bicycle\n3. Traffic light", ["person", "bicycle", "traffic light"]),
    ("The objects in this image are: a man, two dogs and a red car.", ["man", "dogs", "red car"]),
    ('["person", "umbrella", "bench"]', ["person", "umbrella", "bench"]),
    ("- person (on the left)\n- kite\n- person", ["person", "kite"]),
    ("", []),
])
def test_object_lists_are_parsed(answer, names):
    assert parse_object_list(answer) == names


def _box(top: int, left: int, size: int, shape=(40, 40)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top:top + size, left:left + size] = True
    return mask


def test_deduplicate_drops_masks_overlapping_more_than_70_percent():
    a, near, far = _box(0, 0, 20), _box(1, 1, 20), _box(20, 20, 10)
    kept = deduplicate([Region(a, "dog", 0.9), Region(near, "dog", 0.8), Region(far, "cup", 0.5)])
    assert [r.label for r in kept] == ["dog", "cup"] and kept[0].score == 0.9
    overlap = _box(5, 5, 20)  # IoU with a = 225 / 575 < 0.7: both stay
    assert len(deduplicate([Region(a, "x"), Region(overlap, "y")])) == 2


def test_choose_regions_respects_count_and_area_limits():
    tiny, huge = _box(0, 0, 2), np.ones((40, 40), dtype=bool)
    regions = [Region(_box(0, 0, 10), "a"), Region(_box(20, 20, 12), "b"), Region(tiny, "c"),
               Region(huge, "d")]
    chosen = choose_regions(regions, 3, np.random.default_rng(0))
    assert sorted(r.label for r in chosen) == ["a", "b"]
    assert choose_regions([Region(tiny, "c")], 2, np.random.default_rng(0)) == []


# ------------------------------------------------------------------------------ plans
def test_plans_follow_the_paper_balance(tmp_path: Path):
    editors = ("sd2", "kolors", "sd35", "flux", "sdxl", "hunyuan", "kandinsky")
    plans = plans_for(GenerationConfig(out=tmp_path, num_images=3000, seed=7, editors=editors))
    turns = Counter(len(p.editors) for p in plans)
    assert abs(turns[1] / 3000 - 0.1) < 0.03 and abs(turns[2] / 3000 - 0.4) < 0.04
    assert abs(turns[3] / 3000 - 0.5) < 0.04
    assert abs(sum(p.base == "real" for p in plans) / 3000 - 0.5) < 0.04
    assert all(len(set(p.editors)) == len(p.editors) for p in plans)
    per_editor = Counter(e for p in plans for e in p.editors)
    assert max(per_editor.values()) / min(per_editor.values()) < 1.2  # uniform over generators
    assert all(p.base_editor is None for p in plans if p.base == "real")
    assert len({p.seeds[0] for p in plans}) == 3000
    assert [p.id for p in plans[:2]] == ["00000001", "00000002"]


def test_variant_and_parent_never_edit_the_same_image(tmp_path: Path):
    plans = plans_for(GenerationConfig(out=tmp_path, num_images=300, editors=("sdxl", "sdxl-lora", "sd2")))
    assert all(not {"sdxl", "sdxl-lora"} <= set(p.editors) for p in plans)
    assert any("sdxl-lora" in p.editors for p in plans)
    assert all(p.base_editor in (None, "sdxl", "sd2") for p in plans)


def test_config_rejects_bad_arguments(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown editor 'dalle'"):
        GenerationConfig(out=tmp_path, editors=("dalle",))
    with pytest.raises(ValueError, match="unknown profile"):
        GenerationConfig(out=tmp_path, profile="huge")
    with pytest.raises(ValueError, match="no editors"):
        GenerationConfig(out=tmp_path, editors=())
    with pytest.raises(ValueError, match="unknown editor 'sd3'"):  # an option for a misspelt editor
        GenerationConfig(out=tmp_path, editor_options={"sd3": {"steps": 10}})
    with pytest.raises(ValueError, match="--source"):
        GenerationConfig(out=tmp_path, profile="paper")


def test_model_specs_may_pin_a_revision(tmp_path: Path):
    from diffseg30k.generation.profiles import split_revision

    assert split_revision("Qwen/Qwen2.5-VL-7B-Instruct@0a1b2c") == ("Qwen/Qwen2.5-VL-7B-Instruct", "0a1b2c")
    assert split_revision("facebook/sam-vit-huge") == ("facebook/sam-vit-huge", None)
    folder = tmp_path / "models@v2"
    folder.mkdir()
    assert split_revision(str(folder)) == (str(folder), None)


# ------------------------------------------------------------------------------ pixels
def test_fit_square_and_composite_only_inside_the_mask():
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (60, 90, 3), dtype=np.uint8))
    square = fit_square(image, 32)
    assert square.size == (32, 32)
    mask = _box(4, 8, 10, (32, 32))
    edited = composite(square, Image.new("RGB", (8, 8), (255, 0, 0)), mask)
    out = np.asarray(edited)
    assert (out[mask] == [255, 0, 0]).all() and (out[~mask] == np.asarray(square)[~mask]).all()
    labels = apply_label(apply_label(np.zeros((32, 32), np.uint8), _box(0, 0, 16, (32, 32)), 2), mask, 5)
    assert (labels[mask] == 5).all() and labels[0, 0] == 2 and mask_area(mask) == pytest.approx(100 / 1024)
    with pytest.raises(ValueError, match="does not match"):
        composite(square, square, np.ones((8, 8), bool))


def test_resuming_with_other_quality_exemplars_is_refused(tmp_path: Path):
    from diffseg30k.generation.pipeline import _check_fingerprint

    def config(*names: str) -> GenerationConfig:
        for name in names:
            Image.new("RGB", (8, 8)).save(tmp_path / name)
        exemplars = tuple(str(tmp_path / n) for n in names)
        return GenerationConfig(out=tmp_path, profile="paper", real_fraction=0.0, exemplar_images=exemplars)

    _check_fingerprint(config("fig7a.png", "fig7b.png"))
    _check_fingerprint(config("fig7a.png", "fig7b.png"))  # the same arguments resume
    with pytest.raises(ValueError, match="exemplar_images"):
        _check_fingerprint(config("other.png"))


def test_a_missing_quality_exemplar_is_reported_before_any_work(tmp_path: Path):
    with pytest.raises(ValueError, match="exemplar image not found: .*fig7a.png"):
        GenerationConfig(out=tmp_path, profile="paper", real_fraction=0.0,
                         exemplar_images=(str(tmp_path / "fig7a.png"),))
