"""Whole-image AIGC classifiers, the baselines of the paper's Tab. 5/6, from transformers classes.

- **CNNSpot** (Wang et al. 2020): a ResNet-50 (``ResNetModel``, ImageNet weights
  ``microsoft/resnet-50``) with a one-logit linear head, fine-tuned end to end with blur + JPEG
  augmentation (:func:`cnnspot_augment`).
- **UniversalFakeDetect** (Ojha et al. 2023): frozen CLIP ViT-L/14 image features
  (``CLIPVisionModelWithProjection``, ``openai/clip-vit-large-patch14``) and a trained linear probe.

``*-tiny`` variants are small random configurations for CPU runs and tests. A classifier folder holds
``config.json`` (kind, backbone config, preprocessing) and ``model.safetensors``; nothing is unpickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from diffseg30k.data.distortions import blur, jpeg
from diffseg30k.io import atomic_dir
from diffseg30k.models.common import IMAGENET_MEAN, IMAGENET_STD
from diffseg30k.registry import Registry

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ClassifierSpec:
    """A registered classifier: its kind (``cnnspot``/``ufd``), weights, input size and report name."""

    name: str
    kind: str
    image_size: int
    repo_id: str | None = None
    description: str = ""
    display: str = ""

    @property
    def display_name(self) -> str:
        return self.display or self.kind


#: Every whole-image classifier; entries register where they are defined (a module of ``models``).
CLASSIFIERS: Registry[ClassifierSpec] = Registry("classifier", package="diffseg30k.models")
for _spec in (
    ClassifierSpec("cnnspot-r50", "cnnspot", 224, "microsoft/resnet-50",
                   "CNNSpot: ResNet-50, blur+JPEG augmentation (Wang et al. 2020)", "CNNSpot"),
    ClassifierSpec("ufd-vitl14", "ufd", 224, "openai/clip-vit-large-patch14",
                   "UniversalFakeDetect: frozen CLIP ViT-L/14 + linear probe (Ojha et al. 2023)",
                   "UniversalFakeDet"),
    ClassifierSpec("cnnspot-tiny", "cnnspot", 64, None, "tiny random ResNet for CPU runs and tests",
                   "CNNSpot"),
    ClassifierSpec("ufd-tiny", "ufd", 64, None, "tiny random CLIP vision tower for CPU runs and tests",
                   "UniversalFakeDet"),
):
    CLASSIFIERS.register(_spec)


def _tiny_backbone_config(kind: str, image_size: int) -> Any:
    from transformers import CLIPVisionConfig, ResNetConfig

    if kind == "cnnspot":
        return ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 1, 1],
                            layer_type="bottleneck")
    return CLIPVisionConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=2,
                            image_size=image_size, patch_size=16, projection_dim=32)


def _backbone_from_config(kind: str, config: Any) -> nn.Module:
    from transformers import CLIPVisionModelWithProjection, ResNetModel

    return ResNetModel(config) if kind == "cnnspot" else CLIPVisionModelWithProjection(config)


def _config_from_dict(kind: str, values: dict[str, Any]) -> Any:
    from transformers import CLIPVisionConfig, ResNetConfig

    return (ResNetConfig if kind == "cnnspot" else CLIPVisionConfig).from_dict(values)


class WholeImageClassifier(nn.Module):
    """Backbone features -> one logit ("edited"). UFD keeps its backbone frozen (a linear probe)."""

    def __init__(self, kind: str, backbone: nn.Module, image_size: int, name: str = "") -> None:
        super().__init__()
        if kind not in ("cnnspot", "ufd"):
            raise ValueError(f"unknown classifier kind {kind!r}; expected 'cnnspot' or 'ufd'")
        self.kind, self.name, self.image_size = kind, name or kind, int(image_size)
        self.backbone = backbone
        config = backbone.config
        self.feature_dim = config.hidden_sizes[-1] if kind == "cnnspot" else config.projection_dim
        self.head = nn.Linear(self.feature_dim, 1)
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if kind == "cnnspot" else (CLIP_MEAN, CLIP_STD)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        if self.frozen:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    @property
    def frozen(self) -> bool:
        return self.kind == "ufd"

    def train(self, mode: bool = True) -> WholeImageClassifier:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        """Resize to ``image_size`` squared (bilinear) and stack as float (B, 3, S, S) in 0..1."""
        side = self.image_size
        arrays = [np.asarray(im.convert("RGB").resize((side, side), Image.BILINEAR), np.float32) / 255.0
                  for im in images]
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, D) features of 0..1 pixels (normalised here)."""
        pixels = (pixels - self.mean) / self.std
        if self.kind == "cnnspot":
            return self.backbone(pixel_values=pixels).pooler_output.flatten(1)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            return self.backbone(pixel_values=pixels).image_embeds

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(pixels)).squeeze(-1)

    @torch.no_grad()
    def predict_proba(self, images: list[Image.Image], batch_size: int = 32) -> np.ndarray:
        """Probability that each image holds an edit."""
        self.eval()
        device = next(self.parameters()).device
        out = [torch.sigmoid(self(self.preprocess(images[i:i + batch_size]).to(device))).float().cpu()
               for i in range(0, len(images), batch_size)]
        return torch.cat(out).numpy() if out else np.zeros(0, np.float32)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` atomically."""
        from safetensors.torch import save_model

        path = Path(path)
        with atomic_dir(path, overwrite=True) as tmp:
            config = {"diffseg30k_classifier": 1, "kind": self.kind, "name": self.name,
                      "image_size": self.image_size, "backbone": self.backbone.config.to_dict()}
            (tmp / "config.json").write_text(json.dumps(config, indent=2, default=str))
            save_model(self, str(tmp / "model.safetensors"))
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> WholeImageClassifier:
        """Load a folder written by :meth:`save_pretrained` (safetensors only)."""
        from safetensors.torch import load_model

        path = Path(path)
        try:
            config = json.loads((path / "config.json").read_text())
            kind = config["kind"]
            backbone = _backbone_from_config(kind, _config_from_dict(kind, config["backbone"]))
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(f"{path}: not a classifier folder ({err})") from err
        model = cls(kind, backbone, config["image_size"], config.get("name", kind))
        if not (path / "model.safetensors").is_file():
            raise FileNotFoundError(f"{path}: model.safetensors is missing")
        load_model(model, str(path / "model.safetensors"), device=str(device))
        return model.to(device)


def build_classifier(name: str, from_scratch: bool = False, revision: str | None = None
                     ) -> WholeImageClassifier:
    """Build a registered classifier; full-size ones load their backbone weights (safetensors) unless
    ``from_scratch``."""
    spec = CLASSIFIERS.get(name)
    if spec.repo_id is None:
        backbone = _backbone_from_config(spec.kind, _tiny_backbone_config(spec.kind, spec.image_size))
    elif from_scratch:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(spec.repo_id, revision=revision)
        config = getattr(config, "vision_config", config)
        backbone = _backbone_from_config(spec.kind, config)
    else:
        from transformers import CLIPVisionModelWithProjection, ResNetModel

        model_cls = ResNetModel if spec.kind == "cnnspot" else CLIPVisionModelWithProjection
        backbone = model_cls.from_pretrained(spec.repo_id, revision=revision, use_safetensors=True)
    return WholeImageClassifier(spec.kind, backbone, spec.image_size, name)


def cnnspot_augment(image: Image.Image, rng: np.random.Generator, prob: float = 0.5) -> Image.Image:
    """Wang et al.'s "Blur+JPEG (0.5)": blur sigma ~ U[0, 3] and JPEG quality ~ U{30..100}, each
    with probability ``prob``, plus a random horizontal flip."""
    if rng.random() < prob:
        image = blur(image, float(rng.uniform(0.0, 3.0)))
    if rng.random() < prob:
        image = jpeg(image, int(rng.integers(30, 101)))
    if rng.random() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    return image
