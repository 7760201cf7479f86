"""Qwen2.5-VL as the pipeline's vision-language model (object listing, edit prompts, quality).

The stock ``Qwen2_5_VLProcessor`` also builds a video processor, which needs torchvision; the
pipeline only shows images, so :class:`ImageOnlyQwenProcessor` drops the video part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image
from transformers import Qwen2_5_VLProcessor
from transformers.processing_utils import ProcessorMixin

from diffseg30k.io import open_image

#: Image-size budget of the VLM (pixels); Qwen's own default allows up to 12.8 MP.
MIN_PIXELS, MAX_PIXELS = 256 * 28 * 28, 1280 * 28 * 28


class ImageOnlyQwenProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL's processor without its video processor (so no torchvision is needed)."""

    attributes = ["image_processor", "tokenizer"]

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None,
                 **kwargs: Any) -> None:
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    @classmethod
    def load(cls, repo: str | Path, revision: str | None = None, min_pixels: int = MIN_PIXELS,
             max_pixels: int = MAX_PIXELS) -> ImageOnlyQwenProcessor:
        """Load the tokenizer, image processor and chat template of a Qwen2.5-VL repo or folder."""
        from transformers import AutoTokenizer
        from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

        tokenizer = AutoTokenizer.from_pretrained(repo, revision=revision)
        image_processor = Qwen2VLImageProcessorPil.from_pretrained(
            repo, revision=revision, min_pixels=min_pixels, max_pixels=max_pixels)
        template = getattr(tokenizer, "chat_template", None) or _processor_template(repo, revision)
        return cls(image_processor, tokenizer, chat_template=template)


def _processor_template(repo: str | Path, revision: str | None) -> str | None:
    """The chat template a Qwen repo keeps beside its processor (chat_template.jinja/.json)."""
    import json

    from huggingface_hub import hf_hub_download

    for name in ("chat_template.jinja", "chat_template.json"):
        local = Path(repo) / name
        try:
            path = local if local.exists() else Path(hf_hub_download(str(repo), name, revision=revision))
        except Exception:  # noqa: BLE001 - absent file: try the next name
            continue
        text = path.read_text(encoding="utf-8")
        return json.loads(text)["chat_template"] if name.endswith(".json") else text
    return None


class QwenVL:
    """A loaded Qwen2.5-VL with a one-call chat: messages in (images as PIL or paths), answer out."""

    def __init__(self, model: Any, processor: ImageOnlyQwenProcessor) -> None:
        self.model, self.processor = model, processor

    @classmethod
    def from_pretrained(cls, repo: str | Path, revision: str | None = None, device: str = "cpu",
                        dtype: Any = None) -> QwenVL:
        from transformers import Qwen2_5_VLForConditionalGeneration

        from diffseg30k.io import torch_dtype

        dtype = torch_dtype(dtype, device, gpu_default="bfloat16")
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(repo, revision=revision, dtype=dtype,
                                                                   use_safetensors=True)
        return cls(model.to(device).eval(), ImageOnlyQwenProcessor.load(repo, revision))

    def chat(self, messages: list[dict[str, Any]], max_new_tokens: int = 64) -> str:
        """Greedy answer to ``messages`` (deterministic)."""
        import torch

        images: list[Image.Image] = []
        for message in messages:
            for part in message["content"] if isinstance(message["content"], list) else []:
                if part.get("type") == "image":
                    image = part["image"]
                    images.append(image.convert("RGB") if isinstance(image, Image.Image)
                                  else open_image(image).convert("RGB"))
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = self.processor(text=[text], images=images or None, return_tensors="pt").to(self.model.device)
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        answer = output[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(answer, skip_special_tokens=True)[0].strip()

    def unload(self) -> None:
        self.model = None
