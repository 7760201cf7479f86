"""Inference maths shared by training-time evaluation and :class:`diffseg30k.detector.Detector`.

Policy (documented in the README): an image is processed at its native resolution -- resizing
destroys the generator traces the detectors rely on (the paper's Tab. 3). Images whose longer side
is at most ``tile_size`` are padded at the bottom/right to a multiple of 32 and run in one pass.
Larger images are covered by overlapping ``tile_size`` windows (stride ``tile_size - overlap``)
whose softmax probabilities are averaged (windows batched ``tile_batch`` at a time). Logits are
upsampled bilinearly to the input size.

Models that also output TruFor's ``confidence`` (reliability logits, (B, 1, h, w)) and ``integrity``
(logit of "edited", (B,)) get them back the same way, for every family: reliability = sigmoid of the
upsampled confidence (window-averaged when tiled), integrity = its sigmoid (the largest over windows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple, TypeVar

import torch
import torch.nn.functional as F

T = TypeVar("T")

PAD_MULTIPLE = 32
DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 256


def equal_size_batches(items: Iterable[T], batch_size: int, shape: Callable[[T], Any]) -> Iterator[list[T]]:
    """Consecutive ``items`` of one ``shape``, at most ``batch_size`` per batch (streamed): how
    :class:`~diffseg30k.detector.Detector` and training-time evaluation batch native-size images."""
    batch: list[T] = []
    for item in items:
        if batch and (shape(item) != shape(batch[0]) or len(batch) == batch_size):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def normalize_batch(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> normalised float (B, 3, H, W); ``mean``/``std`` shaped (1, 3, 1, 1)."""
    pixels = images.permute(0, 3, 1, 2).to(dtype).div_(255.0)
    return pixels.sub_(mean.to(dtype)).div_(std.to(dtype))


def preprocessing_tensors(config, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """The (1, 3, 1, 1) mean and std of a detector config on ``device``."""
    mean = torch.tensor(config.image_mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std = torch.tensor(config.image_std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    return mean, std


class PaddedOutputs(NamedTuple):
    """One forward pass at the input size: logits (B, C, H, W) and, when the model gives them, the
    confidence logits (B, H, W) and the integrity logit (B,)."""

    logits: torch.Tensor
    confidence: torch.Tensor | None = None
    integrity: torch.Tensor | None = None


class Predictions(NamedTuple):
    """What :func:`predict_outputs` returns: probabilities (B, C, H, W), reliability (B, H, W) in
    [0, 1] and integrity (B,) probabilities (None for models without them)."""

    probabilities: torch.Tensor
    reliability: torch.Tensor | None = None
    integrity: torch.Tensor | None = None


def _upsampled(maps: torch.Tensor, size: tuple[int, int], height: int, width: int) -> torch.Tensor:
    maps = F.interpolate(maps.float(), size=size, mode="bilinear", align_corners=False)
    return maps[..., :height, :width]


def _forward_padded(model: torch.nn.Module, pixels: torch.Tensor) -> PaddedOutputs:
    """The model's outputs at the input size for a normalised (B, 3, H, W) batch of any H, W."""
    height, width = pixels.shape[-2:]
    pad_h, pad_w = (-height) % PAD_MULTIPLE, (-width) % PAD_MULTIPLE
    if pad_h or pad_w:
        pixels = F.pad(pixels, (0, pad_w, 0, pad_h))
    output = model(pixel_values=pixels)
    confidence, integrity = getattr(output, "confidence", None), getattr(output, "integrity", None)
    if confidence is not None:
        confidence = _upsampled(confidence, pixels.shape[-2:], height, width)[:, 0]
    return PaddedOutputs(_upsampled(output.logits, pixels.shape[-2:], height, width), confidence,
                         None if integrity is None else integrity.float().reshape(-1))


def _starts(length: int, tile: int, stride: int) -> list[int]:
    starts = list(range(0, max(length - tile, 0) + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def tile_windows(height: int, width: int, tile_size: int = DEFAULT_TILE,
                 overlap: int = DEFAULT_OVERLAP) -> list[tuple[int, int]]:
    """(top, left) of the windows covering an image larger than ``tile_size``; [] when one pass does."""
    if max(height, width) <= tile_size:
        return []
    stride = max(1, tile_size - overlap)
    return [(top, left) for top in _starts(height, tile_size, stride)
            for left in _starts(width, tile_size, stride)]


@torch.inference_mode()
def predict_probabilities(model: torch.nn.Module, pixels: torch.Tensor, tile_size: int = DEFAULT_TILE,
                          overlap: int = DEFAULT_OVERLAP, tile_batch: int = 1,
                          progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Softmax probabilities (B, C, H, W) for a normalised batch (:func:`predict_outputs`)."""
    return predict_outputs(model, pixels, tile_size, overlap, tile_batch, progress).probabilities


def _one_pass(outputs: PaddedOutputs) -> Predictions:
    reliability = None if outputs.confidence is None else torch.sigmoid(outputs.confidence)
    integrity = None if outputs.integrity is None else torch.sigmoid(outputs.integrity)
    return Predictions(outputs.logits.softmax(dim=1), reliability, integrity)


@torch.inference_mode()
def predict_outputs(model: torch.nn.Module, pixels: torch.Tensor, tile_size: int = DEFAULT_TILE,
                    overlap: int = DEFAULT_OVERLAP, tile_batch: int = 1,
                    progress: Callable[[int, int], None] | None = None) -> Predictions:
    """Probabilities, reliability and integrity (:class:`Predictions`) following the module policy.

    Windows go through the model ``tile_batch`` at a time (all windows share one shape), so the
    activation memory is that of a tile batch whatever the image size; ``progress(done, total)`` is
    called after each batch of windows."""
    height, width = pixels.shape[-2:]
    windows = tile_windows(height, width, tile_size, overlap)
    if not windows:
        return _one_pass(_forward_padded(model, pixels))
    images = pixels.shape[0]
    per_call = max(1, tile_batch // images)
    sums: dict[str, torch.Tensor] = {}  # window sums of probabilities / reliability, running max of integrity
    counts = torch.zeros((1, 1, height, width), device=pixels.device)
    for first in range(0, len(windows), per_call):
        group = windows[first:first + per_call]
        batch = torch.cat([pixels[..., top:top + tile_size, left:left + tile_size] for top, left in group])
        part = _one_pass(_forward_padded(model, batch))
        for k, (top, left) in enumerate(group):
            mine = slice(k * images, (k + 1) * images)
            _add_window(sums, part, mine, (top, left, tile_size), (height, width))
            counts[..., top:top + tile_size, left:left + tile_size] += 1
        if progress is not None:
            progress(first + len(group), len(windows))
    reliability = sums.get("reliability")
    return Predictions(sums["probabilities"].div_(counts),
                       None if reliability is None else reliability.div_(counts[0]), sums.get("integrity"))


def _add_window(sums: dict[str, torch.Tensor], part: Predictions, mine: slice, window: tuple[int, int, int],
                size: tuple[int, int]) -> None:
    """Add the window ``mine`` of ``part`` (at ``window`` = top, left, side) into the image-size ``sums``."""
    top, left, side = window
    rows, cols = slice(top, top + side), slice(left, left + side)
    for name in ("probabilities", "reliability"):
        values = getattr(part, name)
        if values is not None:
            if name not in sums:
                sums[name] = values.new_zeros((mine.stop - mine.start, *values.shape[1:-2], *size))
            sums[name][..., rows, cols] += values[mine]
    if part.integrity is not None:
        integrity = part.integrity[mine]
        sums["integrity"] = torch.maximum(sums["integrity"], integrity) if "integrity" in sums else integrity


@torch.inference_mode()
def predict_label_maps(model: torch.nn.Module, pixels: torch.Tensor, tile_size: int = DEFAULT_TILE,
                       overlap: int = DEFAULT_OVERLAP, tile_batch: int = 1) -> torch.Tensor:
    """Argmax label maps (B, H, W) as uint8; skips the softmax when one pass covers the image."""
    if max(pixels.shape[-2:]) <= tile_size:
        return _forward_padded(model, pixels).logits.argmax(dim=1).to(torch.uint8)
    return predict_probabilities(model, pixels, tile_size, overlap, tile_batch).argmax(dim=1).to(torch.uint8)


@torch.inference_mode()
def predict_label_maps_and_edited(model: torch.nn.Module, pixels: torch.Tensor, tile_size: int = DEFAULT_TILE,
                                  overlap: int = DEFAULT_OVERLAP, tile_batch: int = 1
                                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax label maps (B, H, W) uint8 and edited probabilities 1 - P(background) (B, H, W) float32.

    One pass: sigmoid(logsumexp(logits[1:]) - logits[0]), which equals 1 - P(background) without
    the cancellation of ``1 - softmax[0]`` for confident pixels; tiled: the averaged probabilities'
    non-background sum.
    """
    if max(pixels.shape[-2:]) <= tile_size:
        logits = _forward_padded(model, pixels).logits
        edited = torch.sigmoid(torch.logsumexp(logits[:, 1:], dim=1) - logits[:, 0])
        return logits.argmax(dim=1).to(torch.uint8), edited.float()
    probabilities = predict_probabilities(model, pixels, tile_size, overlap, tile_batch)
    edited = probabilities[:, 1:].sum(dim=1).clamp_(0.0, 1.0)
    return probabilities.argmax(dim=1).to(torch.uint8), edited.float()
