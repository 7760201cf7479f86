"""Quality filter of §3.2 / supplement §8: a 0-5 naturalness score; edits scoring < 3 are rejected.

The paper profile asks Qwen2.5-VL with the two chain-of-thought exemplars of Fig. 7 (the exemplar
images are the user's to supply; without them the exemplars are given as text-only turns). The
mini profile uses cheap pixel statistics of the edited region with the same answer format.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

QUESTION = ("Are there unnatural things in this image and rate it accordingly from 0 (very unnatural) to 5 "
            "(natural and high quality). Please respond with: \u201cX(score), the reason is that [brief "
            "explanation in one sentence].\u201d")
#: Fig. 7's two chain-of-thought exemplars (answers verbatim).
EXEMPLAR_ANSWERS = (
    "4, the reason is that the man\u2019s pose is slightly unnatural but overall scene appears reasonable "
    "and natural.",
    "1, the reason is that the red-haired woman\u2019s face completely mismatches the context and appears "
    "as an incomplete fragment, making the image very unnatural.",
)
THRESHOLD = 3
_SCORE = re.compile(r"(?<![\d.])([0-5](?:\.\d+)?)(?:\s*/\s*5)?(?![\d.])")
_REASON = re.compile(r"reason\s+is\s+(?:that\s+)?(.+)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class QualityResult:
    """A score (None when the answer could not be read), its reason and the verdict."""

    score: float | None
    reason: str
    threshold: float = THRESHOLD

    @property
    def accepted(self) -> bool:
        return self.score is not None and self.score >= self.threshold


def parse_quality_answer(answer: str) -> tuple[float | None, str]:
    """Read ``"X, the reason is that ..."`` (also ``Score: 4/5 ...``, ``**3** - ...``) -> (score, reason).

    The first number 0-5 standing alone is the score; an answer without one gives ``None``
    (rejected: the paper errs on the side of stricter filtering).
    """
    text = answer.strip().strip("\u201c\u201d\"'")
    match = _SCORE.search(text)
    if match is None:
        return None, f"unreadable answer: {text[:200]!r}"
    reason_match = _REASON.search(text[match.end():])
    reason = reason_match.group(1) if reason_match else text[match.end():].lstrip(" ,.:;-)*\n")
    return float(match.group(1)), reason.strip().rstrip(".") or "no reason given"


def high_frequency_maps(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel high-frequency energy (squared Laplacian) of luma and of chroma (Cb + Cr)."""
    from scipy.ndimage import laplace

    ycbcr = np.asarray(image.convert("YCbCr"), dtype=np.float32)
    luma = laplace(ycbcr[..., 0], mode="reflect") ** 2
    chroma = laplace(ycbcr[..., 1], mode="reflect") ** 2 + laplace(ycbcr[..., 2], mode="reflect") ** 2
    return luma, chroma


def energy_ratios(image: Image.Image, mask: np.ndarray, ring: int = 12,
                  chroma_floor: float = 0.1) -> tuple[float, float]:
    """(luma, chroma) high-frequency energy inside ``mask`` (its 1-px seam excluded) divided by that
    of the unmasked pixels within ``ring`` px of it (all unmasked pixels when the ring is empty).

    The chroma reference is at least ``chroma_floor`` x the surroundings' *luma* energy: grey or
    flat-coloured surroundings (chroma energy ~0) would otherwise make any colour look like noise
    (natural colour photos have chroma/luma energy ratios of ~0.05-0.35)."""
    from scipy.ndimage import binary_dilation, binary_erosion

    mask = np.asarray(mask, dtype=bool)
    inside = binary_erosion(mask, iterations=1)
    inside = inside if inside.any() else mask
    around = binary_dilation(mask, iterations=ring) & ~binary_dilation(mask, iterations=1)
    around = around if around.sum() >= 16 else ~mask
    luma, chroma = high_frequency_maps(image)
    if not around.any():
        return 1.0, 1.0
    luma_around = max(float(luma[around].mean()), 1e-3)
    chroma_around = max(float(chroma[around].mean()), chroma_floor * luma_around, 1e-3)
    return float(luma[inside].mean()) / luma_around, float(chroma[inside].mean()) / chroma_around


class StatisticsQualityScorer:
    """Mini profile: 5 minus penalties for a visibly broken edit, measured against its surroundings.

    Flat fill: luma high-frequency energy inside < ``flat_ratio`` x the surroundings' (or luma std < 2);
    noise texture: chroma high-frequency energy > ``noise_ratio`` x the surroundings'; clipping: more
    than half of the edited pixels at 0 or 255. The reason states every measured value.
    """

    def __init__(self, flat_ratio: float = 0.05, noise_ratio: float = 4.0,
                 clipped_share: float = 0.5) -> None:
        self.flat_ratio, self.noise_ratio, self.clipped_share = flat_ratio, noise_ratio, clipped_share

    def score(self, image: Image.Image, mask: np.ndarray | None = None) -> QualityResult:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
        mask = np.ones(pixels.shape[:2], bool) if mask is None else np.asarray(mask, dtype=bool)
        region = pixels[mask]
        if region.size == 0:
            return QualityResult(0.0, "the edited region is empty")
        luma_ratio, chroma_ratio = energy_ratios(image, mask) if not mask.all() else (1.0, 1.0)
        clipped = float(np.mean((region <= 1) | (region >= 254)))
        measured = (f"luma high-frequency energy {luma_ratio:.2f}x and chroma {chroma_ratio:.2f}x the "
                    f"surroundings', {clipped:.0%} of its pixels clipped")
        score, faults = 5.0, []
        if float(region.std()) < 2.0 or luma_ratio < self.flat_ratio:
            score -= 3
            faults.append("the edited region is a flat fill")
        if chroma_ratio > self.noise_ratio:
            score -= 3
            faults.append("the edited region is a noise texture")
        if clipped > self.clipped_share:
            score -= 2
            faults.append("the edited region is clipped")
        verdict = "; ".join(faults) or "the edited region matches its surroundings"
        return QualityResult(max(score, 0.0), f"{verdict} ({measured})")


class VLMQualityScorer:
    """Paper profile: Qwen2.5-VL rates the edited image 0-5 after Fig. 7's two exemplars."""

    def __init__(self, vlm: Any, exemplar_images: Sequence[str | Path | Image.Image] | None = None) -> None:
        self.vlm = vlm
        self.exemplar_images = list(exemplar_images or [])

    def messages(self, image: Image.Image) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for i, answer in enumerate(EXEMPLAR_ANSWERS):
            content: list[dict[str, Any]] = [{"type": "text", "text": QUESTION}]
            if i < len(self.exemplar_images):
                content.insert(0, {"type": "image", "image": self.exemplar_images[i]})
            messages += [{"role": "user", "content": content},
                         {"role": "assistant", "content": [{"type": "text", "text": answer}]}]
        messages.append({"role": "user", "content": [{"type": "image", "image": image},
                                                      {"type": "text", "text": QUESTION}]})
        return messages

    def score(self, image: Image.Image, mask: np.ndarray | None = None) -> QualityResult:
        answer = self.vlm.chat(self.messages(image), max_new_tokens=64)
        score, reason = parse_quality_answer(answer)
        return QualityResult(score, reason)
