"""Decoding and validation of one DiffSeg30k pair: RGB image bytes kept as they are, masks (L / P /
RGB in the label palette) turned into validated L label maps.

Every problem is a :class:`diffseg30k.data.release.ReleaseError` naming the file.
"""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from diffseg30k import io as safe_io
from diffseg30k.data.release import PairEntry, ReleaseError
from diffseg30k.io import ImageError, open_image
from diffseg30k.labels import IGNORE_INDEX, LabelSet


@dataclass
class DecodedPair:
    """A validated pair, ready to be written: image bytes (RGB) and an L label-map PNG."""

    id: str
    image_bytes: bytes
    image_path: str
    mask_png: bytes
    models: list[str]
    edited_fraction: float
    size: tuple[int, int]


class MaskDecoder:
    """Turns L / P / RGB-in-palette masks into validated uint8 label maps for one label set."""

    def __init__(self, label_set: LabelSet):
        self.label_set = label_set
        valid = np.zeros(256, bool)
        valid[list(label_set.id2label)] = True
        valid[IGNORE_INDEX] = True
        self.valid = valid
        self.valid_text = f"{_ranges(sorted(label_set.id2label))} (255 = ignore allowed)"
        colours = {**{i: c for i, c in label_set.colors.items()}, IGNORE_INDEX: (255, 255, 255)}
        keys = np.array([(r << 16) | (g << 8) | b for r, g, b in colours.values()], np.int64)
        order = np.argsort(keys)
        self.colour_keys = keys[order]
        self.colour_ids = np.array(list(colours), np.uint8)[order]
        self.palette = np.zeros((256, 3), np.uint8)
        for i, rgb in colours.items():
            self.palette[i] = rgb

    def decode(self, image: Image.Image, label: str) -> tuple[Image.Image, np.ndarray, bool]:
        """(L label map, its 256-bin histogram, whether the source bytes are an L PNG to keep as is)."""
        if image.mode == "L":
            counts = np.asarray(image.histogram(), np.int64)
            self._check_values(counts, label)
            return image, counts, image.format == "PNG"
        if image.mode == "P":
            mask = self._from_palette(image, label)
        elif image.mode == "RGB":
            mask = self._from_colours(np.asarray(image), label)
        else:
            raise ReleaseError(label, f"mask mode {image.mode} is not supported (expected an L or P label "
                               "map or RGB in the label palette)")
        return Image.fromarray(mask, "L"), np.bincount(mask.ravel(), minlength=256), False

    def _check_values(self, counts: np.ndarray, label: str) -> None:
        bad = np.flatnonzero((counts > 0) & ~self.valid)
        if bad.size:
            raise ReleaseError(label, f"mask values {bad[:10].tolist()} outside {self.valid_text} "
                               f"({int(counts[bad].sum())} pixels)")

    def _from_palette(self, image: Image.Image, label: str) -> np.ndarray:
        indices = np.asarray(image)
        counts = np.asarray(image.histogram(), np.int64)
        used = np.flatnonzero(counts)
        raw = image.getpalette() or []
        pal = np.zeros((256, 3), np.uint8)
        pal.reshape(-1)[:len(raw)] = raw[:768]
        if not np.array_equal(pal[used], self.palette[used]):
            keys = (pal[used, 0].astype(np.int64) << 16) | (pal[used, 1].astype(np.int64) << 8) | pal[used, 2]
            if np.isin(keys, self.colour_keys).all():  # the colours carry the labels (a quantised RGB mask)
                return self._from_colours(pal[indices], label)
        # The palette is the label palette, or only a display palette: the index is the label.
        self._check_values(counts, label)
        return indices

    def _from_colours(self, rgb: np.ndarray, label: str) -> np.ndarray:
        keys = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
        pos = np.clip(np.searchsorted(self.colour_keys, keys), 0, len(self.colour_keys) - 1)
        ok = self.colour_keys[pos] == keys
        if not ok.all():
            bad = np.unique(keys[~ok])
            colours = [((int(k) >> 16) & 255, (int(k) >> 8) & 255, int(k) & 255) for k in bad[:5]]
            raise ReleaseError(label, f"{int((~ok).sum())} mask pixels have colours outside the label "
                               f"palette, e.g. {colours}")
        return self.colour_ids[pos]


def _ranges(ids: list[int]) -> str:
    return f"{ids[0]}-{ids[-1]}" if ids == list(range(ids[0], ids[-1] + 1)) else str(ids)


def _png(image: Image.Image, compress_level: int = 1) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


_ZERO_MASKS: dict[tuple[int, int], bytes] = {}


def zero_mask_png(size: tuple[int, int]) -> bytes:
    """An all-background L PNG of ``size`` (cached per size)."""
    if size not in _ZERO_MASKS:
        _ZERO_MASKS[size] = _png(Image.new("L", size, 0), compress_level=9)
    return _ZERO_MASKS[size]


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VERIFY_MODES = ("fast", "full")


def check_png(data: bytes, label: str, inflate: bool = True) -> tuple[int, int, bool] | None:
    """Check a PNG's structure and compressed stream without unfiltering its pixels: (width, height,
    is 8-bit RGB).

    Checks the header size against the pixel limit, every chunk's length and CRC-32, at least one IDAT
    and a final IEND, and (``inflate``) that the IDAT zlib stream inflates, in bounded pieces, to
    exactly the bytes the header's size takes: a truncated or corrupted file fails with
    :class:`ReleaseError`. Returns None for data that is not a PNG (the caller decodes it).
    """
    if not data.startswith(_PNG_SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if width * height > safe_io.MAX_PIXELS:
        raise ReleaseError(label, f"image is {width}x{height} = {width * height} pixels, over the limit of "
                           f"{safe_io.MAX_PIXELS} (set DIFFSEG30K_MAX_PIXELS to raise it)")
    if width == 0 or height == 0:
        raise ReleaseError(label, "image has zero size")
    view, pos, idat = memoryview(data), len(_PNG_SIGNATURE), []
    while True:
        if pos + 12 > len(data):
            raise ReleaseError(label, f"truncated PNG: file ends at byte {len(data)} before the IEND chunk")
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = bytes(data[pos + 4:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise ReleaseError(label, f"truncated PNG: chunk {kind!r} at byte {pos} runs past the end of "
                               f"the file ({len(data)} bytes)")
        if zlib.crc32(view[pos + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
            raise ReleaseError(label, f"corrupt PNG: CRC mismatch in chunk {kind!r} at byte {pos}")
        if kind == b"IDAT":
            idat.append(view[pos + 8:end - 4])
        if kind == b"IEND":
            break
        pos = end
    if not idat:
        raise ReleaseError(label, "corrupt PNG: no image data (IDAT) chunk")
    if inflate:
        _check_idat_stream(idat, _raw_png_bytes(width, height, data[24], data[25], data[28]), label)
    return width, height, data[24] == 8 and data[25] == 2  # bit depth 8, colour type 2 (RGB)


_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_INFLATE_PIECE = 4 << 20  # output bytes inflated at a time: memory stays bounded on any input
try:  # ISA-L inflates about 1.6x faster than zlib (optional: the `fast` extra)
    from isal import isal_zlib as _inflate
except ImportError:  # pragma: no cover - isal not installed
    _inflate = zlib
_INFLATE_ERRORS = (zlib.error, _inflate.error)


def _raw_png_bytes(width: int, height: int, depth: int, colour: int, interlace: int) -> int:
    """Bytes of the filtered scanlines of a PNG (one filter byte per row, Adam7 passes when interlaced)."""
    bits = _CHANNELS.get(colour, 4) * depth
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        cols, rows = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if cols > 0 and rows > 0:
            total += rows * (1 + (cols * bits + 7) // 8)
    return total


def _check_idat_stream(pieces: list[memoryview], expected: int, label: str) -> None:
    """Inflate the IDAT data (discarding the output): a valid, complete zlib stream of ``expected`` bytes."""
    inflater, total = _inflate.decompressobj(), 0
    try:
        for piece in pieces:
            data: bytes | memoryview = piece
            while data and not inflater.eof:
                total += len(inflater.decompress(data, _INFLATE_PIECE))
                if total > expected:
                    raise ReleaseError(label, f"corrupt PNG: image data inflates to more than the {expected} "
                                       "bytes its size takes")
                data = inflater.unconsumed_tail
    except _INFLATE_ERRORS as err:
        raise ReleaseError(label, f"corrupt PNG: compressed image data is invalid ({err})") from err
    if not inflater.eof:
        raise ReleaseError(label, "corrupt PNG: compressed image data ends early (incomplete zlib stream)")
    if total != expected:
        raise ReleaseError(label, f"corrupt PNG: image data inflates to {total} bytes, {expected} expected "
                           "for its size")


_LOSSY_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"RIFF": "WebP", b"GIF8": "GIF"}


def check_lossless_mask(data: bytes, label: str) -> None:
    """Label maps must be PNG (lossless): the file's signature decides, not its name."""
    if data.startswith(_PNG_SIGNATURE):
        return
    kind = next((name for magic, name in _LOSSY_SIGNATURES.items() if data.startswith(magic)), "not PNG")
    raise ReleaseError(label, f"mask file is {kind} data, not PNG: label maps must be lossless PNG "
                       "(a lossy format such as JPEG changes label values at edges)")


def _image_error(label: str, err: ImageError) -> ReleaseError:
    """The ImageError as a ReleaseError, without PIL's in-memory buffer repr (``<_io.BytesIO ...>``)."""
    problem = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(err).removeprefix(f"{label}: "))
    return ReleaseError(label, problem)


def _checked_image(data: bytes, label: str, verify: str) -> tuple[bytes, str, tuple[int, int]]:
    """(RGB image bytes, file extension, size): bytes kept unless the image must become RGB."""
    fast_rgb = verify == "fast" and data[24:26] == b"\x08\x02"  # kept as is: its zlib stream is checked
    png = check_png(data, label, inflate=fast_rgb)
    if fast_rgb and png is not None and png[2]:
        return data, "png", png[:2]
    try:
        image = open_image(data, name=label)
    except ImageError as err:
        raise _image_error(label, err) from err
    if image.mode != "RGB" or image.format not in ("PNG", "JPEG", "WEBP"):
        return _png(image.convert("RGB")), "png", image.size
    return data, image.format.lower().replace("jpeg", "jpg"), image.size


def decode_pair(entry: PairEntry, decoder: MaskDecoder, verify: str = "fast") -> DecodedPair:
    """Read and validate one pair; raise :class:`ReleaseError` naming the file on any problem.

    ``verify="fast"`` checks 8-bit RGB PNG images structurally (header size, every chunk's CRC, no
    truncation, a complete zlib stream of the right length) without unfiltering their pixels;
    ``"full"`` decodes every image. Masks are always decoded, and must be PNG files.
    """
    image_bytes, mask_bytes = entry.read()
    image_bytes, extension, size = _checked_image(image_bytes, entry.image_name, verify)
    image_path = f"{entry.id}.image.{extension}"
    if not mask_bytes:  # an extra real image: all background
        return DecodedPair(entry.id, image_bytes, image_path, zero_mask_png(size), [], 0.0, size)
    check_lossless_mask(mask_bytes, entry.mask_name)
    check_png(mask_bytes, entry.mask_name, inflate=False)  # decoded whole below
    try:
        mask_image = open_image(mask_bytes, name=entry.mask_name)
    except ImageError as err:
        raise _image_error(entry.mask_name, err) from err
    if mask_image.size != size:
        raise ReleaseError(entry.mask_name, f"mask size {mask_image.size[0]}x{mask_image.size[1]} does not "
                           f"match image size {size[0]}x{size[1]} ({entry.image_name})")
    mask, counts, keep = decoder.decode(mask_image, entry.mask_name)
    if not keep:
        mask_bytes = _png(mask, compress_level=6)
    names = decoder.label_set.id2label
    models = [names[i] for i in sorted(names) if i != 0 and counts[i] > 0]
    valid_pixels = int(counts.sum() - counts[IGNORE_INDEX])
    edited = int(counts[1:IGNORE_INDEX].sum())
    fraction = edited / valid_pixels if valid_pixels else 0.0
    return DecodedPair(entry.id, image_bytes, image_path, mask_bytes, models, fraction, size)
