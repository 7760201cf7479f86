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


class StatisticsQualityScorer:
    """Mini profile: 5 minus penalties for a flat, clipped or non-finite edited region."""

    def score(self, image: Image.Image, mask: np.ndarray | None = None) -> QualityResult:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
        region = pixels[np.asarray(mask, dtype=bool)] if mask is not None else pixels.reshape(-1, 3)
        if region.size == 0:
            return QualityResult(0.0, "the edited region is empty")
        score, reasons = 5.0, []
        if float(region.std()) < 2.0:
            score -= 3
            reasons.append("the edited region is a flat colour")
        clipped = float(np.mean((region <= 1) | (region >= 254)))
        if clipped > 0.5:
            score -= 2
            reasons.append(f"{clipped:.0%} of the edited pixels are clipped")
        return QualityResult(score, "; ".join(reasons) or "the edited region has natural pixel statistics")


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
