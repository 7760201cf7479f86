"""Image-level ranking and decision metrics (AP, ROC AUC, F1, balanced accuracy, MCC), defined as
scikit-learn defines them."""

from __future__ import annotations

import math

import numpy as np


def average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
    """Step-wise AP = sum_n (R_n - R_{n-1}) P_n over distinct score thresholds (no interpolation).

    Tied scores form one threshold, so the result does not depend on image order. NaN when no
    image is positive (AP is undefined; scikit-learn warns and returns 0 there).
    """
    truth = np.asarray(truth, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    positives = int(truth.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    scores, truth = scores[order], truth[order]
    last_of_threshold = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    true_pos = np.cumsum(truth)[last_of_threshold]
    precision = true_pos / (last_of_threshold + 1)
    recall = true_pos / positives
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney U with mid-ranks for ties), exactly scikit-learn's ``roc_auc_score``;
    NaN unless both classes occur (scikit-learn raises there)."""
    truth = np.asarray(truth, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    positives, negatives = int(truth.sum()), int((~truth).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    first = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1]  # start of each run of tied scores
    sizes = np.diff(np.r_[first, ordered.size])
    mid_rank = np.repeat(first + (sizes + 1) / 2, sizes)  # 1-based mid-rank of every sorted score
    rank_sum = float(mid_rank[truth[order]].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def decision_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """F1, balanced accuracy and Matthews correlation of binary decisions (edited = positive).

    Undefined values are NaN (scikit-learn returns 0 with a warning): F1 with no positive in truth
    or prediction, MCC when a row or column of the 2x2 table is empty; balanced accuracy averages the
    recalls of the classes present in ``truth``, as scikit-learn does.
    """
    truth, predicted = np.asarray(truth, bool), np.asarray(predicted, bool)
    tp, fp = int(np.sum(truth & predicted)), int(np.sum(~truth & predicted))
    fn, tn = int(np.sum(truth & ~predicted)), int(np.sum(~truth & ~predicted))
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    recalls = [hit / (hit + miss) for hit, miss in ((tp, fn), (tn, fp)) if hit + miss]
    balanced = float(np.mean(recalls)) if recalls else float("nan")
    margins = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    mcc = (tp * tn - fp * fn) / math.sqrt(margins) if margins else float("nan")
    return {"f1": float(f1), "balanced_accuracy": balanced, "mcc": float(mcc)}
