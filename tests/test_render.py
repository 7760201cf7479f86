"""One presentation layer (issue 14.2): one palette resolver, one renderer, everywhere alike."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from diffseg30k.cli import main
from diffseg30k.data.synthetic import synthetic_pair
from diffseg30k.labels import BINARY_COLORS, COLORS, GENERATORS, label_colors, load_label_set

CUSTOM = {0: "background", 1: "flux", 2: "midjourney"}
ROYAL_BLUE = (65, 105, 225)  # flux in the paper's palette


@pytest.fixture(scope="module")
def custom_checkpoint(tmp_path_factory):
    from diffseg30k.models.registry import build_model
    from diffseg30k.training.checkpoints import export_detector

    folder = tmp_path_factory.mktemp("custom") / "best"
    return export_detector(build_model("fcn8s-tiny", id2label=CUSTOM), folder, {})


def test_a_custom_label_set_gets_the_same_colours_everywhere(custom_checkpoint, tmp_path):
    from diffseg30k.demo import DemoService
    from diffseg30k.detector import Detector
    from diffseg30k.hub import build_model_card
    from diffseg30k.render import render_overlay

    expected = label_colors(CUSTOM)
    assert expected[1] == ROYAL_BLUE and expected[0] == (0, 0, 0)
    assert expected[2] not in {g.color for g in GENERATORS}  # an unknown name: its own fixed colour
    (tmp_path / "id2label.json").write_text(json.dumps({str(k): v for k, v in CUSTOM.items()}))
    assert load_label_set(tmp_path).colors == expected  # datasets
    detector = Detector.from_pretrained(custom_checkpoint, device="cpu")
    assert DemoService(detector).colors == expected  # the demo
    card = str(build_model_card(custom_checkpoint, "someone/custom"))
    palette = json.loads(card.split("```json\n")[1].split("```")[0])
    assert {int(k): tuple(v) for k, v in palette.items()} == expected  # the Hub card
    image, _ = synthetic_pair(3, (40, 32))
    image.save(tmp_path / "photo.png")
    assert main(["predict", str(tmp_path / "photo.png"), "--checkpoint", str(custom_checkpoint), "--out",
                 str(tmp_path / "out"), "--device", "cpu"]) == 0
    mask = Image.open(tmp_path / "out" / "photo.mask.png")  # predict: label ids shown in the palette
    assert mask.mode == "P" and tuple(mask.getpalette()[3:6]) == ROYAL_BLUE
    # the overlay tints a flux pixel towards royal blue, whatever the detector predicted
    result = detector(image)
    result.label_map[:] = 1
    tinted = np.asarray(render_overlay(image, result))[:32, :40].astype(float)
    want = 0.45 * np.asarray(image, float) + 0.55 * np.array(ROYAL_BLUE, float)
    assert np.abs(tinted - want).max() <= 1


def test_legend_keeps_the_verdict_off_the_background_row(custom_checkpoint):
    from diffseg30k.detector import Detector
    from diffseg30k.render import result_legend, verdict_text

    detector = Detector.from_pretrained(custom_checkpoint, device="cpu")
    result = detector(synthetic_pair(4, (32, 32))[0])
    result.label_map[:8] = 1
    result.generators, result.edited_fraction, result.is_edited = (
        {"flux": {"area": 0.25, "confidence": 0.9}}, 0.25, True)
    rows = result_legend(result)
    assert rows[0][0] == "unedited: 75.0%" and rows[1] == ("flux: 25.0% (confidence 0.90)", ROYAL_BLUE)
    assert not any("EDITED" in text for text, _ in rows)
    assert verdict_text(result, 0.01) == "verdict: EDITED (25.0% of the pixels flagged; rule: > 1%)"


def test_binary_maps_are_drawn_in_no_generators_colour(tmp_path):
    from diffseg30k.experiments.figures import qualitative_grid

    assert BINARY_COLORS[1] not in {g.color for g in GENERATORS}
    assert label_colors({0: "background", 1: "edited"}, "binary") == BINARY_COLORS
    image, reference = synthetic_pair(0, (32, 32), max_regions=1)
    binary = (reference > 0).astype(np.uint8)
    path = qualitative_grid([image], [reference], {"SEG-B": [binary]}, tmp_path / "grid.png", tile=32,
                            binary_columns=["SEG-B"])
    grid = np.asarray(Image.open(path).convert("RGB"))
    tile = grid[24:24 + 32, 8 + 2 * 40: 8 + 2 * 40 + 32]  # third column: the binary prediction
    colours = {tuple(c) for c in tile.reshape(-1, 3)}
    assert colours == {(0, 0, 0), BINARY_COLORS[1]}
    assert COLORS[1] not in colours  # was Crimson, SD2's colour


def test_confusion_column_labels_are_whole(tmp_path):
    from diffseg30k.experiments.figures import confusion_figure
    from diffseg30k.labels import ID2LABEL
    from diffseg30k.render import font

    names = [ID2LABEL[i] for i in range(9)]
    path = confusion_figure(np.eye(9) * 10 + 1, names, "Fig. 5", tmp_path / "cm.png")
    figure = np.asarray(Image.open(path).convert("L"))
    longest = ImageDraw.Draw(Image.new("L", (1, 1))).textlength("kandinsky", font=font(11))
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    label_w = 30 + int(max(measure.textlength(n, font=font(11)) for n in names))
    column = figure[:, label_w + 8 * 44 + 2: label_w + 9 * 44 - 3] < 100  # the last column (kandinsky)
    counts = column.sum(axis=1)
    chip = int(np.argmax(counts > column.shape[1] // 2))  # its colour chip: the first nearly full row
    text = np.where(counts[:chip] > 0)[0]
    text = text[text >= 44]  # below the title and "prediction ->"
    assert text.size and text.max() - text.min() + 1 >= longest - 3  # the whole word, not "kandin"
