"""The paper profile's VLM stages with tiny random Qwen2.5-VL, Grounding DINO and SAM (local folders)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffseg30k.generation import pipeline as gp
from diffseg30k.generation.mini import read_metadata
from diffseg30k.generation.prompts import VLMPromptWriter
from diffseg30k.generation.quality import VLMQualityScorer
from diffseg30k.generation.regions import GroundedSAMProposer, choose_regions, parse_object_list
from diffseg30k.generation.tiny_stage1 import tiny_stage1_models
from diffseg30k.generation.vlm import ImageOnlyQwenProcessor, QwenVL


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tiny_stage1_models(tmp_path_factory.mktemp("stage1"))
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def vlm(models) -> QwenVL:
    return QwenVL.from_pretrained(models["vlm"])


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))


def test_image_only_processor_needs_no_video_processor(models):
    processor = ImageOnlyQwenProcessor.load(models["vlm"])
    assert not hasattr(processor, "video_processor") or processor.video_processor is None
    assert processor.chat_template and "<|image_pad|>" in processor.tokenizer.get_vocab()


def test_vlm_chat_is_deterministic_text(vlm, photo):
    messages = [{"role": "user", "content": [{"type": "image", "image": photo},
                                             {"type": "text", "text": "List the objects."}]}]
    answer = vlm.chat(messages, max_new_tokens=12)
    assert isinstance(answer, str) and answer == vlm.chat(messages, max_new_tokens=12)


def test_qwen_to_grounding_dino_to_sam_end_to_end(vlm, models, photo):
    proposer = GroundedSAMProposer.from_pretrained(vlm, str(models["detector"]), str(models["segmenter"]),
                                                   box_threshold=0.05, text_threshold=0.0)
    regions = proposer.propose(photo, np.random.default_rng(0))
    names = parse_object_list(proposer.last_answer)
    assert names, f"the tiny VLM's answer gave no object names: {proposer.last_answer!r}"
    assert regions, "Grounding DINO + SAM produced no mask"
    for region in regions:
        assert region.mask.shape == (64, 64) and region.mask.dtype == bool and region.mask.any()
        assert region.label in names and 0.05 <= region.score <= 1.0
    chosen = choose_regions(regions, 3, np.random.default_rng(0), min_area=0.0, max_area=1.0)
    assert 1 <= len(chosen) <= 3


def test_vlm_prompt_writer_and_quality_scorer_run(vlm, photo):
    mask = np.zeros((64, 64), dtype=bool)
    mask[8:40, 8:40] = True
    writer = VLMPromptWriter(vlm)
    instruction = writer.write(photo, mask, "dog", "addition", np.random.default_rng(0))
    assert writer.last_answer and instruction.edit_type == "addition" and instruction.prompt
    assert instruction.removal_prompt  # an addition first removes
    result = VLMQualityScorer(vlm, exemplar_images=[photo, photo]).score(photo, mask)
    assert result.score is None or 0 <= result.score <= 5


def test_paper_profile_runs_from_local_model_folders(models, tmp_path: Path):
    from diffseg30k.generation.editors.registry import create_editor

    sd2 = create_editor("sd2", profile="mini")
    sd2.load()
    sd2.pipeline.save_pretrained(tmp_path / "sd2")
    source = tmp_path / "photos"
    source.mkdir()
    for i in range(2):
        pixels = np.random.default_rng(i).integers(0, 255, (80, 96, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(source / f"{i}.png")
    config = gp.GenerationConfig(
        out=tmp_path / "out", profile="paper", num_images=2, seed=0, size=64, editors=("sd2",),
        source=source, real_fraction=1.0, vlm=str(models["vlm"]), detector=str(models["detector"]),
        segmenter=str(models["segmenter"]), device="cpu", progress=False,
        editor_options={"sd2": {"repo_id": str(tmp_path / "sd2"), "steps": 2, "resolution": 64}})
    assert not config.keep_loaded  # the paper profile holds one large model at a time
    out = gp.generate(config)
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert len(failures) + len(read_metadata(out)) == 2
    for failure in failures:  # random models: failures must be logged with a stage and a reason
        assert failure["status"] in ("failed", "rejected") and failure["reason"] and failure["stage"]
    edited = list((out / ".work").glob("*/turn0.edit.json"))
    assert edited, "no sample reached the editor"
    assert json.loads(edited[0].read_text())["generator"] == "sd2"
