"""Per-pixel edited scores (``pixel_scores``): validation, fixed-bin histograms, ROC AUC and best F1.

Scores are binned into ``SCORE_BINS`` fixed bins that are fine near both ends of [0, 1], where a
detector's probabilities crowd: a score s (as float32) goes to the bin of t = min(s, 1 - s) given by
t's sign, exponent and 8 leading mantissa bits (relative width 2**-8 of t), mirrored for s > 0.5.
The bins are monotone in s, so the AUC and the best threshold computed from them differ from exact
values only through pixels of both classes sharing a bin (counted as ties); scores on a 1/255 grid
and the 256 saved levels of ``quantise_scores`` (logit-spaced, for saved predictions) never share a
bin, so for them both are exact.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from diffseg30k.metrics.inputs import SENTINEL, LabelMapError, to_numpy

_SHIFT = 15  # keeps sign (0), 8 exponent and 8 mantissa bits of a float32
_HALF = int(np.float32(0.5).view(np.uint32)) >> _SHIFT  # code of 0.5
SCORE_BINS = 2 * _HALF + 1
BINNING = (f"{SCORE_BINS} fixed bins, log-spaced towards 0 and 1 (relative width 2^-8 of min(s, 1-s)); "
           "pixels of both classes in one bin count as ties")


def check_pixel_scores(value: Any, shape: tuple[int, int], index: int) -> np.ndarray:
    """One pair's score map as float32, same shape as its reference, every value in [0, 1]."""
    where = f"pair {index}: pixel_scores"
    if type(value).__module__.startswith("torch") and value.is_floating_point():
        value = value.detach().float()
    try:
        array = to_numpy(value)
    except (TypeError, ValueError):
        raise LabelMapError(f"{where} is not an array of floats") from None
    if array.dtype.kind != "f":
        raise LabelMapError(f"{where} has dtype {array.dtype}; pass float scores in [0, 1]")
    if array.shape != tuple(shape):
        raise LabelMapError(f"{where} shape {tuple(array.shape)} differs from reference shape {tuple(shape)}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    low, high = float(array.min()), float(array.max())  # NaN propagates into both
    if np.isnan(low) or np.isnan(high):
        raise LabelMapError(f"{where} contains NaN")
    if low < 0.0 or high > 1.0:
        raise LabelMapError(f"{where} has values in [{low:.6g}, {high:.6g}]; scores must lie in [0, 1]")
    return array


CHUNK = 1 << 15  # pixels per pass: the temporaries of one chunk stay in the CPU cache


def _codes_into(scores: np.ndarray, codes: np.ndarray, scratch: np.ndarray) -> None:
    """Bin codes of a 1-D float32 chunk into ``codes`` (uint32); ``scratch`` is float32 of equal size.

    Branch-free: ``mask`` is all ones where s >= 0.5 (from the sign of s - 0.5), and
    ``(c ^ mask) + (mask & (2H + 1))`` is c below 0.5 and 2H - c above (uint32 wrap-around).
    """
    np.subtract(np.float32(1.0), scores, out=scratch)  # exact for s >= 0.5
    np.minimum(scores, scratch, out=scratch)
    low = scratch.view(np.uint32)
    np.right_shift(low, np.uint32(_SHIFT), out=codes)
    np.subtract(scores, np.float32(0.5), out=scratch)
    mask = scratch.view(np.uint32)
    mask >>= np.uint32(31)  # 1 below 0.5
    mask -= np.uint32(1)
    codes ^= mask
    mask &= np.uint32(2 * _HALF + 1)
    codes += mask


def score_codes(scores: np.ndarray) -> np.ndarray:
    """Bin code (0 .. SCORE_BINS-1, monotone in the score) of every value of a float32 array."""
    flat = np.ascontiguousarray(scores, dtype=np.float32).reshape(-1)
    codes = np.empty(flat.size, np.uint32)
    scratch = np.empty(min(CHUNK, flat.size), np.float32)
    for start in range(0, flat.size, CHUNK):
        stop = min(start + CHUNK, flat.size)
        _codes_into(flat[start:stop], codes[start:stop], scratch[:stop - start])
    return codes.reshape(np.shape(scores))


#: Saved score maps: 256 levels evenly spaced in logit(s) over [-LOGIT_RANGE, LOGIT_RANGE].
LOGIT_RANGE = 14.0  # the float32 scores near 1 still resolve every level
_LEVEL = 2 * LOGIT_RANGE / 255  # logit step between levels


def quantise_scores(scores: np.ndarray) -> np.ndarray:
    """A [0, 1] score map as uint8 levels evenly spaced in logit(s) (what saved predictions store).

    Level width 0.11 in logit units: a relative step of ~12 % of min(s, 1 - s) in the tails,
    0.027 near 0.5; scores below sigmoid(-14) = 8.3e-7 (above 1 - 8.3e-7) share the end levels.
    A uniform 1/255 grid would instead merge every score below 0.002 into one level, which ties a
    detector's confident misses with its confident background.
    """
    s = np.clip(np.asarray(scores, np.float64), 1e-12, 1 - 1e-12)
    logit = np.log(s) - np.log1p(-s)
    return np.rint(127.5 + np.clip(logit, -LOGIT_RANGE, LOGIT_RANGE) / _LEVEL).astype(np.uint8)


@lru_cache(maxsize=1)
def _level_values() -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-(np.arange(256) - 127.5) * _LEVEL))).astype(np.float32)


def dequantise_scores(levels: np.ndarray) -> np.ndarray:
    """float32 scores of saved uint8 levels (the centre of each level, monotone, each its own bin)."""
    levels = np.asarray(levels)
    if levels.dtype != np.uint8:
        raise ValueError(f"not a map of saved score levels (dtype {levels.dtype}; want uint8)")
    return _level_values()[levels]


def image_histogram(scores: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse score histogram of one image's valid pixels: (bin codes, background counts, edited
    counts), codes ascending; ``reference`` is the validated uint8 map (255 = ignored).

    Every pixel gets the index code + SCORE_BINS * (edited) (2 * SCORE_BINS when ignored), built
    chunk by chunk, and one bincount counts them all.
    """
    flat, labels = scores.reshape(-1), reference.reshape(-1)
    index = np.empty(flat.size, np.intp)
    codes = np.empty(min(CHUNK, flat.size), np.uint32)
    scratch = np.empty(codes.size, np.float32)
    ignored = int(labels.max()) == SENTINEL
    for start in range(0, flat.size, CHUNK):
        stop = min(start + CHUNK, flat.size)
        part, size = index[start:stop], stop - start
        _codes_into(flat[start:stop], codes[:size], scratch[:size])
        np.greater(labels[start:stop], 0, out=part, casting="unsafe")
        part *= SCORE_BINS
        part += codes[:size]
        if ignored:
            part[labels[start:stop] == SENTINEL] = 2 * SCORE_BINS
    counts = np.bincount(index, minlength=2 * SCORE_BINS + 1)
    negative, positive = counts[:SCORE_BINS], counts[SCORE_BINS:2 * SCORE_BINS]
    present = np.flatnonzero(negative | positive)
    return present.astype(np.uint16), negative[present], positive[present]


def best_f1(negative: np.ndarray, positive: np.ndarray) -> float:
    """Highest F1 over thresholds "score >= bin" of one image (bins ascending); NaN with no positive."""
    total = int(positive.sum())
    if total == 0:
        return float("nan")
    true_pos = np.cumsum(positive[::-1])
    false_pos = np.cumsum(negative[::-1])
    return float(np.max(2 * true_pos / (total + true_pos + false_pos)))


def histogram_auc(negative: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC from per-bin counts (bins ascending), ties counted half; NaN without both classes."""
    neg_total, pos_total = float(negative.sum()), float(positive.sum())
    if neg_total == 0 or pos_total == 0:
        return float("nan")
    below = np.cumsum(negative) - negative  # negatives in lower bins
    wins = np.dot(positive.astype(np.float64), below + 0.5 * negative)
    return float(wins / (neg_total * pos_total))
