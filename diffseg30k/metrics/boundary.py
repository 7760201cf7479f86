"""Boundary pixels of label maps and tolerance matching between two boundary point sets.

Boundary (DESIGN.md): a pixel of class k >= 1 with at least one 8-neighbour outside the class
region; the image edge is not a boundary. A pixel is therefore a boundary pixel exactly when the
minimum and maximum label of its 3x3 window (clipped to the image) differ. Matching uses Euclidean
distance <= theta between integer pixel positions, tested with a padded bit-plane image: every
class owns one bit, so one gather per disk offset serves all classes (and the binary task) at once.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from diffseg30k.metrics.inputs import SENTINEL


def tolerance_pixels(height: int, width: int, fraction: float) -> int:
    """theta = max(1, round(fraction * diagonal)), rounded half up."""
    return max(1, int(math.floor(fraction * math.hypot(height, width) + 0.5)))


def _window(labels: np.ndarray, op: np.ufunc) -> np.ndarray:
    """op (minimum/maximum) over each pixel's 3x3 window clipped to the image."""
    rows = np.empty_like(labels)
    if labels.shape[1] > 1:
        op(labels[:, :-1], labels[:, 1:], out=rows[:, :-1])
        rows[:, -1] = labels[:, -1]
        op(rows[:, 1:], labels[:, :-1], out=rows[:, 1:])
    else:
        rows[:] = labels
    out = np.empty_like(labels)
    if labels.shape[0] > 1:
        op(rows[:-1], rows[1:], out=out[:-1])
        out[-1] = rows[-1]
        op(out[1:], rows[:-1], out=out[1:])
    else:
        out[:] = rows
    return out


def boundary_points(labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boundary pixels of all classes >= 1 of a validated uint8 map.

    Returns flat indices, their class ids, and whether each is also a boundary of the binary
    "edited" region (a neighbour is background or ignored).
    """
    low = _window(labels, np.minimum)
    high = _window(labels, np.maximum)
    in_class = (labels - np.uint8(1)) < np.uint8(num_classes - 1)  # 1..K-1 (0 wraps to 255)
    mask = low != high
    mask &= in_class
    index = np.flatnonzero(mask)
    ids = labels.ravel()[index]
    to_binary = (low.ravel()[index] == 0) | (high.ravel()[index] == SENTINEL)
    return index, ids, to_binary


@lru_cache(maxsize=16)
def _disk_rings(theta: int, padded_width: int) -> tuple[np.ndarray, ...]:
    """Flat offsets of the disk of radius theta, grouped in rings of growing distance."""
    dy, dx = np.mgrid[-theta:theta + 1, -theta:theta + 1]
    dist2 = (dy * dy + dx * dx).ravel()
    flat = (dy * padded_width + dx).ravel()
    inside = dist2 <= theta * theta
    dist2, flat = dist2[inside], flat[inside]
    order = np.argsort(dist2, kind="stable")
    dist2, flat = dist2[order], flat[order]
    edges = [0, 1, 2, 5, 10, 18, 32, 50, 72, 98, 128, 162, 200, 242, 288, 338, 392, 450, 512]
    edges = [e for e in edges if e < theta * theta] + [theta * theta]
    rings, start = [], 0
    for edge in edges:
        stop = int(np.searchsorted(dist2, edge, side="right"))
        if stop > start:
            rings.append(flat[start:stop].astype(np.intp))
        start = stop
    return tuple(rings)


class BitPlane:
    """A zeroed, padded bit-plane image reused across images of one shape."""

    def __init__(self, height: int, width: int, theta: int, dtype: type) -> None:
        self.height, self.width, self.theta = height, width, theta
        self.padded_width = width + 2 * theta
        self.plane = np.zeros((height + 2 * theta) * self.padded_width, dtype=dtype)
        self.rings = _disk_rings(theta, self.padded_width)

    def padded(self, index: np.ndarray) -> np.ndarray:
        """Flat image indices -> flat indices in the padded plane."""
        theta = self.theta
        return index + (index // self.width) * (2 * theta) + theta * self.padded_width + theta

    def unmatched(self, src: np.ndarray, src_bits: np.ndarray, dst: np.ndarray,
                  dst_bits: np.ndarray) -> np.ndarray:
        """Bits of each source point with no destination point of the same bit within theta."""
        plane = self.plane
        plane[dst] = dst_bits
        left = np.zeros_like(src_bits)
        todo = np.arange(src.size)
        pos, need = src, src_bits.copy()
        try:
            for ring in self.rings:
                if todo.size == 0:
                    break
                if ring.size == 1:
                    got = plane[pos + ring[0]]
                else:
                    got = np.bitwise_or.reduce(plane[pos[:, None] + ring], axis=1)
                need &= ~got
                keep = need != 0
                if not keep.all():
                    todo, pos, need = todo[keep], pos[keep], need[keep]
            left[todo] = need
        finally:
            plane[dst] = 0
        return left
