"""The report and the evaluation summary read at a glance: labelled column groups, one distortion
order with uniform names, area bins by size, and rows without information saying so."""

from __future__ import annotations

from diffseg30k.data.distortions import display_name, distortion_order
from diffseg30k.experiments.report import render_breakdowns, render_evaluation
from diffseg30k.experiments.tables import TABLES


def _score(value: float, count: int = 5) -> dict:
    return {"task": "binary", "count": count, "metrics": {"binary_accuracy": value, "binary_miou": value,
                                                          "binary_bf1": value, "image_accuracy": value,
                                                          "image_ap": value}}


def test_distortions_have_one_order_and_uniform_names():
    names = ["crop", "resize256", "webp", "resize64", "none", "jpeg80", "blur", "jpeg60", "noise"]
    assert sorted(names, key=distortion_order) == ["none", "jpeg60", "jpeg80", "resize64", "resize256",
                                                   "webp", "blur", "noise", "crop"]
    assert [display_name(n) for n in ("none", "resize64", "resize1024", "jpeg60")] == [
        "Baseline", "resize 64", "resize 1024", "JPEG 60"]


def test_evaluation_summary_orders_distortions_and_labels_groups():
    scores = {"resize256": _score(0.3), "resize64": _score(0.2), "none": _score(0.9), "jpeg60": _score(0.5)}
    text = render_evaluation(scores, {"checkpoint": "ckpt"})
    rows = [line.split("|")[1].strip() for line in text.splitlines()
            if line.startswith("| ") and "---" not in line]
    assert rows == ["distortion", "Baseline", "JPEG 60", "resize 64", "resize 256"]
    assert "| bin Acc | bin mIoU | bin bF1 | img Acc | img AP |" in text and "**bin** = binary" in text


def test_breakdowns_label_groups_and_sort_area_bins_by_size():
    groups = {label: {"count": 1, "metrics": {"binary_miou": 0.5}}
              for label in (">30%", "1-5%", "0 (unedited)", "15-30%", "<=1%", "5-15%")}
    turns = {str(t): {"count": 1, "metrics": {"binary_miou": 0.5}} for t in (3, 10, 1, 2)}
    results = {"tab2": {"details": {"segformer-binary": {"breakdowns": {"area": groups, "turns": turns}}}}}
    lines = render_breakdowns(results)
    body = [line.split("|")[1].strip() for line in lines if line.startswith("| ") and "---" not in line]
    assert body[:7] == ["area", "0 (unedited)", "<=1%", "1-5%", "5-15%", "15-30%", ">30%"]
    assert body[7:] == ["turns", "1", "2", "3", "10"]
    assert "| area | images | bin Acc | bin mIoU | bin bF1 |" in lines


def test_rows_without_information_say_so():
    rows = [{"family": "deeplabv3plus", "setting": s, "count": 3, "metrics": {"sdxl_iou": 0.0}}
            for s in ("sdxl", "sdxl-lora")]
    text = "\n".join(TABLES.get("tab7").render({"tab7": {"rows": rows, "parent": "sdxl"}}))
    assert "No information" in text
    rows[0]["metrics"]["sdxl_iou"] = 0.4
    assert "No information" not in "\n".join(TABLES.get("tab7").render({"tab7": {"rows": rows}}))


def test_quick_resize64_is_said_to_stand_in_for_resize1024():
    rows = [{"family": "segformer", "training": "plain", "task": "binary", "distortion": d, "count": 2,
             "metrics": {"binary_miou": 0.1}} for d in ("none", "resize64")]
    text = "\n".join(TABLES.get("tab3").render({"tab3": {"rows": rows}}))
    assert "resize 64 stands in for the paper's resize 1024" in text and "resize64" not in text
    rows[1]["distortion"] = "resize1024"
    assert "stands in" not in "\n".join(TABLES.get("tab3").render({"tab3": {"rows": rows}}))


def test_image_level_rows_carry_their_intervals():
    row = {"family": "segformer", "model": "segformer-tiny", "task": "binary", "count": 27,
           "metrics": {"image_accuracy": 1.0, "image_ap": 1.0}, "ci": {"image_accuracy": [0.9, 1.0],
                                                                      "image_ap": [0.95, 1.0]}}
    text = "\n".join(TABLES.get("tab5").render({"tab5": {"rows": [row]}}))
    assert "img Acc [0.900, 1.000]" in text and "(n = 27 images)" in text
