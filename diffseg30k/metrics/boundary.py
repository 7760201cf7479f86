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


def window(labels: np.ndarray, op: np.ufunc, rows: np.ndarray | None = None,
           out: np.ndarray | None = None) -> np.ndarray:
    """op (minimum/maximum/bitwise_or) over each pixel's 3x3 window clipped to the image.

    Runs on the flattened image (contiguous 1-D passes are several times faster than strided 2-D
    ones) and then repairs the first and last column of every row. ``rows``/``out`` are optional
    scratch arrays of the same shape and dtype.
    """
    height, width = labels.shape
    rows = np.empty_like(labels) if rows is None else rows
    out = np.empty_like(labels) if out is None else out
    flat, row_flat = labels.ravel(), rows.ravel()
    if width > 1:
        op(flat[:-1], flat[1:], out=row_flat[:-1])
        row_flat[-1] = flat[-1]
        op(row_flat[1:], flat[:-1], out=row_flat[1:])
        op(labels[:, 0], labels[:, 1], out=rows[:, 0])
        op(labels[:, -1], labels[:, -2], out=rows[:, -1])
    else:
        rows[:] = labels
    if height > 1:
        op(rows[:-1], rows[1:], out=out[:-1])
        out[-1] = rows[-1]
        op(out[1:], rows[:-1], out=out[1:])
    else:
        out[:] = rows
    return out


class Scratch:
    """Per-shape scratch images (reused between images to avoid fresh allocations)."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.rows = np.empty(shape, np.uint8)
        self.low = np.empty(shape, np.uint8)
        self.high = np.empty(shape, np.uint8)
        self.mask = np.empty(shape, bool)
        self.in_class = np.empty(shape, bool)


def row_extent(labels: np.ndarray) -> tuple[int, int] | None:
    """First and last row holding a non-zero label (None for an all-zero map); rows outside are
    pure background, so the confusion and boundary passes can skip them."""
    height, width = labels.shape
    flat = labels.reshape(-1)
    if width % 8 == 0:  # test 8 pixels per word
        flat, width = flat.view(np.uint64), width // 8
    nonzero = flat != 0
    first = int(np.argmax(nonzero))
    if not nonzero[first]:
        return None
    last = nonzero.size - 1 - int(np.argmax(nonzero[::-1]))
    return first // width, last // width


def boundary_points(labels: np.ndarray, num_classes: int, scratch: Scratch | None = None,
                    extent: tuple[int, int] | None = (0, -1)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boundary pixels of all classes >= 1 of a validated uint8 map.

    Returns flat indices, their class ids, and whether each is also a boundary of the binary
    "edited" region (a neighbour is background or ignored). ``extent`` (from :func:`row_extent`)
    limits the work to the rows holding labels (plus one row of context each side).
    """
    height, width = labels.shape
    if extent is None:
        empty = np.empty(0, np.intp)
        return empty, np.empty(0, np.uint8), np.empty(0, bool)
    top, bottom = max(extent[0] - 1, 0), height if extent[1] < 0 else min(extent[1] + 2, height)
    crop = labels[top:bottom]
    left = 0
    if extent[1] >= 0 and width > 64:  # also skip background-only columns (one column of context)
        columns = np.flatnonzero(crop.max(axis=0))
        left, right = max(int(columns[0]) - 1, 0), min(int(columns[-1]) + 2, width)
        if right - left < 0.8 * width:
            crop = np.ascontiguousarray(crop[:, left:right])
        else:
            left = 0
    size = crop.size
    scratch = Scratch(labels.shape) if scratch is None else scratch
    rows, low, high = (b.reshape(-1)[:size].reshape(crop.shape)
                       for b in (scratch.rows, scratch.low, scratch.high))
    mask, in_class = scratch.mask.reshape(-1)[:size], scratch.in_class.reshape(-1)[:size]
    window(crop, np.minimum, rows, low)
    window(crop, np.maximum, rows, high)
    flat_rows = rows.reshape(-1)
    np.subtract(crop.reshape(-1), np.uint8(1), out=flat_rows)  # 0 wraps to 255
    np.less(flat_rows, np.uint8(num_classes - 1), out=in_class)  # ids 1..K-1
    np.not_equal(low.reshape(-1), high.reshape(-1), out=mask)
    mask &= in_class
    index = np.flatnonzero(mask)
    ids = crop.reshape(-1)[index]
    to_binary = (low.reshape(-1)[index] == 0) | (high.reshape(-1)[index] == SENTINEL)
    if crop.shape[1] != width:
        y, x = np.divmod(index, crop.shape[1])
        index = (y + top) * width + x + left
    elif top:
        index += top * width
    return index, ids, to_binary


@lru_cache(maxsize=16)
def _disk_rings(theta: int, padded_width: int, skip_chebyshev: int = -1) -> tuple[np.ndarray, ...]:
    """Flat offsets of the disk of radius theta, nearest first, in groups of about 24.

    Offsets with Chebyshev distance <= ``skip_chebyshev`` are left out (already settled).
    """
    dy, dx = np.mgrid[-theta:theta + 1, -theta:theta + 1]
    dist2 = (dy * dy + dx * dx).ravel()
    keep = (dist2 <= theta * theta) & (np.maximum(abs(dy), abs(dx)).ravel() > skip_chebyshev)
    order = np.argsort(dist2[keep], kind="stable")
    flat = (dy * padded_width + dx).ravel()[keep][order].astype(np.intp)
    head = [flat[:1]] if skip_chebyshev < 0 else []
    rest = flat[len(head):]
    groups = min(max(1, -(-rest.size // 24)), 6)  # few Python-level steps even for a wide disk
    return tuple(head + list(np.array_split(rest, groups))) if rest.size else tuple(head)


class BitPlane:
    """Tolerance matching for one image shape and theta, on a reusable zeroed padded bit plane.

    Every class owns one bit (the binary task one more); a point matches when a point of the other
    set with a common bit lies within Euclidean distance theta.
    """

    def __init__(self, height: int, width: int, theta: int, dtype: type) -> None:
        self.height, self.width, self.theta = height, width, theta
        self.padded_width = width + 2 * theta
        self.plane = np.zeros((height + 2 * theta) * self.padded_width, dtype=dtype)
        # Sure cells: the 3x3 block of cells around a point has diameter (2*size - 1) * sqrt(2) <= theta,
        # so a point of the other set anywhere in it matches, and one within Chebyshev distance
        # `size` is always in it.
        self.sure_cell = int((theta / math.sqrt(2) + 1) // 2)
        self.rings = _disk_rings(theta, self.padded_width)
        self.outer_rings = _disk_rings(theta, self.padded_width, self.sure_cell)

    def padded(self, index: np.ndarray) -> np.ndarray:
        """Flat image indices -> flat indices in the padded plane."""
        theta = self.theta
        return index + (index // self.width) * (2 * theta) + theta * self.padded_width + theta

    def match(self, a: np.ndarray, a_bits: np.ndarray, b: np.ndarray, b_bits: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """Unmatched bits of every point of set a (against b) and of set b (against a)."""
        use_grid = self.sure_cell > 0 and a.size + b.size > 128
        a_cells = (self._cells(a, self.sure_cell), self._cells(a, self.theta)) if use_grid else None
        b_cells = (self._cells(b, self.sure_cell), self._cells(b, self.theta)) if use_grid else None
        return (self._unmatched(a, a_bits, a_cells, b, b_bits, b_cells),
                self._unmatched(b, b_bits, b_cells, a, a_bits, a_cells))

    def _grid_shape(self, size: int) -> tuple[int, int]:
        return -(-(self.plane.size // self.padded_width) // size), -(-self.padded_width // size)

    def _cells(self, padded_index: np.ndarray, size: int) -> np.ndarray:
        """Flat cell index of each padded-plane position in a grid of size x size cells."""
        y, x = np.divmod(padded_index, self.padded_width)
        y //= size
        y *= self._grid_shape(size)[1]
        x //= size
        y += x
        return y

    def _block_or(self, cells: np.ndarray, bits: np.ndarray, size: int) -> np.ndarray:
        """Per cell of a size x size grid, the OR of the bits in it and its 8 neighbouring cells."""
        grid = np.zeros(self._grid_shape(size), self.plane.dtype)
        flat = grid.ravel()
        flat[cells] = bits  # plain scatter, then OR in the few points a same-cell write overwrote
        lost = flat[cells] != bits
        if lost.any():
            np.bitwise_or.at(flat, cells[lost], bits[lost])
        return window(grid, np.bitwise_or).ravel()

    def _unmatched(self, src: np.ndarray, src_bits: np.ndarray, src_cells: tuple | None,
                   dst: np.ndarray, dst_bits: np.ndarray, dst_cells: tuple | None) -> np.ndarray:
        """Bits of each source point with no destination point of the same bit within theta.

        Bits absent from the destination are settled at once. With cells, points whose 3x3 block
        of sure cells holds their bits are matched, points whose 3x3 block of theta-sized cells
        lacks them cannot match, and the rest visit only the disk offsets beyond Chebyshev
        distance ``sure_cell`` (nearer ones lie in the sure block), nearest first, until all their
        bits are matched.
        """
        left = src_bits.copy()
        if not dst.size or not src.size:
            return left
        need = src_bits & np.bitwise_or.reduce(dst_bits)
        rings = self.rings
        if src_cells is not None:
            sure = need & self._block_or(dst_cells[0], dst_bits, self.sure_cell)[src_cells[0]]
            left &= ~sure
            need &= ~sure
            need &= self._block_or(dst_cells[1], dst_bits, self.theta)[src_cells[1]]
            rings = self.outer_rings
        todo = np.flatnonzero(need)
        if todo.size == 0:
            return left
        plane = self.plane
        plane[dst] = dst_bits
        pos, need = src[todo], need[todo]
        try:
            for ring in rings:
                if ring.size == 1:
                    got = plane[pos + ring[0]]
                else:
                    got = np.bitwise_or.reduce(plane[pos[:, None] + ring], axis=1)
                got &= need
                left[todo] &= ~got
                need &= ~got
                keep = need != 0
                if not keep.all():
                    todo, pos, need = todo[keep], pos[keep], need[keep]
                    if todo.size == 0:
                        break
        finally:
            plane[dst] = 0
        return left
