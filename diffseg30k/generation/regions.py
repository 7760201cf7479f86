"""Stage 1: candidate edit regions.

Paper profile (:class:`GroundedSAMProposer`): Qwen2.5-VL lists the objects (prompted to favour people
and large objects) -> Grounding DINO boxes -> SAM masks. Mini profile (:class:`ShapeProposer`):
superpixels and simple shapes. Both feed the same :func:`deduplicate` (IoU > 0.7) and
:func:`choose_regions` (1-3 masks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

IOU_THRESHOLD = 0.7
MIN_AREA, MAX_AREA = 0.01, 0.6
MINI_OBJECTS = ("person", "dog", "car", "chair", "tree", "bottle", "cup", "bench", "bird", "umbrella",
                "bag", "sign", "lamp", "plate of food", "bicycle")


@dataclass
class Region:
    """One candidate: a boolean mask, the object's name and the detector's confidence."""

    mask: np.ndarray
    label: str
    score: float = 1.0

    @property
    def area(self) -> float:
        return float(self.mask.mean())


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def deduplicate(regions: list[Region], iou_threshold: float = IOU_THRESHOLD) -> list[Region]:
    """Drop every mask overlapping a better one (higher score, then larger) with IoU > threshold."""
    kept: list[Region] = []
    for region in sorted(regions, key=lambda r: (-r.score, -r.area)):
        if all(mask_iou(region.mask, other.mask) <= iou_threshold for other in kept):
            kept.append(region)
    return kept


def choose_regions(regions: list[Region], count: int, rng: np.random.Generator,
                   min_area: float = MIN_AREA, max_area: float = MAX_AREA) -> list[Region]:
    """Pick up to ``count`` (1-3) usable regions at random, in turn order."""
    usable = [r for r in deduplicate(regions) if min_area <= r.area <= max_area]
    if not usable:
        return []
    picks = rng.choice(len(usable), size=min(count, len(usable)), replace=False)
    return [usable[int(i)] for i in picks]


# ---------------------------------------------------------------------------------------- mini
class ShapeProposer:
    """Mini profile: SLIC superpixel groups plus ellipses and rectangles, named from a fixed list."""

    def __init__(self, num_shapes: int = 4, num_segments: int = 12) -> None:
        self.num_shapes = num_shapes
        self.num_segments = num_segments

    def propose(self, image: Image.Image, rng: np.random.Generator) -> list[Region]:
        from skimage.segmentation import slic

        pixels = np.asarray(image.convert("RGB"))
        height, width = pixels.shape[:2]
        names = lambda: MINI_OBJECTS[int(rng.integers(len(MINI_OBJECTS)))]  # noqa: E731
        regions = []
        segments = slic(pixels, n_segments=self.num_segments, compactness=10, start_label=0)
        for segment in np.unique(segments)[: self.num_segments]:
            regions.append(Region(segments == segment, names(), float(rng.uniform(0.3, 0.9))))
        yy, xx = np.mgrid[0:height, 0:width]
        for i in range(self.num_shapes):
            cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
            ry, rx = rng.uniform(0.1, 0.3) * height, rng.uniform(0.1, 0.3) * width
            if i % 2:
                mask = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
            else:
                mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
            regions.append(Region(mask, names(), float(rng.uniform(0.3, 0.9))))
        return regions


# ---------------------------------------------------------------------------------------- paper
LIST_PROMPT = ("List the distinct objects in this image that could be edited. Give priority to people and "
               "to large objects; include every person you see. Answer only with a comma-separated list of "
               "at most {limit} short object names, largest first (for example: person, dog, car).")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s*")
_ARTICLE = re.compile(r"^(?:a|an|the|some|two|three|several)\s+", re.IGNORECASE)


def parse_object_list(answer: str, limit: int = 8) -> list[str]:
    """Object names from a VLM answer: comma/semicolon/newline/'and'-separated, numbered or bulleted,
    possibly with a lead-in ("Objects: ...") or a JSON list; lower-cased, deduplicated, at most ``limit``."""
    text = answer.strip()
    if ":" in text.splitlines()[0] if text else False:
        head, _, rest = text.partition(":")
        text = rest if len(head.split()) <= 6 else text
    names: list[str] = []
    for line in text.splitlines():
        for part in re.split(r"[,;]|\band\b", _BULLET.sub("", line)):
            part = re.sub(r"\(.*?\)", " ", part)
            name = _ARTICLE.sub("", part.strip(" \t\"'[]{}()`*.").lower()).strip()
            if name and len(name.split()) <= 4 and not any(c.isdigit() for c in name) and name not in names:
                names.append(name)
    return names[:limit]


def _match_name(label: str, names: list[str]) -> str:
    """Map Grounding DINO's phrase for a box back to one of the queried object names."""
    label = label.lower()
    return next((n for n in names if n in label), next((n for n in names if label and label in n), label))


class GroundedSAMProposer:
    """Paper profile: Qwen2.5-VL object list -> Grounding DINO boxes -> SAM masks."""

    def __init__(self, vlm: Any, detector: Any, detector_processor: Any, segmenter: Any,
                 segmenter_processor: Any, box_threshold: float = 0.3, text_threshold: float = 0.25,
                 max_objects: int = 8) -> None:
        self.vlm, self.detector, self.detector_processor = vlm, detector, detector_processor
        self.segmenter, self.segmenter_processor = segmenter, segmenter_processor
        self.box_threshold, self.text_threshold, self.max_objects = box_threshold, text_threshold, max_objects
        self.last_answer = ""

    @classmethod
    def from_pretrained(cls, vlm: Any, detector: str, segmenter: str, device: str = "cpu",
                        detector_revision: str | None = None, segmenter_revision: str | None = None,
                        **kwargs: Any) -> GroundedSAMProposer:
        from transformers import (
            AutoModelForZeroShotObjectDetection,
            AutoTokenizer,
            GroundingDinoImageProcessorPil,
            GroundingDinoProcessor,
            SamImageProcessorPil,
            SamModel,
            SamProcessor,
        )

        revision = detector_revision
        dino = AutoModelForZeroShotObjectDetection.from_pretrained(detector, revision=revision,
                                                                   use_safetensors=True).to(device).eval()
        dino_processor = GroundingDinoProcessor(
            image_processor=GroundingDinoImageProcessorPil.from_pretrained(detector, revision=revision),
            tokenizer=AutoTokenizer.from_pretrained(detector, revision=revision))
        revision = segmenter_revision
        sam = SamModel.from_pretrained(segmenter, revision=revision, use_safetensors=True).to(device).eval()
        sam_processor = SamProcessor(SamImageProcessorPil.from_pretrained(segmenter, revision=revision))
        return cls(vlm, dino, dino_processor, sam, sam_processor, **kwargs)

    def list_objects(self, image: Image.Image) -> list[str]:
        messages = [{"role": "user", "content": [
            {"type": "image", "image": image},
            {"type": "text", "text": LIST_PROMPT.format(limit=self.max_objects)}]}]
        self.last_answer = self.vlm.chat(messages, max_new_tokens=64)
        return parse_object_list(self.last_answer, self.max_objects)

    def propose(self, image: Image.Image, rng: np.random.Generator | None = None) -> list[Region]:
        import torch

        image = image.convert("RGB")
        names = self.list_objects(image)
        if not names:
            return []
        inputs = self.detector_processor(images=image, text=". ".join(names) + ".", return_tensors="pt",
                                         truncation=True, max_length=self.detector.config.max_text_len)
        with torch.inference_mode():
            outputs = self.detector(**inputs.to(self.detector.device))
        detections = self.detector_processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=self.box_threshold, text_threshold=self.text_threshold,
            target_sizes=[image.size[::-1]])[0]
        if len(detections["boxes"]) == 0:
            return []
        boxes = detections["boxes"].float().cpu()
        sam_inputs = self.segmenter_processor(images=image, input_boxes=[boxes.tolist()], return_tensors="pt")
        with torch.inference_mode():
            predicted = self.segmenter(**sam_inputs.to(self.segmenter.device), multimask_output=False)
        masks = self.segmenter_processor.image_processor.post_process_masks(
            predicted.pred_masks.cpu(), sam_inputs["original_sizes"].cpu(),
            sam_inputs["reshaped_input_sizes"].cpu())[0][:, 0].numpy().astype(bool)
        labels = detections["text_labels"] if "text_labels" in detections else detections["labels"]
        return [Region(mask, _match_name(str(label), names), float(score))
                for mask, label, score in zip(masks, labels, detections["scores"].tolist()) if mask.any()]
