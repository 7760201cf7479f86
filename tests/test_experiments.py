"""Evaluation engine: saved predictions, re-scoring, breakdowns, bootstrap CIs, figures, classifiers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from diffseg30k.data.synthetic import synthetic_dataset, synthetic_pair
from diffseg30k.experiments.evaluation import evaluate_predictor, rescore, score_prediction_set
from diffseg30k.experiments.predictions import (
    PredictionRecord,
    PredictionWriter,
    read_meta,
    read_predictions,
    write_predictions,
)
from diffseg30k.experiments.scoring import area_bin, groups_of, score_records
from diffseg30k.labels import COLORS
from diffseg30k.metrics import DiffSegMetric


def _records(n: int = 6, noisy: bool = True) -> list[PredictionRecord]:
    rng = np.random.default_rng(0)
    records = []
    for k in range(n):
        _, ref = synthetic_pair(k, (40, 32), edited=k % 3 != 2)
        pred = ref.copy()
        if noisy:
            flip = rng.random(ref.shape) < 0.05
            pred[flip] = rng.integers(0, 9, flip.sum())
        meta = {"turns": int(len(np.unique(ref)) - 1), "base": "real" if k % 2 else "ai",
                "edited_fraction": float((ref > 0).mean()),
                "edit_types": ["removal"] if k % 2 else ["addition"]}
        records.append(PredictionRecord(f"{k:08d}", pred, ref, float((pred > 0).mean()), meta))
    return records


def test_prediction_sets_round_trip(tmp_path):
    records = _records()
    write_predictions(tmp_path / "set", records, {"task": "semantic", "distortion": "none"})
    back = list(read_predictions(tmp_path / "set"))
    assert [r.id for r in back] == [r.id for r in records]
    for a, b in zip(records, back):
        assert np.array_equal(a.prediction, b.prediction) and np.array_equal(a.reference, b.reference)
        assert a.score == pytest.approx(b.score) and a.meta == b.meta
    assert read_meta(tmp_path / "set")["count"] == len(records)


def test_an_interrupted_writer_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), PredictionWriter(tmp_path / "set", {"task": "semantic"}) as writer:
        writer.add(_records(1)[0])
        raise RuntimeError("killed")
    assert not (tmp_path / "set").exists()
    with pytest.raises(FileNotFoundError, match="not a prediction set"):
        read_meta(tmp_path / "set")


def test_scores_match_the_metric_and_breakdowns_partition(tmp_path):
    records = _records()
    result = score_records(records, "semantic", by=["base", "turns", "area"], progress=False)
    direct = DiffSegMetric(task="both")
    for r in records:
        direct.update(r.prediction, r.reference, score=r.score)
    expected = direct.compute()
    for key in ("semantic_miou", "semantic_bf1", "binary_miou", "image_ap", "image_accuracy"):
        assert result["metrics"][key] == pytest.approx(expected[key])
    bases = result["breakdowns"]["base"]
    assert set(bases) == {"ai", "real"} and sum(g["count"] for g in bases.values()) == len(records)
    assert "0 (unedited)" in result["breakdowns"]["area"]


def test_binary_task_scores_collapsed_references():
    records = [PredictionRecord(r.id, (r.reference > 0).astype(np.uint8), r.reference, r.score, r.meta)
               for r in _records(noisy=False)]
    result = score_records(records, "binary", progress=False)
    assert result["metrics"]["binary_miou"] == pytest.approx(1.0)
    assert "semantic_miou" not in result["metrics"]


def test_bootstrap_intervals_bracket_the_estimate_and_repeat():
    records = _records(10)
    first = score_records(records, "semantic", bootstrap=50, seed=3, progress=False)
    again = score_records(records, "semantic", bootstrap=50, seed=3, progress=False)
    assert first["ci"] == again["ci"]
    lo, hi = first["ci"]["semantic_miou"]
    assert lo <= first["metrics"]["semantic_miou"] <= hi and lo < hi
    assert first["ci_spec"]["resamples"] == 50


def test_shape_mismatch_names_the_image():
    record = _records(1)[0]
    bad = PredictionRecord("x1", record.prediction[:-1], record.reference, 0.0)
    with pytest.raises(ValueError, match="x1"):
        score_records([bad], "semantic", progress=False)


def test_groups_and_area_bins():
    assert area_bin(0.0) == "0 (unedited)" and area_bin(0.03) == "1-5%" and area_bin(0.9) == ">30%"
    assert groups_of({"edit_types": ["removal", "addition"]}, "edit_type") == ["addition", "removal"]
    assert groups_of({}, "base") == []
    with pytest.raises(ValueError, match="unknown breakdown"):
        groups_of({}, "colour")


def _blank_predictor(images):
    """Predicts background everywhere, at the size it is given (checks the resize-back path)."""
    return [(np.zeros((im.height, im.width), np.uint8), 0.0) for im in images]


def test_evaluation_scores_at_the_reference_size_and_rescores(tmp_path):
    table = synthetic_dataset(6, size=(48, 40), unedited_every=3)
    scores = evaluate_predictor(_blank_predictor, table, tmp_path / "pred", "semantic",
                                distortions="resize256,crop50,jpeg60", bootstrap=20, total=len(table))
    assert list(scores) == ["none", "resize256", "crop50", "jpeg60"]
    background = np.mean([(np.asarray(m) == 0).mean() for m in table["mask"]])
    assert scores["resize256"]["metrics"]["semantic_accuracy"] == pytest.approx(background, abs=1e-6)
    crop = next(read_predictions(tmp_path / "pred" / "crop50"))
    assert crop.prediction.shape == crop.reference.shape == (20, 24)
    again = rescore(tmp_path / "pred", bootstrap=20)
    for name in scores:
        assert again[name]["metrics"]["semantic_accuracy"] == scores[name]["metrics"]["semantic_accuracy"]
        assert again[name]["ci"] == scores[name]["ci"]
    subset = score_prediction_set(tmp_path / "pred" / "none", ids=["00000001", "00000002"])
    assert subset["count"] == 2


def test_figures_are_pngs_in_the_palette(tmp_path):
    from diffseg30k.experiments.figures import confusion_figure, qualitative_grid

    matrix = np.eye(9, dtype=int) * 50 + 1
    path = confusion_figure(matrix, [str(i) for i in range(9)], "test", tmp_path / "cm.png")
    assert Image.open(path).format == "PNG"
    images, refs = zip(*[synthetic_pair(i, (32, 32)) for i in range(2)])
    grid = qualitative_grid(images, refs, {"SEG-S": refs}, tmp_path / "grid.png", tile=48)
    colours = {c for _, c in Image.open(grid).convert("RGB").getcolors(1 << 16)}
    present = {int(i) for r in refs for i in np.unique(r) if i > 0}
    assert all(COLORS[i] in colours for i in present)
    with pytest.raises(ValueError, match="class names"):
        confusion_figure(matrix, ["a"], "bad", tmp_path / "bad.png")


def test_classifiers_round_trip_and_train(tmp_path):
    import datasets

    from diffseg30k.experiments.baselines import ClassifierTrainConfig, classifier_scores, train_classifier
    from diffseg30k.models.classifiers import WholeImageClassifier, build_classifier, cnnspot_augment

    table = synthetic_dataset(12, size=(48, 48), unedited_every=2)
    for name in ("cnnspot-tiny", "ufd-tiny"):
        out = train_classifier(table, tmp_path / name, ClassifierTrainConfig(name=name, steps=4, batch_size=6,
                                                                              progress=False))
        summary = json.loads((out / "training.json").read_text())
        assert summary["train_edited"] == 6 and summary["steps"] == 4
        loaded = WholeImageClassifier.from_pretrained(out)
        scores = classifier_scores(loaded, table, progress=False)
        assert scores.shape == (12,) and np.all((scores >= 0) & (scores <= 1))
        assert np.allclose(scores, classifier_scores(out, table, progress=False))
    ufd = build_classifier("ufd-tiny")
    assert not any(p.requires_grad for p in ufd.backbone.parameters())
    image = table[0]["image"]
    a = cnnspot_augment(image, np.random.default_rng(5))
    b = cnnspot_augment(image, np.random.default_rng(5))
    assert a.tobytes() == b.tobytes()
    features = table.select_columns(["image", "edited_fraction"]).features
    positives_only = datasets.Dataset.from_dict({"image": [image], "edited_fraction": [0.2]},
                                                features=features)
    with pytest.raises(ValueError, match="edited and unedited"):
        train_classifier(positives_only, tmp_path / "x", ClassifierTrainConfig(steps=1, progress=False))
    with pytest.raises(ValueError, match="unknown classifier"):
        build_classifier("resnet-9000")


def test_extra_real_images_join_the_classifier_training_set(tmp_path):
    from diffseg30k.experiments.baselines import edited_labels, with_negatives

    table = synthetic_dataset(4, size=(32, 32))
    folder = tmp_path / "real"
    (folder / "sub").mkdir(parents=True)
    for n in range(3):
        synthetic_pair(n, (40, 40), edited=False)[0].save(folder / "sub" / f"{n}.png")
    joined = with_negatives(table, folder)
    assert len(joined) == 7 and list(edited_labels(joined)) == [1, 1, 1, 1, 0, 0, 0]
    assert joined[6]["image"].size == (40, 40)
    assert len(with_negatives(table, None)) == 4
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images found"):
        with_negatives(table, tmp_path / "empty")


def test_holdout_ids_are_empty_when_no_image_holds_the_held_out_generators():
    import datasets

    from diffseg30k.experiments.bench_data import holdout_ids

    table = datasets.Dataset.from_dict({"id": ["1", "2", "3"], "models": [["sd2"], [], ["flux", "kolors"]]})
    assert holdout_ids(table, ("flux", "hunyuan")) == ["2", "3"]
    assert holdout_ids(table, ("glide", "hunyuan")) == []  # only unedited images: no hold-out to score


def test_a_prediction_set_of_another_image_count_is_not_reused(tmp_path, monkeypatch):
    import types

    import datasets

    from diffseg30k import detector as detector_module
    from diffseg30k.experiments import artifacts, evaluation
    from diffseg30k.experiments.config import quick_config
    from diffseg30k.experiments.plan import PlanContext
    from diffseg30k.experiments.predictions import PredictionRecord, write_predictions

    ctx = PlanContext(tmp_path, quick_config(), results={"data": {"fingerprint": "fp"}}, log=lambda _: None)
    ckpt = {"key": "m-semantic", "path": "unused", "task": "semantic", "sha256": "abc"}
    maps = np.zeros((4, 4), np.uint8)
    write_predictions(tmp_path / "predictions" / "m-semantic" / "none",
                      [PredictionRecord(str(i), maps, maps, 0.0) for i in range(2)],
                      {"checkpoint_sha256": "abc", "dataset_fingerprint": "fp"})  # made under --eval-limit 2
    calls = []
    fake = types.SimpleNamespace(id2label={0: "background"})
    monkeypatch.setattr(detector_module.Detector, "from_pretrained", staticmethod(lambda *a, **k: fake))
    monkeypatch.setattr(evaluation, "predict_dataset", lambda _, table, *a, **k: calls.append(len(table)))
    table = datasets.Dataset.from_dict({"id": ["0", "1", "2"]})
    artifacts.predict_checkpoint(ctx, ckpt, ["none"], table=table)
    assert calls == [3]
    artifacts.predict_checkpoint(ctx, ckpt, ["none"], table=table.select(range(2)))
    assert calls == [3]  # the saved set covers these images: reused
