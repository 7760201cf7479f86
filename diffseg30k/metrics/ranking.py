"""Image-level average precision, defined exactly as scikit-learn's ``average_precision_score``."""

from __future__ import annotations

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
