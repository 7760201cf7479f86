"""The fast training data path: bytes -> crop -> uint8 arrays in workers, normalisation on device.

Why it is fast: images stay encoded in the Arrow table (``decode=False``) and are decoded in
data-loader workers; crops are cut before any resize or float conversion; batches travel as uint8
(4x less than float32) and are normalised in one batched op on the training device.

Why it is exact: the order of samples is a pure function of (seed, position in the sample stream)
-- stream position ``p`` is element ``p mod N`` of the permutation of epoch ``p // N`` -- and every
sample's crop/augmentation RNG is seeded by (seed, p). Resuming at optimizer step ``s`` simply starts
the stream at ``s * batch * world * grad_accum``: no batches are replayed or skipped by hand.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from diffseg30k.data.transforms import RobustAugment, apply_crop, plan_crop
from diffseg30k.io import IMAGE_SUFFIXES, ImageError, image_files, open_image
from diffseg30k.labels import IGNORE_INDEX, to_binary


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted); a clear error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder of images")
    files = image_files(folder)
    if not files:
        raise FileNotFoundError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def undecoded(dataset, column: str):
    """``dataset`` with ``column`` left as undecoded bytes/paths (decoded later, size-checked)."""
    from datasets import Image as ImageFeature

    feature = dataset.features.get(column)
    if isinstance(feature, ImageFeature) and feature.decode:
        return dataset.cast_column(column, ImageFeature(decode=False))
    return dataset


def decode_image(value, name: str, load: bool = True):
    """A PIL image from an undecoded ``datasets`` Image value, a PIL image, a path or an array
    (``load=False``: header read and size-checked, pixels not decoded yet)."""
    from PIL import Image

    if isinstance(value, dict):
        source = value["bytes"] if value.get("bytes") is not None else value["path"]
        return open_image(source, name=name, load=load)
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, str | os.PathLike):
        return open_image(value, name=name, load=load)
    return Image.fromarray(np.asarray(value, np.uint8))


def decode_rows(image, bottom: int, name: str):
    """Decode only rows ``0 .. bottom`` of a lazily opened image when it is a plain PNG.

    PNG stores rows top to bottom, so a crop never needs the rows below it: on 1024-pixel images
    with small crops this halves the decoding time, the main cost of a training sample. Interlaced
    or animated PNGs and other formats are decoded whole.
    """
    if (bottom < image.height and image.format == "PNG" and not image.info.get("interlace")
            and getattr(image, "n_frames", 1) == 1 and len(image.tile) == 1):
        tile = image.tile[0]
        extents = (0, 0, image.width, bottom)
        image.tile = [tile._replace(extents=extents) if hasattr(tile, "_replace")
                      else (tile[0], extents, *tile[2:])]
        image._size = (image.width, bottom)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{name}: truncated or corrupt image data ({err})") from err
    return image


class SampleError(ValueError):
    """A training sample that cannot be used; names its row id and shard. Raised in a data-loader worker,
    it reaches the training process as one line (not the worker's traceback)."""

    def __init__(self, message: str):
        marker = f"{type(self).__name__}: "
        if message.startswith("Caught ") and marker in message:  # re-raised by torch's ExceptionWrapper
            message = message.rsplit(marker, 1)[1].strip()
        super().__init__(message)


def locate_row(shards: list[Path], sample_id: str) -> str:
    """``row R of shard FILE`` holding ``sample_id`` (read from the shards' id columns), else ''."""
    import pyarrow.parquet as pq

    for shard in shards:
        try:
            ids = pq.read_table(shard, columns=["id"]).column("id").to_pylist()
        except Exception:  # noqa: BLE001 - an unreadable shard: keep looking in the others
            continue
        if sample_id in ids:
            return f"row {ids.index(sample_id)} of shard {shard}"
    return ""


class CropDataset(torch.utils.data.Dataset):
    """Training samples as uint8 crops; keys are ``(index, stream_position)`` pairs.

    Indices below ``len(table)`` come from the ``datasets`` table (``image``, ``mask``), the rest from
    ``extra_real`` image files with all-background label maps.
    """

    def __init__(self, table, crop_size: int, task: str, num_labels: int, seed: int,
                 augment: RobustAugment | None = None, extra_real: list[Path] | None = None,
                 shards: list[Path] | None = None):
        self.table = undecoded(undecoded(table, "image"), "mask").select_columns(
            [c for c in ("id", "image", "mask") if c in table.column_names])
        self.crop_size, self.task, self.num_labels = crop_size, task, num_labels
        self.seed, self.augment = seed, augment
        self.extra_real = list(extra_real or [])
        self.shards = list(shards or [])  # the parquet files of the table, to name a bad row's shard

    def __len__(self) -> int:
        return len(self.table) + len(self.extra_real)

    def _open(self, index: int):
        """(name, image, mask), image and mask opened lazily (headers checked, pixels not decoded)."""
        from PIL import Image

        if index >= len(self.table):
            path = self.extra_real[index - len(self.table)]
            image = open_image(path, load=False)
            return str(path), image, Image.new("L", image.size, 0)
        row = self.table[index]
        name = str(row.get("id", index))
        image = decode_image(row["image"], f"sample {name} image", load=False)
        mask = decode_image(row["mask"], f"sample {name} mask", load=False)
        if mask.format not in (None, "PNG"):
            raise ValueError(f"sample {name}: mask is {mask.format} data; label maps must be lossless PNG")
        if mask.mode not in ("L", "P"):  # P: palette indices are the label ids
            raise ValueError(f"sample {name}: mask must be an L or P label map, got mode {mask.mode!r}")
        if image.size != mask.size:
            raise ValueError(f"sample {name}: image size {image.size} differs from mask size {mask.size}")
        return name, image, mask

    def __getitem__(self, key: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        try:
            return self._sample(*key)
        except (ImageError, ValueError, OSError) as err:
            index = key[0]
            if index >= len(self.table):
                raise SampleError(f"{self.extra_real[index - len(self.table)]}: {err}") from None
            sample_id = str(self.table[index].get("id", index))
            where = locate_row(self.shards, sample_id) or f"row {index} of the training table"
            raise SampleError(f"training sample id {sample_id} ({where}): {err}") from None

    def _sample(self, index: int, position: int) -> tuple[np.ndarray, np.ndarray]:
        name, image, mask = self._open(index)
        rng = np.random.default_rng([self.seed, position])
        plan = plan_crop(image.width, image.height, self.crop_size, rng, self.augment)
        image = decode_rows(image, plan.box[3], f"sample {name} image")
        mask = decode_rows(mask, plan.box[3], f"sample {name} mask")
        pixels, labels = apply_crop(image, mask, plan, self.crop_size, rng, self.augment)
        if self.task == "binary":
            labels = to_binary(labels)
        else:
            valid = (labels < self.num_labels) | (labels == IGNORE_INDEX)
            if not valid.all():
                raise ValueError(f"sample {name}: label {int(labels[~valid].max())} outside 0.."
                                 f"{self.num_labels - 1} (and 255)")
        return pixels, labels


def check_crop_size(dataset: CropDataset, crop_size: int, probe: int = 256) -> None:
    """Refuse a crop larger than every image (it would train on padding): the headers of up to
    ``probe`` images spread over the set are read (no pixels decoded)."""
    count = len(dataset)
    if count == 0:
        return
    largest = (0, 0)
    for index in sorted({int(i) for i in np.linspace(0, count - 1, min(count, probe))}):
        _, image, _ = dataset._open(index)
        largest = max(largest, image.size, key=max)
        if max(image.size) >= crop_size:
            return
    raise ValueError(f"--crop-size {crop_size} is larger than every training image (the largest of "
                     f"{min(count, probe)} looked at is {largest[0]}x{largest[1]}); use a smaller crop")


class StreamBatchSampler(Sampler):
    """Batches of ``(index, position)`` for one process, starting at micro-batch ``start``."""

    def __init__(self, num_samples: int, batch_size: int, seed: int, start: int, stop: int,
                 rank: int = 0, world: int = 1):
        if num_samples < 1:
            raise ValueError("the training set is empty")
        self.n, self.batch, self.seed = num_samples, batch_size, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self._epoch, self._perm = -1, np.arange(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = np.random.default_rng([self.seed, epoch, 7]).permutation(self.n)
        return self._perm

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for micro in range(self.start, self.stop):
            first = (micro * self.world + self.rank) * self.batch
            yield [(int(self._permutation(p // self.n)[p % self.n]), p)
                   for p in range(first, first + self.batch)]


def collate_uint8(samples: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack crops into uint8 (B, H, W, 3) pixels and uint8 (B, H, W) labels."""
    pixels = torch.from_numpy(np.stack([s[0] for s in samples]))
    labels = torch.from_numpy(np.stack([s[1] for s in samples]))
    return pixels, labels


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def make_loader(dataset: CropDataset, batch_size: int, seed: int, start: int, stop: int, rank: int,
                world: int, num_workers: int) -> DataLoader:
    """The training loader from micro-batch ``start`` (inclusive) to ``stop`` (exclusive)."""
    sampler = StreamBatchSampler(len(dataset), batch_size, seed, start, stop, rank, world)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_uint8, num_workers=num_workers,
                      worker_init_fn=_worker_init if num_workers else None,
                      persistent_workers=False, prefetch_factor=4 if num_workers else None,
                      pin_memory=torch.cuda.is_available(),
                      # Its own generator: iterating must not draw from the global RNG (exact resume).
                      generator=torch.Generator().manual_seed(seed))


_decode, _undecoded = decode_image, undecoded  # the former private names
