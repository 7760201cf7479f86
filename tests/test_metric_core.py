"""DiffSegMetric against hand-computed cases and independent plain references (tests/metric_reference.py)."""

from __future__ import annotations

import json
import math

import metric_reference as plain
import numpy as np
import pytest

from diffseg30k.metrics import DiffSegMetric, average_precision
from diffseg30k.metrics.boundary import boundary_points, tolerance_pixels
from diffseg30k.metrics.fixtures import realistic_pair

SCALARS = ("semantic_accuracy", "semantic_miou", "semantic_bf1", "binary_accuracy", "binary_miou",
           "binary_bf1", "image_accuracy", "image_ap")


def run(pairs, scores=None, **kwargs):
    metric = DiffSegMetric(**kwargs)
    metric.update_batch([p for p, _ in pairs], [r for _, r in pairs], scores)
    return metric.compute()


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def square(size, box, label, fill=0):
    out = np.full((size, size), fill, np.uint8)
    y0, y1, x0, x1 = box
    out[y0:y1, x0:x1] = label
    return out


# ----------------------------------------------------------------------------------- hand-computed
def test_one_pixel_object_exact_shifted_and_far():
    ref = square(5, (2, 3, 2, 3), 1)
    exact = run([(ref, ref)])
    assert exact["confusion_matrix"][0][0] == 24 and exact["confusion_matrix"][1][1] == 1
    assert exact["semantic_miou"] == 1.0 and exact["semantic_bf1"] == 1.0 and exact["binary_bf1"] == 1.0
    assert tolerance_pixels(5, 5, 0.0075) == 1
    shifted = run([(square(5, (2, 3, 3, 4), 1), ref)])  # 1 px away: within theta = 1
    assert shifted["semantic_miou"] == 0.0 and shifted["semantic_bf1"] == 1.0
    diagonal = run([(square(5, (3, 4, 3, 4), 1), ref)])  # sqrt(2) > 1
    assert diagonal["semantic_bf1"] == 0.0
    far = run([(square(5, (0, 1, 4, 5), 1), ref)])
    assert far["semantic_bf1"] == 0.0 and far["semantic_accuracy"] == 23 / 25


def test_class_absent_from_prediction_or_reference():
    ref = square(20, (5, 10, 5, 10), 2)
    pred = square(20, (5, 10, 5, 10), 4)  # right place, wrong generator
    out = run([(pred, ref)])
    assert out["per_class_iou"]["kolors"] == 0.0 and out["per_class_iou"]["flux"] == 0.0
    assert math.isnan(out["per_class_iou"]["sd2"])  # union 0: left out of the mean
    assert out["semantic_miou"] == 0.0
    assert out["per_class_bf1"]["kolors"] == 0.0 and out["per_class_bf1"]["flux"] == 0.0
    assert out["semantic_bf1"] == 0.0
    assert out["binary_miou"] == 1.0 and out["binary_bf1"] == 1.0  # location is perfect
    assert out["confusion_matrix"][2][4] == 25


def test_all_background_images():
    bg = np.zeros((16, 16), np.uint8)
    out = run([(bg, bg), (bg, bg)])
    assert out["semantic_accuracy"] == 1.0 and out["binary_accuracy"] == 1.0
    for key in ("semantic_miou", "semantic_bf1", "binary_miou", "binary_bf1", "image_ap"):
        assert math.isnan(out[key]), key
    assert out["image_accuracy"] == 1.0


def test_class_filling_the_whole_image():
    full = np.full((12, 12), 3, np.uint8)
    out = run([(full, full)])
    assert out["semantic_miou"] == 1.0 and out["semantic_bf1"] == 1.0 and out["binary_bf1"] == 1.0
    missed = run([(np.zeros_like(full), full)])  # neither map has a boundary, but the class is missed
    assert missed["semantic_bf1"] == 0.0 and missed["binary_bf1"] == 0.0 and missed["semantic_miou"] == 0.0
    holed = full.copy()
    holed[5:7, 5:7] = 0
    out = run([(holed, full)])
    assert out["per_class_bf1"]["sd35"] == 0.0  # prediction has a boundary, reference none


def test_regions_touching_the_image_edge():
    ref = np.zeros((8, 8), np.uint8)
    ref[:, :4] = 1
    index, ids, on_binary = boundary_points(ref, 9)
    assert sorted(index % 8) == [3] * 8 and (ids == 1).all() and on_binary.all()
    pred = np.zeros_like(ref)
    pred[:, :5] = 1
    assert run([(pred, ref)])["semantic_bf1"] == 1.0  # 1 px off, theta = 1
    pred[:, :6] = 1
    assert run([(pred, ref)])["semantic_bf1"] == 0.0


def test_ignore_pixels():
    ref = np.full((6, 6), 2, np.uint8)
    ref[:, 5] = 255
    pred = np.full((6, 6), 2, np.uint8)
    pred[0, 5] = 7  # under the ignored column: not counted
    out = run([(pred, ref)])
    assert out["confusion_matrix"][2][2] == 30 and sum(map(sum, out["confusion_matrix"])) == 30
    assert out["semantic_accuracy"] == 1.0 and out["semantic_miou"] == 1.0
    # the reference region ends at the ignored column, so it has a boundary; the prediction has
    # one too (around the stray 7); class 2: pred boundary (0,4),(1,4),(1,5) vs ref column 4
    pred_ign = np.full((6, 6), 2, np.uint8)
    pred_ign[:, 5] = 255  # predictions may carry ignore_index where the reference is ignored
    assert run([(pred_ign, ref)])["semantic_bf1"] == 1.0
    bad = np.full((6, 6), 255, np.uint8)
    with pytest.raises(ValueError, match="pair 0: prediction contains ignore_index 255 at 30 pixels"):
        run([(bad, ref)])


def test_image_level_threshold_is_strict_and_configurable():
    ref = np.zeros((10, 10), np.uint8)
    one = square(10, (0, 1, 0, 1), 5)  # exactly 1 %: not edited
    two = square(10, (0, 1, 0, 2), 5)
    assert run([(one, ref)])["image_accuracy"] == 1.0
    assert run([(two, ref)])["image_accuracy"] == 0.0
    assert run([(two, ref)], area_threshold=0.05)["image_accuracy"] == 1.0


# ------------------------------------------------------------------------- independent references
@pytest.mark.parametrize("size", [64, (45, 77)])
def test_matches_plain_reference_on_realistic_maps(size):
    pairs = [realistic_pair(i, size, ignore_band=i % 4 == 0, edited=i % 5 != 0) for i in range(30)]
    for pred, ref in pairs[::8]:
        pred[ref == 255] = 255  # predictions may carry ignore_index where the reference is ignored
    got, want = run(pairs), plain.metrics(pairs)
    assert np.array_equal(np.array(got["confusion_matrix"]), want["confusion_matrix"])
    for key in SCALARS:
        assert same(got[key], want[key]), (key, got[key], want[key])
    for k, name in enumerate(list(got["per_class_bf1"]), start=1):
        assert same(got["per_class_bf1"][name], want["per_class_bf1"][k])
    assert 0 < want["image_ap"] < 1 or want["image_ap"] == 1  # unedited images take part


@pytest.mark.parametrize("size, fraction", [(512, 0.0075), (300, 0.03)])
def test_matches_plain_reference_where_the_coarse_cell_grid_is_used(size, fraction):
    pairs = [realistic_pair(i, size, edited=i != 1) for i in range(4)]
    got = run(pairs, boundary_tolerance=fraction)
    want = plain.metrics(pairs, fraction=fraction)
    for key in SCALARS:
        assert same(got[key], want[key]), key


def test_images_of_different_sizes_in_one_evaluation():
    pairs = [realistic_pair(i, size) for i, size in enumerate([40, (64, 97), 130, (90, 33)] * 2)]
    got, want = run(pairs), plain.metrics(pairs)
    for key in SCALARS:
        assert same(got[key], want[key]), key


def test_255_class_label_set_keeps_255_as_ignore():
    rng = np.random.default_rng(5)
    ref = rng.integers(0, 255, (30, 30)).astype(np.uint8)
    ref[:3] = 255
    pred = ref.copy()
    pred[10:20, 10:20] = 254
    pred[:3] = 255
    got, want = run([(pred, ref)], num_classes=255), plain.metrics([(pred, ref)], num_classes=255)
    for key in SCALARS[:6]:
        assert same(got[key], want[key]), key
    assert len(got["per_class_iou"]) == 255


def test_caller_scores_and_bigger_images():
    pairs = [realistic_pair(i, 200, edited=i % 3 != 0) for i in range(12)]
    scores = np.random.default_rng(0).random(12)
    got, want = run(pairs, scores=scores), plain.metrics(pairs, scores=scores)
    for key in SCALARS:
        assert same(got[key], want[key]), key


@pytest.mark.parametrize("num_classes", [20, 40, 70])
def test_large_label_sets_use_wider_bit_planes_or_per_class_matching(num_classes):
    pairs = [realistic_pair(i, 48, num_classes=num_classes) for i in range(10)]
    got, want = run(pairs, num_classes=num_classes), plain.metrics(pairs, num_classes=num_classes)
    for key in SCALARS:
        assert same(got[key], want[key]), key


@pytest.mark.parametrize("num_classes", [9, 70])
@pytest.mark.parametrize("task", ["semantic", "binary"])
def test_single_task_paths_match_reference(task, num_classes):
    pairs = [realistic_pair(i, 64, num_classes=num_classes) for i in range(8)]
    got, want = run(pairs, task=task, num_classes=num_classes), plain.metrics(pairs, num_classes=num_classes)
    keys = [k for k in SCALARS if k.startswith(task)]
    assert len(keys) == 3 and all(same(got[k], want[k]) for k in keys)


def test_boundary_tolerance_option_matches_reference():
    pairs = [realistic_pair(i, 64) for i in range(8)]
    got, want = run(pairs, boundary_tolerance=0.03), plain.metrics(pairs, fraction=0.03)
    assert same(got["semantic_bf1"], want["semantic_bf1"]) and same(got["binary_bf1"], want["binary_bf1"])


@pytest.mark.parametrize("theta", [1, 2, 3, 5, 8, 11])
def test_tolerance_matching_equals_brute_force(theta):
    from diffseg30k.metrics.boundary import BitPlane

    rng = np.random.default_rng(theta)
    height, width = 70, 90
    plane = BitPlane(height, width, theta, np.uint16)
    for _ in range(5):
        a = rng.choice(height * width, size=int(rng.integers(1, 400)), replace=False)
        b = rng.choice(height * width, size=int(rng.integers(1, 400)), replace=False)
        a_bits = (1 << rng.integers(0, 3, a.size)).astype(np.uint16)
        b_bits = (1 << rng.integers(0, 3, b.size)).astype(np.uint16)
        a_left, b_left = plane.match(plane.padded(a), a_bits, plane.padded(b), b_bits)
        ay, ax = np.divmod(a, width)
        by, bx = np.divmod(b, width)
        near = (ay[:, None] - by[None]) ** 2 + (ax[:, None] - bx[None]) ** 2 <= theta * theta
        shared = (a_bits[:, None] & b_bits[None]) != 0
        hit = near & shared
        assert np.array_equal(a_left == 0, hit.any(axis=1))
        assert np.array_equal(b_left == 0, hit.any(axis=0))


def test_average_precision_equals_sklearn():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(1)
    for trial in range(200):
        n = int(rng.integers(1, 30))
        truth = rng.random(n) < rng.uniform(0.1, 0.9)
        scores = rng.integers(0, 5, n) / 4 if trial % 2 else rng.random(n)  # ties on odd trials
        if truth.any():
            assert math.isclose(average_precision(truth, scores), average_precision_score(truth, scores),
                                rel_tol=1e-12)
        else:
            assert math.isnan(average_precision(truth, scores))


# --------------------------------------------------------------------------- tasks and additivity
def test_binary_task_on_semantic_and_binary_maps_agree():
    pairs = [realistic_pair(i, 64) for i in range(10)]
    from_semantic = run(pairs, task="binary")
    binary_pairs = [((p > 0).astype(np.uint8), (r > 0).astype(np.uint8)) for p, r in pairs]
    from_binary = run(binary_pairs, task="binary")
    both = run(pairs)
    for key in ("binary_accuracy", "binary_miou", "binary_bf1", "image_accuracy", "image_ap"):
        assert from_semantic[key] == from_binary[key] == both[key]
    assert "semantic_miou" not in from_semantic and len(from_semantic["confusion_matrix"]) == 2
    semantic_only = run(pairs, task="semantic")
    assert "binary_miou" not in semantic_only and semantic_only["semantic_bf1"] == both["semantic_bf1"]


def test_split_and_merge_is_identical_in_any_order():
    pairs = [realistic_pair(i, 64, edited=i % 4 != 0) for i in range(24)]
    whole = run(pairs)
    a, b = DiffSegMetric(), DiffSegMetric()
    for i, (p, r) in enumerate(pairs):
        (a if i % 3 else b).update(p, r)
    assert json.dumps(DiffSegMetric().merge(a).merge(b).compute()) == json.dumps(whole)
    assert json.dumps(DiffSegMetric().merge(b).merge(a).compute()) == json.dumps(whole)


def test_pickled_shards_merge_like_accelerate_gather_object():
    import pickle

    pairs = [realistic_pair(i, 40) for i in range(6)]
    shards = []
    for rank in range(2):
        shard = DiffSegMetric()
        for p, r in pairs[rank::2]:
            shard.update(p, r)
        shards.append(pickle.loads(pickle.dumps(shard)))  # what gather_object transports
    merged = shards[0].merge(shards[1])
    assert json.dumps(merged.compute()) == json.dumps(run(pairs))
    merged.update(*pairs[0])  # a revived metric keeps working


def test_reset_and_spec():
    import diffseg30k

    assert diffseg30k.DiffSegMetric is DiffSegMetric  # the lazy top-level name
    metric = DiffSegMetric(task="semantic", boundary_tolerance=0.01)
    pred, ref = realistic_pair(0, 32)
    metric.update(pred, ref)
    spec = metric.compute()["spec"]
    assert spec["task"] == "semantic" and spec["boundary_tolerance"] == 0.01 and spec["ignore_index"] == 255
    assert "dataset-level confusion" in spec["averaging"] and spec["metric_version"]
    metric.reset()
    with pytest.raises(ValueError, match="no pairs"):
        metric.compute()


# ------------------------------------------------------------------------------------ input types
def test_numpy_torch_pil_lists_and_batches_give_the_same_result():
    torch = pytest.importorskip("torch")
    from PIL import Image

    from diffseg30k.labels import palette

    pairs = [realistic_pair(i, 40, ignore_band=True) for i in range(4)]
    want = run(pairs)

    def pil_p(a):
        image = Image.fromarray(a, "P")
        image.putpalette(palette())
        return image

    preds = [torch.from_numpy(pairs[0][0]).long(), Image.fromarray(pairs[1][0], "L"), pairs[2][0].tolist(),
             pairs[3][0].astype(np.int32)]
    refs = [torch.from_numpy(pairs[0][1]), pil_p(pairs[1][1]), pairs[2][1].astype(np.int64),
            pairs[3][1].tolist()]
    metric = DiffSegMetric()
    metric.update_batch(preds, refs)
    assert json.dumps(metric.compute()) == json.dumps(want)
    stacked = DiffSegMetric()
    stacked.update_batch(torch.from_numpy(np.stack([p for p, _ in pairs])), np.stack([r for _, r in pairs]))
    assert json.dumps(stacked.compute()) == json.dumps(want)


def test_other_ignore_index_and_bool_maps():
    pred, ref = realistic_pair(3, 32, ignore_band=True)
    want = run([(pred, ref)])
    ref16 = ref.astype(np.int16)
    ref16[ref == 255] = -100
    assert run([(pred, ref16)], ignore_index=-100)["semantic_bf1"] == want["semantic_bf1"]
    binary = run([(pred > 0, (ref > 0) & (ref < 255))], task="binary")
    assert binary["binary_miou"] > 0


# -------------------------------------------------------------------------------------- bad input
GOOD = np.zeros((8, 8), np.uint8)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((8, 9), np.uint8), "pair 2: prediction shape"),
    (np.zeros((2, 8, 8), np.uint8), "pair 2: prediction is not 2-D"),
    (np.zeros((8, 8), np.float32), "pair 2: prediction has float labels"),
    (np.full((8, 8), np.nan), "pair 2: prediction contains NaN"),
    (np.full((8, 8), -1, np.int64), "pair 2: prediction contains negative label -1"),
    (np.full((8, 8), 9, np.uint8), "pair 2: prediction contains label 9"),
    (np.full((8, 8), 12, np.int64), "pair 2: prediction contains label 12"),
    (np.zeros((0, 8), np.uint8), "pair 2: prediction is empty"),
    ([[0, 1], [1]], "pair 2: prediction is not a rectangular"),
])
def test_bad_predictions_name_the_pair_and_problem(bad, message):
    metric = DiffSegMetric()
    with pytest.raises(ValueError, match=message):
        metric.update_batch([GOOD, GOOD, bad], [GOOD, GOOD, GOOD])
    assert len(metric) == 0  # nothing half-added


def test_bad_references_scores_and_empty_input():
    metric = DiffSegMetric()
    with pytest.raises(ValueError, match="pair 1: reference contains label 200"):
        metric.update_batch([GOOD, GOOD], [GOOD, np.full((8, 8), 200, np.uint8)])
    with pytest.raises(ValueError, match="predictions is empty"):
        metric.update_batch([], [])
    with pytest.raises(ValueError, match="scores has 1 entries for 2 pairs"):
        metric.update_batch([GOOD, GOOD], [GOOD, GOOD], scores=[0.5])
    with pytest.raises(ValueError, match="pair 1: score is nan"):
        metric.update_batch([GOOD, GOOD], [GOOD, GOOD], scores=[0.5, float("nan")])
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        metric.update_batch([GOOD, GOOD], [GOOD])
    metric.update(GOOD, GOOD)
    with pytest.raises(ValueError, match="pair 1: reference is not 2-D"):
        metric.update(GOOD, np.zeros(8, np.uint8))
    metric.update(GOOD, GOOD, score=0.3)
    with pytest.raises(ValueError, match="scores were given for 1 of 2 images"):
        metric.compute()
    with pytest.raises(ValueError, match="unknown task"):
        DiffSegMetric(task="instance")
