"""Additive statistics of one (prediction, reference) pair: the maths of every DiffSeg30k metric."""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from diffseg30k.metrics.boundary import BitPlane, Scratch, boundary_points, row_extent, tolerance_pixels
from diffseg30k.metrics.inputs import SENTINEL
from diffseg30k.metrics.scores import best_f1, image_histogram

SEMANTIC, BINARY = 1, 2  # bits of PairStats.tasks
FIXED_POINT = 1 << 52  # scale of the integer boundary-F sums


ScoreHistogram = tuple  # (uint16 bin codes ascending, background counts, edited counts) of one image


@dataclass
class PairStats:
    """What one image contributes; everything the metric needs, nothing the size of the image.

    ``confusion`` is (K+1, K+1): rows reference, columns prediction, the last row/column counting
    ignored pixels (the prediction is masked to valid pixels, so ignored pixels sit in the last
    row's last cell). ``semantic_f`` holds the per-class boundary F of classes 1..K-1 (NaN where the
    class is absent from both maps' valid pixels), ``binary_f`` the edited-region F (NaN when
    neither map has edited valid pixels). ``score`` is NaN when the caller gave none (the predicted
    edited fraction of the valid pixels is used then). ``score_histogram`` (sparse, from
    ``pixel_scores``) and ``best_f1`` (the image's best-threshold F1) are None / NaN without them.
    """

    confusion: np.ndarray
    semantic_f: np.ndarray
    binary_f: float
    height: int
    width: int
    tasks: int
    score: float = float("nan")
    score_histogram: ScoreHistogram | None = None
    best_f1: float = float("nan")

    @property
    def num_pixels(self) -> int:
        return self.height * self.width

    @cached_property
    def valid_pixels(self) -> int:
        """Pixels whose reference is not ignored."""
        return int(self.confusion[:-1, :-1].sum())

    @cached_property
    def predicted_edited(self) -> int:
        """Valid pixels predicted as a class >= 1."""
        return int(self.confusion[:-1, 1:-1].sum())

    @cached_property
    def reference_edited(self) -> bool:
        return bool(self.confusion[1:-1, :-1].any())

    @cached_property
    def binary_counts(self) -> tuple[int, int, int]:
        """(true positive, false positive, false negative) valid pixels of the edited region."""
        c = self.confusion
        return int(c[1:-1, 1:-1].sum()), int(c[0, 1:-1].sum()), int(c[1:-1, 0].sum())

    @cached_property
    def fixed_f(self) -> tuple[list[tuple[int, int]], int | None]:
        """(class index, F) pairs of the present classes and the binary F (None when absent), with F
        as an exact integer multiple of 2**-52: sums of them do not depend on the order of images."""
        present = np.flatnonzero(~np.isnan(self.semantic_f))
        semantic = [(int(i), round(float(self.semantic_f[i]) * FIXED_POINT)) for i in present]
        binary = None if np.isnan(self.binary_f) else round(float(self.binary_f) * FIXED_POINT)
        return semantic, binary

    @cached_property
    def fixed_region(self) -> tuple[int, int, int] | None:
        """Per-image (F1, IoU, best-threshold F1) of the edited region as multiples of 2**-52, for
        images whose reference has an edited valid pixel (None otherwise; best F1 -1 without
        pixel scores)."""
        if not self.reference_edited:
            return None
        tp, fp, fn = self.binary_counts
        best = -1 if np.isnan(self.best_f1) else round(self.best_f1 * FIXED_POINT)
        return (round(2 * tp / (2 * tp + fp + fn) * FIXED_POINT), round(tp / (tp + fp + fn) * FIXED_POINT),
                best)


def joint_histogram(pred: np.ndarray, ref: np.ndarray, num_classes: int) -> np.ndarray:
    """(K+1, K+1) int64 counts of (reference, prediction) ids; id K collects ignored pixels.

    Counted over runs of equal codes along the flattened image, so the histogram costs a few
    vector passes plus one small weighted bincount instead of a per-pixel scatter.
    """
    base = num_classes + 1
    dtype = np.uint8 if base * base <= 256 else np.uint16
    if int(ref.max()) == SENTINEL:
        ref = np.minimum(ref, np.uint8(num_classes))
    if int(pred.max()) == SENTINEL:
        pred = np.minimum(pred, np.uint8(num_classes))
    codes = np.multiply(ref, dtype(base), dtype=dtype)
    codes += pred
    flat = codes.ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1])
    starts = np.empty(change.size + 1, np.intp)
    starts[0] = 0
    np.add(change, 1, out=starts[1:])
    lengths = np.diff(starts, append=flat.size)
    counts = np.bincount(flat[starts], weights=lengths, minlength=base * base)
    return counts.astype(np.int64).reshape(base, base)


def boundary_f(n_pred: np.ndarray, hit_pred: np.ndarray, n_ref: np.ndarray, hit_ref: np.ndarray,
               in_both: np.ndarray) -> np.ndarray:
    """F = 2PR/(P+R) = 2 hp hr / (hp nr + hr np); 0 when one side has no boundary (or P+R = 0);
    1 when neither has one.

    "Neither has one" scores 1 only for a class present in both maps (then both regions fill the
    whole image); a class filling the image on one side and absent on the other scores 0.
    """
    n_pred, hit_pred, n_ref, hit_ref = (np.asarray(a, np.int64) for a in (n_pred, hit_pred, n_ref, hit_ref))
    numerator = 2 * hit_pred * hit_ref
    denominator = hit_pred * n_ref + hit_ref * n_pred
    f = np.zeros(numerator.shape)
    np.divide(numerator, denominator, out=f, where=denominator > 0)
    f[(n_pred == 0) & (n_ref == 0) & np.asarray(in_both, bool)] = 1.0
    return f


class PairEvaluator:
    """Computes :class:`PairStats` for validated uint8 maps; keeps per-thread scratch planes."""

    def __init__(self, num_classes: int, boundary_tolerance: float, tasks: int) -> None:
        self.num_classes = num_classes
        self.boundary_tolerance = boundary_tolerance
        self.tasks = tasks
        nbits = num_classes  # K-1 class bits + 1 binary bit
        self.bit_dtype = next((t for t in (np.uint16, np.uint32, np.uint64) if np.iinfo(t).bits >= nbits),
                              None)
        self._local = threading.local()

    def __getstate__(self) -> dict:  # picklable (e.g. accelerate's gather_object): drop scratch
        return {k: v for k, v in self.__dict__.items() if k != "_local"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def _cached(self, key: tuple, make):
        """A per-thread scratch object for one image shape (a few shapes are kept)."""
        cache = self._local.__dict__.setdefault("cache", {})
        if key not in cache:
            if len(cache) > 8:
                cache.clear()
            cache[key] = make()
        return cache[key]

    def _plane(self, height: int, width: int, theta: int, dtype: type) -> BitPlane:
        return self._cached(("plane", height, width, theta, dtype),
                            lambda: BitPlane(height, width, theta, dtype))

    def __call__(self, pred: np.ndarray, ref: np.ndarray, score: float = float("nan"),
                 pixel_scores: np.ndarray | None = None) -> PairStats:
        k = self.num_classes
        height, width = ref.shape
        extents = row_extent(pred), row_extent(ref)
        known = [e for e in extents if e is not None]
        if known:  # rows outside every label are background in both maps
            top, bottom = min(e[0] for e in known), max(e[1] for e in known) + 1
            joint = joint_histogram(pred[top:bottom], ref[top:bottom], k)
            joint[0, 0] += (height - (bottom - top)) * width
        else:
            joint = np.zeros((k + 1, k + 1), np.int64)
            joint[0, 0] = height * width
        valid = joint[:k, :k]  # v2: class presence counts valid pixels only
        in_ref = valid.sum(axis=1)[1:] > 0  # classes 1..K-1
        in_pred = valid.sum(axis=0)[1:] > 0
        semantic_f = np.full(k - 1, np.nan)
        binary_f = float("nan")
        if in_ref.any() or in_pred.any():
            theta = tolerance_pixels(height, width, self.boundary_tolerance)
            semantic_f, binary_f = self._boundary_scores(pred, ref, theta, in_ref, in_pred, extents)
        histogram, best = None, float("nan")
        if pixel_scores is not None:
            histogram = image_histogram(pixel_scores, ref)
            best = best_f1(histogram[1], histogram[2])
        return PairStats(confusion=joint, semantic_f=semantic_f, binary_f=binary_f, height=height,
                         width=width, tasks=self.tasks, score=score, score_histogram=histogram, best_f1=best)

    def _boundary_scores(self, pred: np.ndarray, ref: np.ndarray, theta: int, in_ref: np.ndarray,
                         in_pred: np.ndarray, extents: tuple) -> tuple[np.ndarray, float]:
        """Per-class F (NaN for absent classes) and the binary F of one image."""
        k = self.num_classes
        scratch = self._cached(("scratch", *ref.shape), lambda: Scratch(ref.shape))
        p_index, p_ids, p_bin = boundary_points(pred, k, scratch, extents[0])
        r_index, r_ids, r_bin = boundary_points(ref, k, scratch, extents[1])
        if not self.tasks & SEMANTIC:  # binary only: class boundaries inside the edited region drop out
            p_index, p_ids, p_bin = p_index[p_bin], p_ids[p_bin], p_bin[p_bin]
            r_index, r_ids, r_bin = r_index[r_bin], r_ids[r_bin], r_bin[r_bin]
        if self.bit_dtype is None:  # more classes than bits: one bit plane per class
            p_hit, r_hit = self._match_per_class(ref.shape, theta, (p_index, p_ids, p_bin),
                                                 (r_index, r_ids, r_bin))
        else:
            p_hit, r_hit = self._match_bits(ref.shape, theta, (p_index, p_ids, p_bin),
                                            (r_index, r_ids, r_bin))
        semantic_f = np.full(k - 1, np.nan)
        if self.tasks & SEMANTIC:
            f = boundary_f(np.bincount(p_ids, minlength=k)[1:], np.bincount(p_ids[p_hit[0]], minlength=k)[1:],
                           np.bincount(r_ids, minlength=k)[1:], np.bincount(r_ids[r_hit[0]], minlength=k)[1:],
                           in_ref & in_pred)
            present = in_ref | in_pred
            semantic_f[present] = f[present]
        binary_f = float("nan")
        if self.tasks & BINARY:
            counts = [np.array([int(np.count_nonzero(x))]) for x in (p_bin, p_hit[1], r_bin, r_hit[1])]
            binary_f = float(boundary_f(*counts, np.array([in_ref.any() and in_pred.any()]))[0])
        return semantic_f, binary_f

    def _match_bits(self, shape: tuple[int, int], theta: int, p_pts: tuple, r_pts: tuple
                    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """(semantic hit, binary hit) flags of prediction and reference boundary points; every class
        owns one bit of a shared bit plane, the binary region the bit above them."""
        dtype = self.bit_dtype
        plane = self._plane(*shape, theta, dtype)
        binary_bit = dtype(1 << (self.num_classes - 1))
        semantic, binary = bool(self.tasks & SEMANTIC), bool(self.tasks & BINARY)

        def bits(ids: np.ndarray, on_binary: np.ndarray) -> np.ndarray:
            out = np.zeros(ids.size, dtype)
            if semantic:
                np.left_shift(np.ones(ids.size, dtype), (ids - 1).astype(dtype), out=out)
            if binary:
                out |= np.where(on_binary, binary_bit, dtype(0))
            return out

        p_bits, r_bits = bits(p_pts[1], p_pts[2]), bits(r_pts[1], r_pts[2])
        p_pos, r_pos = plane.padded(p_pts[0]), plane.padded(r_pts[0])
        p_left, r_left = plane.match(p_pos, p_bits, r_pos, r_bits)
        class_bits = ~binary_bit
        return (((p_left & class_bits) == 0, p_pts[2] & ((p_left & binary_bit) == 0)),
                ((r_left & class_bits) == 0, r_pts[2] & ((r_left & binary_bit) == 0)))

    def _match_per_class(self, shape: tuple[int, int], theta: int, p_pts: tuple, r_pts: tuple
                         ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """Same result as :meth:`_match_bits` for label sets too large for one bit per class."""
        plane = self._plane(*shape, theta, np.uint8)
        p_pos, r_pos = plane.padded(p_pts[0]), plane.padded(r_pts[0])
        hits = [np.zeros(p_pos.size, bool), np.zeros(p_pos.size, bool)], \
            [np.zeros(r_pos.size, bool), np.zeros(r_pos.size, bool)]
        groups = []
        if self.tasks & SEMANTIC:
            groups += [(0, p_pts[1] == c, r_pts[1] == c) for c in np.union1d(p_pts[1], r_pts[1])]
        if self.tasks & BINARY:
            groups.append((1, p_pts[2], r_pts[2]))
        for slot, p_sel, r_sel in groups:
            p_one, r_one = np.ones(int(p_sel.sum()), np.uint8), np.ones(int(r_sel.sum()), np.uint8)
            p_left, r_left = plane.match(p_pos[p_sel], p_one, r_pos[r_sel], r_one)
            hits[0][slot][p_sel] = p_left == 0
            hits[1][slot][r_sel] = r_left == 0
        return (hits[0][0], hits[0][1]), (hits[1][0], hits[1][1])


ROW_FORMAT = 2  # 2: metric v2 (best F1 and the sparse pixel-score histogram added)


def encode_row(stats: PairStats, ignore_index: int, boundary_tolerance: float) -> tuple[bytes, bytes]:
    """Pack one image's statistics (and the settings they depend on) into two compact blobs:
    float64 [format, tolerance, score, binary F, best F1, semantic F...] and int64 [format, K, ignore,
    tasks, height, width, histogram bins (-1: none), confusion...] followed by the histogram as
    uint16 code steps (codes delta-encoded), uint32 background and uint32 edited counts, zlib
    level 1 (about 6 kB for a 512x512 probability map). ``evaluate`` stores these instead of
    label maps and score maps."""
    floats = np.concatenate([[ROW_FORMAT, boundary_tolerance, stats.score, stats.binary_f, stats.best_f1],
                             stats.semantic_f])
    k = stats.confusion.shape[0] - 1
    histogram = stats.score_histogram
    bins = -1 if histogram is None else int(histogram[0].size)
    head = [ROW_FORMAT, k, ignore_index, stats.tasks, stats.height, stats.width, bins]
    ints = np.concatenate([np.array(head, np.int64), stats.confusion.ravel()]).astype(np.int64).tobytes()
    if histogram is not None:
        steps = np.diff(histogram[0].astype(np.int64), prepend=0).astype(np.uint16)
        ints += zlib.compress(steps.tobytes() + histogram[1].astype(np.uint32).tobytes()
                              + histogram[2].astype(np.uint32).tobytes(), 1)
    return floats.astype(np.float64).tobytes(), ints


def decode_row(floats: bytes, ints: bytes) -> tuple[PairStats, int, float]:
    """Inverse of :func:`encode_row`: (stats, ignore_index, boundary_tolerance)."""
    f = np.frombuffer(floats, np.float64)
    head = np.frombuffer(ints[:56], np.int64) if len(ints) >= 56 else np.zeros(0, np.int64)
    if f.size < 5 or head.size < 7 or int(f[0]) != ROW_FORMAT or int(head[0]) != ROW_FORMAT:
        raise ValueError("not a DiffSeg30k statistics row (or one from an incompatible version)")
    _, k, ignore_index, tasks, height, width, bins = (int(v) for v in head)
    end = 56 + 8 * (k + 1) ** 2
    packed = b""
    if bins >= 0:
        try:
            packed = zlib.decompress(ints[end:])
        except zlib.error:
            packed = b"corrupt"
    sizes_ok = len(ints) >= end and len(packed) == 10 * max(bins, 0) and (bins >= 0 or len(ints) == end)
    if f.size != 5 + k - 1 or not sizes_ok:
        raise ValueError(f"corrupt DiffSeg30k statistics row for {k} classes")
    confusion = np.frombuffer(ints[56:end], np.int64).reshape(k + 1, k + 1).copy()
    histogram = None
    if bins >= 0:
        codes = np.cumsum(np.frombuffer(packed[:2 * bins], np.uint16), dtype=np.int64).astype(np.uint16)
        counts = np.frombuffer(packed[2 * bins:], np.uint32).astype(np.int64)
        histogram = (codes, counts[:bins], counts[bins:])
    stats = PairStats(confusion=confusion, semantic_f=f[5:].copy(), binary_f=float(f[3]), height=height,
                      width=width, tasks=tasks, score=float(f[2]), score_histogram=histogram,
                      best_f1=float(f[4]))
    return stats, ignore_index, float(f[1])
