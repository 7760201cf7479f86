"""Independent, deliberately plain implementations of the DESIGN.md metric definitions (tests only)."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from sklearn import metrics as skm
from sklearn.metrics import average_precision_score


def confusion(pairs, num_classes=9, ignore_index=255):
    out = np.zeros((num_classes, num_classes), np.int64)
    for pred, ref in pairs:
        keep = ref != ignore_index
        np.add.at(out, (ref[keep].astype(int), pred[keep].astype(int)), 1)
    return out


def boundary(region):
    eroded = ndimage.binary_erosion(region, structure=np.ones((3, 3), bool), border_value=1)
    return region & ~eroded


def boundary_f1(pred_region, ref_region, theta):
    pb, rb = boundary(pred_region), boundary(ref_region)
    if not pb.any() and not rb.any():
        return 1.0 if pred_region.any() and ref_region.any() else 0.0
    if not pb.any() or not rb.any():
        return 0.0
    precision = (ndimage.distance_transform_edt(~rb)[pb] <= theta).mean()
    recall = (ndimage.distance_transform_edt(~pb)[rb] <= theta).mean()
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def theta_for(shape, fraction=0.0075):
    return max(1, math.floor(fraction * math.hypot(*shape) + 0.5))


def masked(pairs, ignore_index=255):
    """Metric v2: a pixel whose reference is ignored counts nowhere (the prediction is masked there)."""
    return [(np.where(ref == ignore_index, ignore_index, pred), ref) for pred, ref in pairs]


def metrics(pairs, num_classes=9, ignore_index=255, area_threshold=0.01, fraction=0.0075, scores=None):
    pairs = masked(pairs, ignore_index)
    c = confusion(pairs, num_classes, ignore_index)
    out = {}
    for name, cm in (("semantic", c), ("binary", np.array([[c[0, 0], c[0, 1:].sum()],
                                                            [c[1:, 0].sum(), c[1:, 1:].sum()]]))):
        ious = []
        for k in range(1, cm.shape[0]):
            union = cm[k, :].sum() + cm[:, k].sum() - cm[k, k]
            if union:
                ious.append(cm[k, k] / union)
        out[f"{name}_accuracy"] = np.trace(cm) / cm.sum()
        out[f"{name}_miou"] = np.mean(ious) if ious else math.nan
    per_class = {k: [] for k in range(1, num_classes)}
    binary = []
    for pred, ref in pairs:
        theta = theta_for(ref.shape, fraction)
        for k in range(1, num_classes):
            if (pred == k).any() or (ref == k).any():
                per_class[k].append(boundary_f1(pred == k, ref == k, theta))
        p_edit = (pred > 0) & (pred < num_classes)
        r_edit = (ref > 0) & (ref != ignore_index)
        if p_edit.any() or r_edit.any():
            binary.append(boundary_f1(p_edit, r_edit, theta))
    class_means = [np.mean(v) for v in per_class.values() if v]
    out["semantic_bf1"] = np.mean(class_means) if class_means else math.nan
    out["binary_bf1"] = np.mean(binary) if binary else math.nan
    out["per_class_bf1"] = {k: (np.mean(v) if v else math.nan) for k, v in per_class.items()}
    fractions = np.array([((pred > 0) & (pred < num_classes)).sum() / max(1, (ref != ignore_index).sum())
                          for pred, ref in pairs])
    truth = np.array([((ref > 0) & (ref != ignore_index)).any() for _, ref in pairs])
    out["image_accuracy"] = np.mean((fractions > area_threshold) == truth)
    out["image_ap"] = average_precision_score(truth, fractions if scores is None else scores)
    out["confusion_matrix"] = c
    return out


def imdl_metrics(pairs, pixel_scores=None, scores=None, ignore_index=255, area_threshold=0.01):
    """The IMDL-convention keys straight from scikit-learn, on the binary view of the valid pixels."""
    f1, iou, best, truth, fractions = [], [], [], [], []
    all_truth, all_scores = [], []
    for i, (pred, ref) in enumerate(pairs):
        valid = ref != ignore_index
        t, p = ref[valid] > 0, pred[valid] > 0
        truth.append(t.any())
        fractions.append(p.sum() / max(1, valid.sum()))
        if t.any():
            f1.append(skm.f1_score(t, p))
            iou.append(skm.jaccard_score(t, p))
        if pixel_scores is not None:
            s = np.asarray(pixel_scores[i], np.float64)[valid]
            all_truth.append(t)
            all_scores.append(s)
            if t.any():  # best threshold over every distinct score of the image
                precision, recall, _ = skm.precision_recall_curve(t, s)
                with np.errstate(invalid="ignore", divide="ignore"):
                    best.append(np.nanmax(2 * precision * recall / (precision + recall)))
    truth = np.array(truth)
    image_scores = np.array(fractions) if scores is None else np.asarray(scores)
    decided = np.array(fractions) > area_threshold
    out = {"pixel_f1_per_image": np.mean(f1) if f1 else math.nan,
           "pixel_iou_per_image": np.mean(iou) if iou else math.nan,
           "image_auc": skm.roc_auc_score(truth, image_scores),
           "image_f1": skm.f1_score(truth, decided),
           "image_balanced_accuracy": skm.balanced_accuracy_score(truth, decided),
           "image_mcc": skm.matthews_corrcoef(truth, decided)}
    if pixel_scores is not None:
        out["pixel_auc"] = skm.roc_auc_score(np.concatenate(all_truth), np.concatenate(all_scores))
        out["pixel_f1_best_per_image"] = np.mean(best) if best else math.nan
    return out
