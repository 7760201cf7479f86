"""pixel_scores plumbing: Detector edited probabilities -> saved predictions -> re-scoring -> report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from test_models import _one_thread  # noqa: F401  (autouse: one torch thread in this module too)

from diffseg30k.data.synthetic import synthetic_dataset
from diffseg30k.detector import Detector
from diffseg30k.experiments.evaluation import detector_predictor, evaluate_predictor, rescore
from diffseg30k.experiments.predictions import PredictionRecord, read_predictions, write_predictions
from diffseg30k.experiments.report import render_evaluation
from diffseg30k.experiments.scoring import score_records
from diffseg30k.metrics import IMDL_KEYS, DiffSegMetric
from diffseg30k.metrics.fixtures import realistic_pair, realistic_scores
from diffseg30k.models.registry import build_model


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    from diffseg30k.training.checkpoints import export_detector

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("detector")
    export_detector(build_model("segformer-tiny", task="semantic", crop_size=64), path, {"step": 0})
    return Detector.from_pretrained(path, device="cpu")


def _image(seed: int, size=(40, 56)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8))


def test_detector_edited_probability_is_one_minus_background(detector):
    images = [_image(0), _image(1)]
    maps, scores, edited = detector.predict_edited(images)
    full = detector(images, return_probabilities=True)
    for label_map, prob, result in zip(maps, edited, full):
        assert prob.dtype == np.float32 and prob.shape == label_map.shape == (40, 56)
        assert np.array_equal(label_map, result.label_map)
        np.testing.assert_allclose(prob, 1.0 - result.probabilities[0], atol=2e-6)
        np.testing.assert_allclose(result.edited_probability, prob, atol=2e-6)
    assert np.allclose(scores, [r.edited_fraction for r in full])
    tiled = Detector(detector.model, device="cpu", tile_size=32, overlap=8, fuse=False)
    t_maps, _, t_edited = tiled.predict_edited(images[:1])
    whole = tiled(images[:1], return_probabilities=True)[0]
    assert np.array_equal(t_maps[0], whole.label_map)
    np.testing.assert_allclose(t_edited[0], whole.edited_probability, atol=2e-6)
    out = detector_predictor(detector, 2)(images)
    assert len(out) == 2 and all(len(item) == 3 for item in out)


def test_saved_probabilities_rescore_to_the_same_keys(tmp_path):
    pairs = [realistic_pair(i, (40, 48), ignore_band=True, edited=i % 3 != 0) for i in range(9)]
    maps = [realistic_scores(p, r, i) for i, (p, r) in enumerate(pairs)]
    records = [PredictionRecord(f"{i:08d}", p, r, float((p > 0).mean()), {}, m)
               for i, ((p, r), m) in enumerate(zip(pairs, maps))]
    write_predictions(tmp_path / "set", records, {"task": "semantic"})
    back = list(read_predictions(tmp_path / "set"))
    assert all(b.edited_probability.dtype == np.float32 for b in back)
    for b, m in zip(back, maps):  # within half a level (0.0549) in logit units, plus float32 rounding
        got, want = b.edited_probability.astype(np.float64), m.astype(np.float64)
        assert np.abs(np.log(got / (1 - got)) - np.log(want / (1 - want))).max() < 0.0549 + 0.005
    live = score_records(records, "semantic", progress=False)["metrics"]
    saved = score_records(back, "semantic", bootstrap=5, by=["base"], progress=False)
    assert set(IMDL_KEYS) <= set(live) and 0.5 < live["pixel_auc"] <= 1
    assert abs(saved["metrics"]["pixel_auc"] - live["pixel_auc"]) < 1e-3
    assert abs(saved["metrics"]["pixel_f1_best_per_image"] - live["pixel_f1_best_per_image"]) < 5e-3
    same = {k: v for k, v in live.items() if k not in ("pixel_auc", "pixel_f1_best_per_image")}
    assert json.dumps({k: saved["metrics"][k] for k in same}) == json.dumps(same)
    again = score_records(list(read_predictions(tmp_path / "set")), "semantic", progress=False)["metrics"]
    assert json.dumps(again) == json.dumps(saved["metrics"])  # re-scoring is deterministic
    direct = DiffSegMetric(imdl=True)
    for (p, r), m, rec in zip(pairs, maps, records):
        direct.update(p, r, score=rec.score, pixel_scores=m)
    assert live["pixel_auc"] == direct.compute()["pixel_auc"]
    old = [PredictionRecord(r.id, r.prediction, r.reference, r.score) for r in records]  # v1 sets
    old_out = score_records(old, "semantic", progress=False)["metrics"]
    assert old_out["pixel_auc"] is None and old_out["pixel_f1_per_image"] == live["pixel_f1_per_image"]


def _scoring_predictor(images):
    """Background-or-edited by brightness, with a matching edited probability, at the input size."""
    out = []
    for image in images:
        grey = np.asarray(image.convert("L"), np.float32) / 255
        out.append(((grey > 0.6).astype(np.uint8) * 3, float((grey > 0.6).mean()), grey))
    return out


def test_evaluation_resizes_probabilities_and_reports_imdl_table(tmp_path):
    table = synthetic_dataset(5, size=(48, 40), unedited_every=3)
    scores = evaluate_predictor(_scoring_predictor, table, tmp_path / "pred", "semantic",
                                distortions="resize256", bootstrap=5, total=len(table))
    for name in ("none", "resize256"):
        metrics = scores[name]["metrics"]
        assert set(IMDL_KEYS) <= set(metrics) and metrics["pixel_auc"] is not None
        assert metrics["spec"]["conventions"]["pixel_f1_best_per_image"].startswith("imdl, optimistic")
    record = next(read_predictions(tmp_path / "pred" / "resize256"))
    assert record.edited_probability.shape == record.reference.shape == (40, 48)  # not 256 x 256
    again = rescore(tmp_path / "pred", bootstrap=5)
    assert all(again[n]["metrics"] == scores[n]["metrics"] for n in scores)
    text = render_evaluation(scores, {"checkpoint": "x"})
    assert "IMDL conventions" in text and "pixel AUC" in text and "img MCC" in text
    imdl_rows = text.split("IMDL conventions")[1].split("\n\n")[1].splitlines()
    assert len(imdl_rows) == 2 + len(scores)


def test_records_with_and_without_probabilities_name_an_image():
    pairs = [realistic_pair(i, 32) for i in range(3)]
    records = [PredictionRecord(f"im{i}", p, r, 0.0, {}, realistic_scores(p, r, i) if i != 1 else None)
               for i, (p, r) in enumerate(pairs)]
    with pytest.raises(ValueError, match="exist for 2 of 3 images, not e.g. for 'im1'"):
        score_records(records, "semantic", progress=False)
