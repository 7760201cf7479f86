"""Stage 2 edit prompts: attribute change, addition (removal then addition in the same region, as
in SEED-Data-Edit) or removal. The paper profile asks Qwen2.5-VL; the mini profile fills templates.
Answers are parsed robustly: JSON (fenced or not), ``key: value`` lines or a bare sentence.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

EDIT_TYPES = ("attribute", "addition", "removal")
#: What a removal paints: the background that would be behind the object.
DEFAULT_REMOVAL_PROMPT = "empty background, seamless continuation of the surrounding scene"

INSTRUCTIONS = {
    "attribute": "change an attribute of the {object} (its colour, material, texture, style or state) "
                 "while keeping it the same kind of object",
    "addition": "replace the {object} by a different object that fits naturally in its place",
    "removal": "remove the {object}, describing only the background that should fill its place",
}


@dataclass(frozen=True)
class EditInstruction:
    """What one turn paints. ``removal_prompt`` is set for additions (first remove, then add)."""

    edit_type: str
    prompt: str
    object: str = ""
    removal_prompt: str | None = None
    parsed: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"edit_type": self.edit_type, "prompt": self.prompt, "object": self.object,
                "removal_prompt": self.removal_prompt}


def request_text(object_name: str, edit_type: str) -> str:
    """The question put to the VLM for one region (outlined in red in the image it sees)."""
    if edit_type not in EDIT_TYPES:
        raise ValueError(f"unknown edit type {edit_type!r}; expected one of {EDIT_TYPES}")
    task = INSTRUCTIONS[edit_type].format(object=object_name)
    return (f"The region outlined in red contains a {object_name}. Write an inpainting prompt to {task}. "
            "The prompt must describe what the region should look like after the edit, in one short "
            "English phrase, consistent with the scene's lighting and perspective. Answer only with JSON: "
            '{"edit_type": "' + edit_type + '", "prompt": "...", "new_object": "..."}')


_REFUSAL = re.compile(r"\b(sorry|i cannot|i can't|i can not|unable to|as an ai)\b", re.IGNORECASE)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_KEY_LINE = re.compile(r"^\s*[\"'*-]*\s*(edit[_ ]?type|prompt|edit prompt|inpainting prompt|new[_ ]object)"
                       r"\s*[\"'*]*\s*[:=]\s*(.+?)\s*,?\s*$", re.IGNORECASE | re.MULTILINE)


def _json_object(text: str) -> dict[str, Any] | None:
    fenced = _FENCE.search(text)
    candidates = [fenced.group(1)] if fenced else []
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start:end + 1])
    for candidate in candidates:
        for variant in (candidate, candidate.replace("'", '"')):
            try:
                value = json.loads(re.sub(r",\s*}", "}", variant))
            except ValueError:
                continue
            if isinstance(value, dict):
                return {str(k).lower().replace(" ", "_"): v for k, v in value.items()}
    return None


def _clean(value: Any) -> str:
    text = " ".join(str(value).split()).strip(" \"'`*.,;")
    return re.sub(r"^(prompt|edit prompt|inpainting prompt)\s*[:=]\s*", "", text, flags=re.IGNORECASE)


def parse_edit_answer(answer: str, edit_type: str, object_name: str = "") -> EditInstruction:
    """Turn a VLM answer into an :class:`EditInstruction`; malformed answers fall back to a template
    (``parsed=False``) so the caller can log them, never raise."""
    fields = _json_object(answer) or {}
    if not fields:
        for key, value in _KEY_LINE.findall(answer):
            key = key.lower().replace(" ", "_")
            fields.setdefault("prompt" if "prompt" in key else key, value)
    value = fields.get("prompt")
    prompt = _clean(value) if isinstance(value, str) else ""  # null or a list is no prompt
    if not prompt and not fields:  # a bare sentence: take its first non-empty line
        line = next((ln for ln in answer.splitlines() if ln.strip()), "")
        prompt = _clean(line) if not line.strip().startswith("{") else ""
    parsed = bool(prompt) and len(prompt) <= 300 and not _REFUSAL.search(prompt)
    if not parsed:
        return template_instruction(object_name or "object", edit_type, parsed=False)
    removal = DEFAULT_REMOVAL_PROMPT if edit_type == "addition" else None
    return EditInstruction(edit_type, prompt, object_name, removal, parsed=True)


# ---------------------------------------------------------------------------------- templates (mini)
ATTRIBUTES = ("red", "blue", "golden", "wooden", "striped", "glowing", "rusty", "white", "green", "marble")
NEW_OBJECTS = ("a potted plant", "a bicycle", "a teddy bear", "a vase of flowers", "a dog", "a suitcase",
               "a stack of books", "a clock", "a cake", "a traffic cone")


def template_instruction(object_name: str, edit_type: str, rng: np.random.Generator | None = None,
                         parsed: bool = True) -> EditInstruction:
    """A template edit (mini profile, and the fallback for unreadable VLM answers)."""
    rng = rng or np.random.default_rng(len(object_name))
    if edit_type == "attribute":
        prompt = f"a {ATTRIBUTES[rng.integers(len(ATTRIBUTES))]} {object_name}"
    elif edit_type == "addition":
        prompt = NEW_OBJECTS[rng.integers(len(NEW_OBJECTS))]
    elif edit_type == "removal":
        prompt = DEFAULT_REMOVAL_PROMPT
    else:
        raise ValueError(f"unknown edit type {edit_type!r}; expected one of {EDIT_TYPES}")
    removal = DEFAULT_REMOVAL_PROMPT if edit_type == "addition" else None
    return EditInstruction(edit_type, prompt, object_name, removal, parsed)


class TemplatePromptWriter:
    """Mini profile: template prompts drawn with the sample's random generator."""

    def write(self, image: Image.Image, mask: np.ndarray, object_name: str, edit_type: str,
              rng: np.random.Generator) -> EditInstruction:
        return template_instruction(object_name, edit_type, rng)


def outline(image: Image.Image, mask: np.ndarray, color: tuple[int, int, int] = (255, 0, 0)) -> Image.Image:
    """The image with the region's border drawn in ``color`` (what the VLM is shown)."""
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    width = max(1, round(min(mask.shape) / 256))
    border = ndimage.binary_dilation(mask, iterations=width) & ~ndimage.binary_erosion(mask, iterations=width)
    pixels = np.asarray(image.convert("RGB")).copy()
    pixels[border] = color
    return Image.fromarray(pixels, "RGB")


class VLMPromptWriter:
    """Paper profile: Qwen2.5-VL writes the edit prompt for the outlined region."""

    def __init__(self, vlm: Any) -> None:
        self.vlm = vlm
        self.last_answer = ""

    def write(self, image: Image.Image, mask: np.ndarray, object_name: str, edit_type: str,
              rng: np.random.Generator) -> EditInstruction:
        question = request_text(object_name, edit_type)
        messages = [{"role": "user", "content": [{"type": "image", "image": outline(image, mask)},
                                                  {"type": "text", "text": question}]}]
        self.last_answer = self.vlm.chat(messages, max_new_tokens=96)
        return parse_edit_answer(self.last_answer, edit_type, object_name)
