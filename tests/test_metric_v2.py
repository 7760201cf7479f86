"""Metric v2: ignored pixels count nowhere (hand cases), and the IMDL-convention keys against scikit-learn."""

from __future__ import annotations

import json
import math
import pickle

import metric_reference as plain
import numpy as np
import pytest

from diffseg30k.metrics import CONVENTIONS, IMDL_KEYS, METRIC_VERSION, DiffSegMetric
from diffseg30k.metrics.fixtures import realistic_pair, realistic_scores
from diffseg30k.metrics.scores import SCORE_BINS, dequantise_scores, quantise_scores, score_codes


def run(pairs, scores=None, pixel_scores=None, **kwargs):
    metric = DiffSegMetric(**kwargs)
    metric.update_batch([p for p, _ in pairs], [r for _, r in pairs], scores, pixel_scores)
    return metric.compute()


def banded(size=64, rows=(20, 28)):
    """A background reference with an ignored band of rows."""
    ref = np.zeros((size, size), np.uint8)
    ref[rows[0]:rows[1]] = 255
    return ref


# ------------------------------------------------------------------------- 1. ignored pixels count nowhere
def test_region_crossing_the_band_is_exactly_right():
    ref = banded()
    ref[10:20, 10:40] = 3
    ref[28:40, 10:40] = 3
    pred = np.zeros_like(ref)
    pred[10:40, 10:40] = 3  # the region continues through the band: nothing wrong on valid pixels
    out = run([(pred, ref)])
    assert out["semantic_miou"] == 1.0 and out["binary_miou"] == 1.0
    assert out["semantic_bf1"] == 1.0 and out["binary_bf1"] == 1.0  # v1: boundary along the band was missed
    assert out["confusion_matrix"][3][3] == 30 * 22 and sum(map(sum, out["confusion_matrix"])) == 64 * 56


@pytest.mark.parametrize("blob_class", [3, 5])
def test_blob_only_in_the_band_counts_nowhere(blob_class):
    ref = banded()
    ref[35:50, 10:30] = 3
    pred = ref.copy()
    pred[ref == 255] = 0
    pred[21:27, 40:60] = blob_class  # wholly inside the ignored rows
    out = run([(pred, ref)])
    assert out["semantic_miou"] == 1.0 and out["semantic_bf1"] == 1.0 and out["binary_bf1"] == 1.0
    if blob_class == 5:  # a class found only in the band is not "present"
        assert math.isnan(out["per_class_bf1"]["flux"]) and math.isnan(out["per_class_iou"]["flux"])


def test_class_only_in_the_band_is_not_present_anywhere():
    ref = banded()
    pred = np.zeros_like(ref)
    pred[20:28, :] = 7  # the whole band predicted as class 7, nothing else anywhere
    out = run([(pred, ref)], imdl=True)
    assert all(math.isnan(v) for v in out["per_class_bf1"].values())
    assert all(math.isnan(out[k]) for k in ("semantic_bf1", "binary_bf1", "semantic_miou"))
    assert out["image_accuracy"] == 1.0 and out["semantic_accuracy"] == 1.0


def test_image_edited_only_inside_the_band_is_not_edited_and_fractions_use_valid_pixels():
    ref = banded(100, (0, 50))  # half the image ignored
    in_band = np.zeros_like(ref)
    in_band[10:40, 10:90] = 4  # 24 % of the image, all of it ignored
    in_valid = np.zeros_like(ref)
    in_valid[60:66, 0:10] = 4  # 60 px: 0.6 % of the image but 1.2 % of its valid pixels
    metric = DiffSegMetric(imdl=True)
    metric.update(in_band, ref)
    metric.update(in_valid, ref)
    assert list(metric.predicted_edited) == [0, 60] and list(metric.valid_pixels) == [5000, 5000]
    out = metric.compute()
    assert out["image_accuracy"] == 0.5  # the first is unedited (right), the second edited (wrong)
    truth, scores, predicted = metric._image_arrays()
    assert scores.tolist() == [0.0, 60 / 5000] and predicted.tolist() == [False, True]


def test_fully_ignored_image_scores_zero():
    ref = np.full((8, 8), 255, np.uint8)
    out = run([(np.full((8, 8), 255, np.uint8), ref), (np.zeros((8, 8), np.uint8), ref)])
    assert out["image_accuracy"] == 1.0 and out["num_images"] == 2


# ------------------------------------------------------------------------------ 2. IMDL keys vs sklearn
def _realistic(count=16, size=(48, 72), seed=0):
    pairs = [realistic_pair(seed + i, size, ignore_band=i % 3 != 2, edited=i % 4 != 0) for i in range(count)]
    maps = [realistic_scores(p, r, seed + i) for i, (p, r) in enumerate(pairs)]
    return pairs, maps


def test_imdl_keys_match_sklearn_on_realistic_pairs_with_ignore_bands():
    pairs, maps = _realistic()
    assert any((r == 255).any() for _, r in pairs) and not all(((r > 0) & (r < 255)).any() for _, r in pairs)
    got = run(pairs, pixel_scores=maps)
    want = plain.imdl_metrics(plain.masked(pairs), maps)
    for key in ("pixel_f1_per_image", "pixel_iou_per_image", "image_auc", "image_f1",
                "image_balanced_accuracy", "image_mcc"):
        assert math.isclose(got[key], want[key], rel_tol=1e-9, abs_tol=1e-12), (key, got[key], want[key])
    assert abs(got["pixel_auc"] - want["pixel_auc"]) < 1e-3, (got["pixel_auc"], want["pixel_auc"])
    assert abs(got["pixel_f1_best_per_image"] - want["pixel_f1_best_per_image"]) < 1e-3
    assert 0.5 < want["pixel_auc"] < 0.9999
    assert 0.5 < got["pixel_f1_best_per_image"] <= 1  # the label map is no threshold of the smooth scores
    assert got["pixel_auc"] != got["pixel_f1_per_image"]  # separate quantities
    # the DiffSeg30k keys are unchanged by passing pixel scores
    base = run(pairs)
    assert all(got[k] == base[k] for k in ("semantic_miou", "binary_bf1", "image_ap"))


def test_scores_on_a_uint8_grid_give_exact_auc_and_best_f1():
    pairs, maps = _realistic(8, seed=40)
    grid = [np.round(m * 255).astype(np.float32) / 255 for m in maps]
    got = run(pairs, pixel_scores=grid)
    want = plain.imdl_metrics(plain.masked(pairs), grid)
    assert math.isclose(got["pixel_auc"], want["pixel_auc"], rel_tol=1e-12)
    assert math.isclose(got["pixel_f1_best_per_image"], want["pixel_f1_best_per_image"], rel_tol=1e-12)


def test_caller_image_scores_feed_image_auc():
    pairs, _ = _realistic(12, seed=3)
    scores = np.random.default_rng(1).random(12)
    got = run(pairs, scores=scores, imdl=True)
    want = plain.imdl_metrics(plain.masked(pairs), scores=scores)
    assert math.isclose(got["image_auc"], want["image_auc"], rel_tol=1e-12)
    assert math.isnan(got["pixel_auc"]) and math.isnan(got["pixel_f1_best_per_image"])  # none given


def test_image_level_auc_equals_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    from diffseg30k.metrics import roc_auc

    rng = np.random.default_rng(2)
    for trial in range(100):
        n = int(rng.integers(2, 40))
        truth = rng.random(n) < 0.5
        scores = rng.integers(0, 4, n) / 3 if trial % 2 else rng.random(n)
        if truth.all() or not truth.any():
            assert math.isnan(roc_auc(truth, scores))
        else:
            assert math.isclose(roc_auc(truth, scores), roc_auc_score(truth, scores), rel_tol=1e-12)


def test_authentic_images_are_left_out_of_per_image_keys():
    ref = np.zeros((20, 20), np.uint8)
    ref[5:10, 5:10] = 2
    authentic = np.zeros_like(ref)
    fp = authentic.copy()
    fp[0:2, 0:2] = 1
    one = run([(ref, ref)], imdl=True)
    two = run([(ref, ref), (fp, authentic)], imdl=True)  # a false positive on an authentic image
    assert one["pixel_f1_per_image"] == two["pixel_f1_per_image"] == 1.0
    assert two["pixel_iou_per_image"] == 1.0 and two["binary_miou"] < 1.0


def test_keys_are_opt_in_and_spec_names_each_convention():
    pairs, maps = _realistic(4, seed=9)
    plain_out = run(pairs)
    assert not set(IMDL_KEYS) & set(plain_out) and "pixel_score_bins" not in plain_out["spec"]
    assert set(plain_out["spec"]["conventions"]) == {k for k in plain_out if k in CONVENTIONS}
    for out in (run(pairs, imdl=True), run(pairs, pixel_scores=maps),
                run(pairs, pixel_scores=maps, task="binary")):
        assert set(IMDL_KEYS) <= set(out)
        conventions = out["spec"]["conventions"]
        assert set(conventions) == {k for k in out if k in CONVENTIONS}
        assert conventions["pixel_f1_per_image"].startswith("imdl") and conventions["binary_miou"].startswith(
            "diffseg30k") and conventions["pixel_auc"].startswith("pooled")
    assert out["spec"]["metric_version"] == METRIC_VERSION == "2.0"


def test_mixed_pixel_scores_are_rejected():
    pairs, maps = _realistic(2, seed=5)
    metric = DiffSegMetric()
    metric.update(*pairs[0], pixel_scores=maps[0])
    metric.update(*pairs[1])
    with pytest.raises(ValueError, match="pixel_scores were given for 1 of 2 images"):
        metric.compute()


@pytest.mark.parametrize("bad, message", [
    (np.zeros((48, 71), np.float32), r"pair 2: pixel_scores shape \(48, 71\) differs"),
    (np.full((48, 72), np.nan, np.float32), "pair 2: pixel_scores contains NaN"),
    (np.full((48, 72), 1.5), r"pair 2: pixel_scores has values in \[1.5, 1.5\]"),
    (np.full((48, 72), -0.1), "pair 2: pixel_scores has values in"),
    (np.zeros((48, 72), np.uint8), "pair 2: pixel_scores has dtype uint8"),
])
def test_bad_pixel_scores_name_the_pair(bad, message):
    pairs, maps = _realistic(3, seed=11)
    metric = DiffSegMetric()
    with pytest.raises(ValueError, match=message):
        metric.update_batch([p for p, _ in pairs], [r for _, r in pairs],
                            pixel_scores=[maps[0], maps[1], bad])
    assert len(metric) == 0


def test_wrong_number_of_score_maps():
    pairs, maps = _realistic(3, seed=11)
    with pytest.raises(ValueError, match="pixel_scores has 2 maps for 3 pairs"):
        DiffSegMetric().update_batch([p for p, _ in pairs], [r for _, r in pairs], pixel_scores=maps[:2])
    with pytest.raises(ValueError, match="pixel_scores: a batch array must be"):
        DiffSegMetric().update_batch([p for p, _ in pairs], [r for _, r in pairs], pixel_scores=np.zeros(5))


# ------------------------------------------------------------------------ state, rows, merging, bins
def test_state_is_constant_size_apart_from_per_image_scores():
    pairs, maps = _realistic(40, size=32, seed=20)
    sizes = []
    for n in (10, 40):
        metric = DiffSegMetric()
        metric.update_batch([p for p, _ in pairs[:n]], [r for _, r in pairs[:n]], pixel_scores=maps[:n])
        assert metric.score_counts.shape == (SCORE_BINS, 2)
        sizes.append(len(pickle.dumps(metric)))
    assert (sizes[1] - sizes[0]) / 30 < 40  # bytes per extra image: the image-level arrays only


def test_rows_merge_and_pickle_keep_pixel_score_results_identical():
    pairs, maps = _realistic(10, seed=30)
    whole = run(pairs, pixel_scores=maps)
    a, b = DiffSegMetric(), DiffSegMetric()
    for i, ((p, r), m) in enumerate(zip(pairs, maps)):
        (a if i % 3 else b).update(p, r, pixel_scores=m)
    merged = DiffSegMetric().merge(pickle.loads(pickle.dumps(b))).merge(a)
    assert json.dumps(merged.compute()) == json.dumps(whole)
    floats, ints = DiffSegMetric().encode_rows([p for p, _ in pairs], [r for _, r in pairs],
                                               pixel_scores=maps)
    from_rows = DiffSegMetric()
    for f, i in zip(floats, ints):
        from_rows.add_row(f, i)
    assert json.dumps(from_rows.compute()) == json.dumps(whole)
    with pytest.raises(ValueError, match="not a DiffSeg30k statistics row"):
        from_rows.add_row(floats[0], ints[0][:40])


def test_bins_are_monotone_and_cover_the_tails():
    rng = np.random.default_rng(0)
    tails = rng.random(5000).astype(np.float32) ** 12
    s = np.concatenate([rng.random(20000).astype(np.float32), tails, 1 - tails,
                        np.array([0, 1, 0.5, 1e-45, np.nextafter(np.float32(0.5), np.float32(1))],
                                 np.float32)])
    codes = score_codes(s)
    order = np.argsort(s, kind="stable")
    assert codes.max() == SCORE_BINS - 1 and codes.min() == 0
    assert (np.diff(codes[order].astype(np.int64)) >= 0).all()
    assert np.unique(score_codes((np.arange(256) / 255).astype(np.float32))).size == 256
    assert score_codes(np.float32([1e-6, 2e-6, 1 - 2e-6, 1 - 1e-6])).tolist() == sorted(
        set(score_codes(np.float32([1e-6, 2e-6, 1 - 2e-6, 1 - 1e-6])).tolist()))  # distinct, ordered


def test_saved_levels_are_logit_spaced_and_round_trip():
    rng = np.random.default_rng(1)
    s = np.concatenate([rng.random(10000), 1 / (1 + np.exp(-rng.uniform(-20, 20, 10000)))]).astype(np.float32)
    levels = quantise_scores(s)
    assert levels.dtype == np.uint8 and levels.min() == 0 and levels.max() == 255
    back = dequantise_scores(levels)
    assert (np.diff(levels[np.argsort(s)].astype(int)) >= 0).all()  # monotone
    assert np.array_equal(quantise_scores(back), levels)  # idempotent
    def logit(x):
        x = np.clip(x.astype(np.float64), 1e-12, 1 - 1e-12)
        return np.log(x) - np.log1p(-x)

    inside = np.abs(logit(s)) < 12  # where float32 itself resolves the logit to ~0.01
    assert np.abs(logit(back) - logit(s))[inside].max() <= 14 / 255 + 0.01  # half a level
    assert np.unique(score_codes(dequantise_scores(np.arange(256, dtype=np.uint8)))).size == 256
    assert quantise_scores(np.float32([1e-4, 1e-3])).tolist()[0] < quantise_scores(np.float32([1e-3]))[0]
    with pytest.raises(ValueError, match="not a map of saved score levels"):
        dequantise_scores(np.zeros(3, np.int32))


def test_torch_and_float64_score_maps_are_accepted():
    torch = pytest.importorskip("torch")
    pairs, maps = _realistic(3, seed=50)
    want = json.dumps(run(pairs, pixel_scores=maps))
    as_torch = torch.from_numpy(np.stack(maps)).to(torch.bfloat16).float()
    mixed = [maps[0].astype(np.float64), torch.from_numpy(maps[1]), maps[2]]
    assert json.dumps(run(pairs, pixel_scores=mixed)) == want
    assert set(IMDL_KEYS) <= set(run(pairs, pixel_scores=as_torch))
