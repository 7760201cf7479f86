"""TruFor-style two-stream detector (Guillaro et al., CVPR 2023) on transformers' MiT encoders.

* A trainable DnCNN-like Noiseprint++ extractor (17 3x3 convolutions, BatchNorm inside) turns the
  RGB image (in [0, 1], before ImageNet normalisation) into a one-channel noise residual.
* Two ``SegformerModel`` (MiT) encoders read the RGB image and the (tiled) noiseprint; after every
  stage CMX's rectification lets each stream correct the other and a fusion module merges them
  (:mod:`diffseg30k.models.fusion`).
* A SegFormer all-MLP head decodes the fused features into the label map; a second one predicts
  TruFor's **confidence** (reliability) map, and confidence-weighted pooling of the "edited" score
  feeds a small MLP that gives the **image integrity** score (logit of "edited").

Training is single-phase (TruFor trains noiseprint, localisation and confidence/detection in three
phases): cross-entropy + ``confidence_loss_weight`` x MSE between sigmoid(confidence) and the
probability the localiser gives the true class (TruFor's target) + ``detection_loss_weight`` x BCE of
the integrity logit against "any edited pixel". TruFor's released weights convert with
:func:`diffseg30k.models.trufor_weights.convert_released_weights`. An input stem (``diffseg_stem``,
:mod:`diffseg30k.models.stem`) goes before the RGB stream; Noiseprint++ reads the image unchanged.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from diffseg30k.models.common import IMAGENET_MEAN, IMAGENET_STD, ForensicSegmenterOutput, segmentation_loss
from diffseg30k.models.fusion import FeatureFusion, FeatureRectify, logsumexp, weighted_statistics
from diffseg30k.models.mit_streams import encoder_config, load_mit_weights, mit_sizes, run_stage
from diffseg30k.models.registry import DETECTORS, DetectorSpec, register_auto
from diffseg30k.models.segformer import ReorderedSegformerDecodeHead
from diffseg30k.models.stem import build_stem


class TruForConfig(PretrainedConfig):
    """Configuration of :class:`TruForForSemanticSegmentation` (``encoder``: MiT sizes, both streams)."""

    model_type = "diffseg-trufor"

    def __init__(self, encoder: dict | None = None, noise_depth: int = 17, noise_width: int = 64,
                 noise_channels: int = 1, confidence_loss_weight: float = 0.5,
                 detection_loss_weight: float = 0.1, classifier_dropout_prob: float = 0.1,
                 semantic_loss_ignore_index: int = 255, **kwargs):
        self.encoder = dict(encoder or mit_sizes("b2"))
        self.noise_depth, self.noise_width, self.noise_channels = noise_depth, noise_width, noise_channels
        self.confidence_loss_weight = confidence_loss_weight
        self.detection_loss_weight = detection_loss_weight
        self.classifier_dropout_prob = classifier_dropout_prob
        self.semantic_loss_ignore_index = semantic_loss_ignore_index
        super().__init__(**kwargs)


def noiseprint_extractor(depth: int, width: int, out_channels: int) -> nn.Sequential:
    """DnCNN: conv+ReLU, (depth - 2) x conv+BN+ReLU, conv -- the Noiseprint++ layout (module order
    matters: the released weights are indexed by position)."""
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True)]
    for _ in range(depth - 2):
        layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                   nn.ReLU(inplace=True)]
    layers.append(nn.Conv2d(width, out_channels, 3, padding=1))
    return nn.Sequential(*layers)


def edited_score(logits: torch.Tensor) -> torch.Tensor:
    """log P(edited) - log P(background) per pixel, (B, 1, h, w), for 2 or more classes."""
    return logsumexp(logits[:, 1:], dim=1, keepdim=True) - logits[:, :1]


class TruForForSemanticSegmentation(PreTrainedModel):
    """Noiseprint++ stream + RGB stream, CMX fusion per stage, localisation/confidence/detection heads."""

    config_class = TruForConfig
    main_input_name = "pixel_values"
    base_model_prefix = "rgb_encoder"
    input_modalities = ("image",)

    def __init__(self, config: TruForConfig):
        super().__init__(config)
        from transformers import SegformerModel

        mit = encoder_config(config.encoder, num_labels=config.num_labels)
        mit.classifier_dropout_prob = config.classifier_dropout_prob
        self.noiseprint = noiseprint_extractor(config.noise_depth, config.noise_width, config.noise_channels)
        self.stem = build_stem(getattr(config, "diffseg_stem", None))
        self.rgb_encoder = SegformerModel(mit)
        self.noise_encoder = SegformerModel(encoder_config(config.encoder, num_channels=3))
        heads = mit.num_attention_heads
        self.rectify = nn.ModuleList(FeatureRectify(size) for size in mit.hidden_sizes)
        self.fuse = nn.ModuleList(FeatureFusion(size, h) for size, h in zip(mit.hidden_sizes, heads))
        self.decode_head = ReorderedSegformerDecodeHead(mit)
        mit_confidence = encoder_config(config.encoder, num_labels=1)
        mit_confidence.classifier_dropout_prob = config.classifier_dropout_prob
        self.confidence_head = ReorderedSegformerDecodeHead(mit_confidence)
        self.detection = nn.Sequential(nn.Linear(8, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 1))
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
            nn.init.normal_(module.weight, std=(2.0 / fan_out) ** 0.5)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm | nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            if isinstance(module, nn.BatchNorm2d) and module.running_mean is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)

    def fused_features(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """The four fused stage maps (strides 4..32) of a normalised (B, 3, H, W) batch."""
        mean = pixel_values.new_tensor(getattr(self.config, "image_mean", IMAGENET_MEAN)).view(1, 3, 1, 1)
        std = pixel_values.new_tensor(getattr(self.config, "image_std", IMAGENET_STD)).view(1, 3, 1, 1)
        noise = self.noiseprint(pixel_values * std + mean)  # Noiseprint++ reads [0, 1] RGB
        rgb, noise = self.stem(pixel_values), noise.expand(-1, 3, -1, -1) if noise.shape[1] == 1 else noise
        features = []
        for index in range(len(self.fuse)):
            rgb = run_stage(self.rgb_encoder, index, rgb)
            noise = run_stage(self.noise_encoder, index, noise)
            rgb, noise = self.rectify[index](rgb, noise)
            features.append(self.fuse[index](rgb, noise))
        return features

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                return_dict: bool | None = None, **kwargs) -> ForensicSegmenterOutput | tuple:
        features = self.fused_features(pixel_values)
        logits = self.decode_head(features)
        confidence = self.confidence_head(features)
        score = edited_score(logits.float())
        pooled = torch.cat((weighted_statistics(confidence.float()),
                            weighted_statistics(score, F.logsigmoid(confidence.float()))), dim=1)
        integrity = self.detection(pooled.to(logits.dtype)).squeeze(1)
        loss = self.loss(logits, confidence, integrity, labels) if labels is not None else None
        if return_dict is False:
            out = (logits, confidence, integrity)
            return (loss, *out) if loss is not None else out
        return ForensicSegmenterOutput(loss=loss, logits=logits, confidence=confidence, integrity=integrity)

    def loss(self, logits: torch.Tensor, confidence: torch.Tensor, integrity: torch.Tensor,
             labels: torch.Tensor) -> torch.Tensor:
        """Localisation CE + confidence MSE to the true-class probability + integrity BCE."""
        ignore = self.config.semantic_loss_ignore_index
        total = segmentation_loss(logits, labels, ignore)
        small = F.interpolate(labels[:, None].float(), size=logits.shape[-2:], mode="nearest")[:, 0].long()
        valid = small != ignore
        if self.config.confidence_loss_weight and valid.any():
            probs = logits.float().softmax(dim=1).detach()
            true_class = probs.gather(1, small.clamp(0, logits.shape[1] - 1)[:, None])[:, 0]
            predicted = torch.sigmoid(confidence.float()[:, 0])
            mse = F.mse_loss(predicted[valid], true_class[valid])
            total = total + self.config.confidence_loss_weight * mse
        if self.config.detection_loss_weight:
            edited = ((labels > 0) & (labels != ignore)).flatten(1).any(dim=1).float()
            total = total + self.config.detection_loss_weight * F.binary_cross_entropy_with_logits(
                integrity.float(), edited)
        return total


def build_trufor(variant: str, extra: dict, pretrained: str | None = None) -> TruForForSemanticSegmentation:
    """A TruFor detector with MiT-``variant`` streams; ``pretrained`` is a MiT encoder (Hub id or
    folder: both streams start from it) or a converted TruFor folder (every matching weight)."""
    tiny = variant == "tiny"
    sizes = dict(noise_depth=5, noise_width=16) if tiny else {}
    encoder = mit_sizes(variant) if tiny else {**mit_sizes(variant), "decoder_hidden_size": 512}  # TruFor's
    model = TruForForSemanticSegmentation(TruForConfig(encoder=encoder, **sizes, **extra))
    if pretrained is None:
        return model
    config_file = Path(pretrained) / "config.json"
    if config_file.is_file() and AutoConfig.from_pretrained(pretrained).model_type == TruForConfig.model_type:
        from diffseg30k.models.trufor_weights import load_matching_weights

        load_matching_weights(model, pretrained)
    else:
        load_mit_weights([model.rgb_encoder, model.noise_encoder], pretrained)
    return model



# Both streams start from ImageNet MiT weights: they train at the backbone learning rate.
_COMMON = dict(family="trufor", optimizer="adamw", backbone_prefixes=("rgb_encoder.", "noise_encoder."),
               display="TruFor-style", abbreviation="TRU")
DETECTORS.register(DetectorSpec("trufor-tiny", description="tiny random-init TruFor-style two-stream model",
                                build=partial(build_trufor, "tiny"), pretrained=None, tiny=True,
                                benchmark=("quick",),
                                **_COMMON))
DETECTORS.register(DetectorSpec(
    "trufor-b2", description="TruFor-style: MiT-B2 RGB + Noiseprint++ streams, CMX fusion, confidence head",
    build=partial(build_trufor, "b2"), pretrained="nvidia/mit-b2", benchmark=("paper",), **_COMMON))

register_auto(TruForConfig, TruForForSemanticSegmentation)
