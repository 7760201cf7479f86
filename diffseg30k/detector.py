"""Run a trained detector on images: ``Detector.from_pretrained(path_or_repo_id)(image)``.

Inputs: PIL images (any mode: grayscale, RGBA and palette images are converted to RGB), numpy arrays
(HxW, HxWx3, HxWx4; uint8, or float in [0, 1]), or paths; a list gives a list. Resolution policy
(:mod:`diffseg30k.models.inference`): native resolution, padded to a multiple of 32; images whose
longer side exceeds ``tile_size`` (1024) are covered by overlapping windows whose probabilities are
averaged. Nothing is resized, because resizing erases the traces the detectors learn.

Speed: a SegFormer's all-MLP decode head is folded into per-stage 1x1 convolutions
(:class:`~diffseg30k.models.segformer.FusedSegformerDecodeHead`, identical outputs) unless
``fuse=False``. ``runtime="onnx"``, ``"onnx-int8"``, ``"openvino"`` or ``"auto"`` runs that model
exported to ONNX Runtime / OpenVINO (:mod:`diffseg30k.models.runtimes`; torch if unavailable, said
once); windows of large images go through the model ``tile_batch`` at a time.

Safety: weights load from ``model.safetensors`` only (``use_safetensors=True``), Hub downloads are
restricted to ``*.json`` and ``*.safetensors`` files, and remote code is never trusted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from diffseg30k.io import ImageError, normalize_image, safetensors_names
from diffseg30k.models.inference import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    normalize_batch,
    predict_label_maps,
    predict_label_maps_and_edited,
    predict_outputs,
    preprocessing_tensors,
    tile_windows,
)

LOG = logging.getLogger(__name__)
ImageInput = Image.Image | np.ndarray | str | os.PathLike
AREA_THRESHOLD = 0.01


@dataclass
class DetectionResult:
    """A detector's answer for one image.

    ``label_map`` (uint8 HxW, input size), ``probabilities`` (float32 CxHxW, only when asked for with
    ``detector(image, return_probabilities=True)``, else None: 576 MB at 16 MP), ``generators``
    ({name: {"area": fraction of the image, "confidence": mean probability over that area}}),
    ``edited_fraction`` (share of non-background pixels) and ``is_edited`` (the 1 % rule). Models with
    TruFor's extra heads also give ``reliability`` (float32 HxW in [0, 1], input size: sigmoid of the
    confidence map, how far to trust ``label_map`` there) and ``integrity`` (probability that the image
    is edited, from the detection head); both are None for the other detectors.
    """

    label_map: np.ndarray
    probabilities: np.ndarray | None
    generators: dict[str, dict[str, float]]
    edited_fraction: float
    is_edited: bool
    task: str
    id2label: dict[int, str] = field(repr=False)
    reliability: np.ndarray | None = field(default=None, repr=False)
    integrity: float | None = None

    @property
    def edited_probability(self) -> np.ndarray:
        """Per-pixel edited probability 1 - P(background) (float32 HxW, the metric's pixel_scores); needs
        ``detector(image, return_probabilities=True)`` (``Detector.predict_edited`` computes only this)."""
        if self.probabilities is None:
            raise ValueError("this result holds no probabilities: call the detector with "
                             "return_probabilities=True, or use Detector.predict_edited")
        return np.clip(self.probabilities[1:].sum(axis=0), 0.0, 1.0).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no pixel arrays)."""
        height, width = self.label_map.shape
        summary = {"task": self.task, "width": width, "height": height,
                   "edited_fraction": round(self.edited_fraction, 6), "is_edited": self.is_edited,
                   "generators": self.generators}
        if self.integrity is not None:
            summary["integrity"] = round(self.integrity, 6)
        return summary


def to_rgb_array(image: ImageInput, name: str | None = None) -> np.ndarray:
    """Any supported input as a uint8 HxWx3 array (alpha dropped, grey replicated)."""
    if isinstance(image, str | os.PathLike | Image.Image):
        label = name or (str(image) if not isinstance(image, Image.Image) else "<image>")
        # one normalisation for every entry point (demo included): first frame, CMYK, 16-bit and
        # float scaled to 8 bits; the stored pixel grid is kept so maps align with dataset masks
        return np.asarray(normalize_image(image, name=label, exif_transpose=False).image)
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name or 'input'}: expected a PIL image, numpy array or path, "
                        f"got {type(image).__name__}")
    array = image
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ImageError(f"{name or 'array'}: shape {image.shape} is not HxW, HxWx1, HxWx3 or HxWx4")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    array = array[..., :3]
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating) or array.min() < 0 or array.max() > 1:
            raise ImageError(f"{name or 'array'}: expected uint8, or float values in [0, 1]; "
                             f"got {array.dtype}")
        array = (array * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(array)


class Detector:
    """A trained DiffSeg30k detector ready for inference (see the module docstring for the policy)."""

    def __init__(self, model, device: str | torch.device | None = None, tile_size: int = DEFAULT_TILE,
                 overlap: int | None = None, area_threshold: float = AREA_THRESHOLD,
                 batch_size: int = 4, fuse: bool = True, tile_batch: int = 1):
        from diffseg30k.models.segformer import fuse_for_inference

        if overlap is None:  # the default 256 px, at most a quarter of the window, so windows advance
            overlap = min(DEFAULT_OVERLAP, max(tile_size, 0) // 4)
        if tile_size < 1 or not 0 <= overlap < tile_size:  # else the window stride would be <= 0 (1 px)
            raise ValueError(f"need tile_size >= 1 and 0 <= overlap < tile_size, got tile_size={tile_size}, "
                             f"overlap={overlap}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        if fuse:  # same outputs, far fewer FLOPs (SegFormer's decode head folded; see models.segformer)
            self.model = fuse_for_inference(self.model)
        self.tile_size, self.overlap = tile_size, overlap
        self.area_threshold, self.batch_size, self.tile_batch = area_threshold, batch_size, max(1, tile_batch)
        self.mean, self.std = preprocessing_tensors(model.config, self.device)
        self.dtype = next(model.parameters()).dtype
        self.runtime, self.runtime_note = "torch", None
        # from_pretrained: the folder it loaded, and that folder described ("... of the training run X")
        self.checkpoint: str | None = None
        self.loaded_from: str | None = None

    def use_runtime(self, runtime: str, folder: str | os.PathLike | None = None) -> Detector:
        """Run the model on ``runtime`` (see :data:`~diffseg30k.models.runtimes.RUNTIMES`, or 'auto'),
        exported once and cached by the weights' sha256 (``folder``: the checkpoint). Falls back to
        torch with :attr:`runtime_note` saying why (logged once); returns ``self``."""
        from diffseg30k.models.runtimes import prepare_runtime

        if self.runtime != "torch":
            raise ValueError(f"this detector already runs on {self.runtime}")
        self.model, self.runtime, self.runtime_note = prepare_runtime(
            self.model, runtime, Path(folder) if folder else None, self.device)
        return self

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, revision: str | None = None,
                        device: str | torch.device | None = None, runtime: str = "torch",
                        **kwargs) -> Detector:
        """Load from a checkpoint folder, a training run folder (its ``best/``) or a Hub model id
        (safetensors only; see :mod:`diffseg30k.checkpoint`), to run on ``runtime`` (:meth:`use_runtime`).
        ``detector.checkpoint`` is the folder loaded, ``detector.loaded_from`` says so in words."""
        from diffseg30k.checkpoint import describe, resolve_checkpoint
        from diffseg30k.models.registry import load_model

        path = resolve_checkpoint(path_or_repo_id, revision=revision)
        for weights in sorted(path.glob("*.safetensors")):
            safetensors_names(weights)  # a truncated file is named, not a deserialising traceback
        detector = cls(load_model(path), device=device, **kwargs).use_runtime(runtime, path)
        detector.checkpoint, detector.loaded_from = str(path), describe(path_or_repo_id, path)
        LOG.info("loaded detector %s", detector.loaded_from)
        return detector

    @property
    def task(self) -> str:
        return getattr(self.model.config, "diffseg_task", "semantic")

    @property
    def id2label(self) -> dict[int, str]:
        return {int(k): v for k, v in self.model.config.id2label.items()}

    def _batches(self, arrays: list[np.ndarray]):
        """Indices of consecutive equal-size images, at most ``batch_size`` per batch."""
        from diffseg30k.models.inference import equal_size_batches

        return equal_size_batches(range(len(arrays)), self.batch_size, lambda index: arrays[index].shape)

    def _pixels(self, arrays: list[np.ndarray]) -> torch.Tensor:
        batch = torch.from_numpy(np.stack(arrays)).to(self.device)
        return normalize_batch(batch, self.mean, self.std, self.dtype)

    def tile_count(self, height: int, width: int) -> int:
        """Windows an image of this size is processed in (0: one pass)."""
        return len(tile_windows(height, width, self.tile_size, self.overlap))

    def _result(self, probabilities: torch.Tensor, keep_probabilities: bool = False,
                reliability: torch.Tensor | None = None, integrity: torch.Tensor | None = None
                ) -> DetectionResult:
        confidence, label_map = probabilities.max(dim=0)
        label_map = label_map.to(torch.uint8)
        total = label_map.numel()
        ids, counts = torch.unique(label_map, return_counts=True)
        generators = {}
        id2label = self.id2label
        for label, count in zip(ids.tolist(), counts.tolist()):
            if label == 0:
                continue
            mean_conf = confidence[label_map == label].mean().item()
            generators[id2label.get(label, str(label))] = {"area": round(count / total, 6),
                                                           "confidence": round(mean_conf, 6)}
        edited = float((label_map > 0).sum().item()) / total
        return DetectionResult(label_map=label_map.cpu().numpy(),
                               probabilities=probabilities.float().cpu().numpy() if keep_probabilities
                               else None, generators=generators,
                               edited_fraction=edited, is_edited=edited > self.area_threshold,
                               task=self.task, id2label=id2label,
                               reliability=None if reliability is None else reliability.float().cpu().numpy(),
                               integrity=None if integrity is None else float(integrity))

    def __call__(self, images: ImageInput | list[ImageInput],
                 progress: Callable[[int, int], None] | None = None,
                 return_probabilities: bool = False) -> DetectionResult | list[DetectionResult]:
        """Detect edits; ``progress(done, total)`` is called after each batch of windows of a large image;
        ``return_probabilities`` also copies the per-class probabilities out (``result.probabilities``)."""
        single = not isinstance(images, list | tuple)
        arrays = [to_rgb_array(image) for image in ([images] if single else images)]
        results: list[DetectionResult | None] = [None] * len(arrays)
        for batch in self._batches(arrays):
            outputs = predict_outputs(self.model, self._pixels([arrays[i] for i in batch]),
                                      self.tile_size, self.overlap, self.tile_batch, progress)
            for k, index in enumerate(batch):
                results[index] = self._result(outputs.probabilities[k], return_probabilities,
                                              *(None if o is None else o[k] for o in outputs[1:]))
        return results[0] if single else results

    def _per_image(self, images: list[ImageInput], predict) -> list[tuple[np.ndarray, ...]]:
        """``predict(model, pixels, tile_size, overlap, tile_batch)`` -> tensors (B, H, W) over equal-size
        batches, regrouped as one tuple of numpy maps per image, in input order."""
        arrays = [to_rgb_array(image) for image in images]
        out: list[tuple[np.ndarray, ...] | None] = [None] * len(arrays)
        for batch in self._batches(arrays):
            pixels = self._pixels([arrays[i] for i in batch])
            tensors = predict(self.model, pixels, self.tile_size, self.overlap, self.tile_batch)
            tensors = tensors if isinstance(tensors, tuple) else (tensors,)
            for index, *maps in zip(batch, *(t.cpu().numpy() for t in tensors)):
                out[index] = tuple(maps)
        return out

    def predict_label_maps(self, images: list[ImageInput]) -> tuple[list[np.ndarray], np.ndarray]:
        """Fast path for evaluation loops: (uint8 label maps at input size, edited-fraction scores)."""
        maps = [m for (m,) in self._per_image(images, predict_label_maps)]
        return maps, np.array([float((m > 0).mean()) for m in maps], dtype=np.float64)

    def predict_edited(self, images: list[ImageInput]
                       ) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
        """Like :meth:`predict_label_maps`, plus each image's edited probability map 1 - P(background)
        (float32 HxW in [0, 1]): what ``evaluate``/``benchmark`` pass to the metric as pixel_scores."""
        pairs = self._per_image(images, predict_label_maps_and_edited)
        maps, edited = [m for m, _ in pairs], [e for _, e in pairs]
        return maps, np.array([float((m > 0).mean()) for m in maps], dtype=np.float64), edited


def render_overlay(image: ImageInput, result: DetectionResult, alpha: float = 0.55) -> Image.Image:
    """The image with edited regions tinted and a legend strip (:func:`diffseg30k.render.render_overlay`)."""
    from diffseg30k.render import render_overlay as render

    return render(image, result, alpha)
