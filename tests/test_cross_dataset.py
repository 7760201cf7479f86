"""Cross-dataset evaluation: `evaluate --dataset` on IML layouts, foreign predictions scored with
`--from-predictions DIR --dataset ...`, and the benchmark's "generalisation to other datasets" step."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffseg30k.cli import main
from diffseg30k.data.synthetic import write_synthetic_release
from diffseg30k.experiments.cross_dataset import parse_cross, render_cross, step_cross
from diffseg30k.experiments.plan import PlanContext

sys.path.insert(0, str(Path(__file__).parent))
import _foreign_fixtures as fx  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from diffseg30k.models.registry import build_model
    from diffseg30k.training.checkpoints import export_detector

    path = tmp_path_factory.mktemp("ckpt") / "best"
    return export_detector(build_model("fcn8s-tiny", task="semantic"), path, {"step": 0})


def _scores(report: Path) -> dict:
    return json.loads((report / "evaluation.json").read_text())


def test_evaluate_a_semantic_detector_on_a_binary_only_mani_set(tmp_path, checkpoint):
    root = fx.write_mani(tmp_path / "mani", num=3)
    report = tmp_path / "report"
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--dataset", str(root), "--report", str(report),
            "--bootstrap", "0", "--device", "cpu", "--by", ""]
    assert main(argv) == 0
    payload = _scores(report)
    assert payload["split"] == "test" and payload["task"] == "binary" and payload["model_task"] == "semantic"
    scored = payload["scores"]["none"]
    assert scored["task"] == "binary" and scored["count"] == 3
    assert "binary_miou" in scored["metrics"] and "image_ap" in scored["metrics"]
    assert not any(k.startswith("semantic_") for k in scored["metrics"])


def test_foreign_predictions_on_diffseg30k_every_kind(tmp_path, capsys):
    release = write_synthetic_release(tmp_path / "release", num=4, size=(32, 24), split="val")
    references = {p.name.split(".")[0]: np.asarray(Image.open(p)) for p in sorted(release.glob("*.mask.png"))}

    def run(folder: Path, *extra: str) -> dict:
        report = tmp_path / f"r-{folder.name}"
        assert main(["evaluate", "--from-predictions", str(folder), "--dataset", str(release), "--report",
                     str(report), "--bootstrap", "0", "--by", "", *extra]) == 0
        return _scores(report)["scores"]["none"]

    labels = tmp_path / "labels"
    labels.mkdir()
    for sample_id, ref in references.items():  # our release's own naming: <id>.image.png -> <id>.png
        Image.fromarray(ref, "L").save(labels / f"{sample_id}.png")
    semantic = run(labels)
    assert semantic["task"] == "semantic" and semantic["metrics"]["semantic_miou"] == pytest.approx(1.0)

    binary = tmp_path / "binary"
    binary.mkdir()
    for sample_id, ref in references.items():
        Image.fromarray(((ref > 0) * 255).astype(np.uint8), "L").save(binary / f"{sample_id}.image_pred.png")
    assert run(binary)["metrics"]["binary_miou"] == pytest.approx(1.0)

    probs = tmp_path / "probs"
    probs.mkdir()
    for sample_id, ref in references.items():  # probabilities on the right side of 0.5
        np.save(probs / f"{sample_id}.npy", np.where(ref > 0, 0.8, 0.3).astype(np.float32))
    scored = run(probs)
    assert scored["task"] == "binary" and scored["metrics"]["binary_miou"] == pytest.approx(1.0)

    first = next(iter(references))
    (probs / f"{first}.npy").unlink()
    np.save(probs / "stranger.npy", np.zeros((24, 32), np.float32))
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(probs / f"{list(references)[1]}_mask.png")
    bad = ["evaluate", "--from-predictions", str(probs), "--dataset", str(release), "--report",
           str(tmp_path / "bad"), "--bootstrap", "0"]
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert "_mask.png: second prediction for image" in err and "(and 1 more problems;" in err
    assert main([*bad, "--on-error", "skip"]) == 0
    out = capsys.readouterr().out
    assert f"image '{first}': no prediction file" in out and "stranger.npy" in out
    assert "second prediction for image" in out
    assert _scores(tmp_path / "bad")["scores"]["none"]["count"] == 3


def test_foreign_predictions_refuse_mixed_kinds_and_bad_sizes(tmp_path, capsys):
    release = write_synthetic_release(tmp_path / "release", num=2, size=(32, 24), split="val")
    ids = sorted(p.name.split(".")[0] for p in release.glob("*.mask.png"))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(np.full((24, 32), 3, np.uint8)).save(mixed / f"{ids[0]}.png")
    Image.fromarray(np.full((24, 32), 255, np.uint8)).save(mixed / f"{ids[1]}.png")
    argv = ["evaluate", "--from-predictions", str(mixed), "--dataset", str(release), "--report",
            str(tmp_path / "r"), "--bootstrap", "0"]
    assert main(argv) == 2
    assert "mixed with semantic label maps" in capsys.readouterr().err
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(mixed / f"{ids[1]}.png")
    assert main(argv) == 2
    assert f"{ids[1]}.png: prediction is 20x20 but image '{ids[1]}' is 32x24" in capsys.readouterr().err


def test_cross_step_scores_trained_detectors_and_renders_every_key(tmp_path, checkpoint):
    from diffseg30k.experiments.config import quick_config

    mani = fx.write_mani(tmp_path / "other", num=2)
    config = quick_config(cross_datasets=(str(mani),))
    ckpt = {"key": "fcn8s-semantic", "path": str(checkpoint), "task": "semantic", "family": "fcn8s",
            "model": "fcn8s-tiny", "sha256": "x"}
    ctx = PlanContext(tmp_path / "run", config, results={"tab2": {"checkpoints": {"fcn8s-semantic": ckpt}}},
                      log=lambda _: None)
    result = step_cross(ctx)
    (row,) = result["rows"]
    assert row["dataset"] == str(mani) and row["split"] == "test" and row["scored_as"] == "binary"
    assert row["count"] == 2 and "binary_miou" in row["metrics"] and "image_ap" in row["metrics"]
    lines = render_cross({"cross": result})
    assert "binary_miou" in lines[0] and "FCN-8s" in lines[2]
    from diffseg30k.experiments.report import write_report

    write_report(tmp_path / "run", config, {"cross": result}, {}, "diffseg30k benchmark")
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Generalisation to other datasets" in report and f"| {mani} | test | FCN-8s" in report
    tables = json.loads((tmp_path / "run" / "results.json").read_text())["tables"]
    assert tables["cross"][0]["metrics"] == row["metrics"]
    assert step_cross(PlanContext(tmp_path, quick_config(), results={}))["rows"] == []
    assert parse_cross(["cocoglide", "opensdi-test:sdxl", "C:\\data"]) == [
        ("cocoglide", None), ("opensdi-test", "sdxl"), ("C:\\data", None)]


def test_benchmark_cli_takes_cross_datasets(tmp_path, capsys):
    assert main(["benchmark", "--list-steps"]) == 0
    assert "cross" in capsys.readouterr().out
    assert main(["benchmark", "--cross-dataset", "cocoglide,tgif:test", "--dry-run",
                 "--out", str(tmp_path / "b")]) == 0
    from diffseg30k.cli import build_parser
    from diffseg30k.cli.benchmark_cmd import build_config

    args = build_parser().parse_args(["benchmark", "--cross-dataset", "cocoglide, tgif:test"])
    assert build_config(args).cross_datasets == ("cocoglide", "tgif:test")


def test_evaluate_lists_presets(capsys):
    assert main(["evaluate", "--list-datasets"]) == 0
    out = capsys.readouterr().out
    assert "cocoglide" in out and "nebula/CocoGlide" in out and "autosplice" in out


def test_prediction_file_kinds(tmp_path):
    from diffseg30k.experiments.foreign_predictions import PredictionError, prediction_keys, read_prediction

    faint = tmp_path / "faint.png"
    Image.fromarray(np.array([[0, 3, 200]], np.uint8)).save(faint)
    assert read_prediction(faint).kind == "probability"  # 200 > 8: not a label map
    Image.fromarray(np.array([[0, 3, 8]], np.uint8)).save(faint)
    assert read_prediction(faint).kind == "labels"  # a faint probability map passes for labels ...
    Image.fromarray(np.array([[0, 3, 200]], np.uint8)).save(faint)
    forced = read_prediction(faint, "probability")
    assert forced.kind == "probability" and forced.labels.tolist() == [[0, 0, 1]]
    assert read_prediction(faint, "binary").labels.tolist() == [[0, 0, 1]]
    deep = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 30000, 40000]], np.uint16)).save(deep)
    found = read_prediction(deep)
    assert found.kind == "probability" and found.labels.tolist() == [[0, 0, 1]]
    np.testing.assert_allclose(found.probability, [[0, 30000 / 65535, 40000 / 65535]], rtol=1e-6)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([[0.2, 1.5]], np.float32))
    with pytest.raises(PredictionError, match=r"bad\.npy: probabilities must be finite and lie in \[0, 1\]"):
        read_prediction(bad)
    assert prediction_keys("00000001.image_pred.png")[:3] == ["00000001.image_pred", "00000001.image",
                                                              "00000001"]


def test_evaluate_on_error_skip_lists_bad_dataset_items(tmp_path, capsys):
    root = fx.write_mani(tmp_path / "mani", num=2, jpeg_masks=False)
    fx.image(9).save(root / "Tp" / "orphan.jpg")
    preds = tmp_path / "preds"
    preds.mkdir()
    for k in range(2):
        fx.mask_image(k).save(preds / f"im{k}.png")
    argv = ["evaluate", "--from-predictions", str(preds), "--dataset", str(root), "--report",
            str(tmp_path / "r"), "--bootstrap", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "orphan.jpg: unpaired: no mask" in err
    assert main([*argv, "--on-error", "skip"]) == 0
    assert "orphan.jpg: unpaired: no mask" in capsys.readouterr().out
    scored = _scores(tmp_path / "r")["scores"]["none"]
    assert scored["count"] == 2 and scored["metrics"]["binary_miou"] == pytest.approx(1.0)
