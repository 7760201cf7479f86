"""The contract every diffusion editor adapter fulfils.

An adapter wraps one inpainting model. It returns the model's raw output; the generation pipeline
(not the adapter) resizes it back and composites it into the image *only inside the mask*, which is
what makes the label map exact.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from diffseg30k.generation.component_spec import ComponentSpec
from diffseg30k.labels import GENERATOR_BY_NAME


@dataclass
class EditRequest:
    """One inpainting call: ``mask`` is a boolean (H, W) array, True where the editor may paint."""

    image: Image.Image
    mask: np.ndarray
    prompt: str
    seed: int
    negative_prompt: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    #: "attribute" | "addition" | "removal" (read by the mini stand-in editors; diffusion ignores it).
    edit_type: str | None = None


class Editor(ABC):
    """Base class of the editor adapters; subclasses set ``name`` to a label name."""

    name: ClassVar[str]
    #: Name of a variant recorded in metadata (e.g. ``sdxl-lora``); the label stays ``name``.
    editor_name: ClassVar[str | None] = None
    #: Square side the model works at (the pipeline resizes to it and back).
    resolution: ClassVar[int] = 1024
    #: The trained tiny component that stands in for this family in the mini profile.
    component: ClassVar[ComponentSpec]

    def __init__(self, repo_id: str | None = None, revision: str | None = None,
                 profile: str = "paper", device: str = "cpu", dtype: Any = None,
                 **options: Any) -> None:
        generator = GENERATOR_BY_NAME.get(self.name)
        self.repo_id = repo_id or (generator.editor_repo if generator else None)
        self.revision = revision or (generator.editor_revision if generator else None)
        self.profile = profile
        self.device = device
        self.dtype = dtype
        self.options = options
        self.pipeline: Any = None

    @property
    def label_id(self) -> int:
        return GENERATOR_BY_NAME[self.name].id

    @property
    def backend(self) -> str:
        """What made the pixels (recorded per edit as ``editor_backend``)."""
        weights = "tiny random weights" if self.profile == "mini" else (self.repo_id or "pretrained weights")
        return f"{type(self).__name__} ({weights})"

    @property
    def variant(self) -> str:
        """The registry name of this adapter (the label name unless it is a variant)."""
        return self.editor_name or self.name

    @abstractmethod
    def load(self) -> None:
        """Build or download the model (tiny random components when ``profile == 'mini'``)."""

    def unload(self) -> None:
        """Free the model so the next editor fits in memory."""
        self.pipeline = None

    @abstractmethod
    def inpaint(self, request: EditRequest) -> Image.Image:
        """Return the model's raw RGB output (any size; the caller resizes and composites)."""

    def text_to_image(self, prompt: str, seed: int, size: int) -> Image.Image:
        """Generate a whole image (AI bases): inpainting a grey canvas with an all-True mask."""
        canvas = Image.new("RGB", (size, size), (127, 127, 127))
        return self.inpaint(EditRequest(canvas, np.ones((size, size), dtype=bool), prompt, seed))
