"""SegFormer (Xie et al., NeurIPS 2021) detectors: transformers' ``SegformerForSemanticSegmentation``.

Encoder sizes follow the MiT-B0..B5 configurations; with pretrained weights the encoder comes from
``nvidia/mit-bX`` (safetensors only) and the all-MLP decode head starts from random weights.
"""

from __future__ import annotations

from transformers import SegformerConfig, SegformerForSemanticSegmentation

_WIDE = [64, 128, 320, 512]
#: (hidden_sizes, depths, decoder_hidden_size) of MiT-B0..B5.
MIT_VARIANTS: dict[str, tuple[list[int], list[int], int]] = {
    "b0": ([32, 64, 160, 256], [2, 2, 2, 2], 256),
    "b1": (_WIDE, [2, 2, 2, 2], 256),
    "b2": (_WIDE, [3, 4, 6, 3], 768),
    "b3": (_WIDE, [3, 4, 18, 3], 768),
    "b4": (_WIDE, [3, 8, 27, 3], 768),
    "b5": (_WIDE, [3, 6, 40, 3], 768),
}


def segformer_config(variant: str, extra: dict) -> SegformerConfig:
    """The config of MiT-``variant`` ('b0'..'b5' or 'tiny') with the detector entries ``extra``."""
    if variant == "tiny":
        return SegformerConfig(hidden_sizes=[16, 32, 64, 96], depths=[1, 1, 1, 1],
                               num_attention_heads=[1, 1, 2, 2], decoder_hidden_size=64, **extra)
    hidden_sizes, depths, decoder = MIT_VARIANTS[variant]
    return SegformerConfig(hidden_sizes=hidden_sizes, depths=depths, decoder_hidden_size=decoder,
                           num_attention_heads=[1, 2, 5, 8], **extra)


def build_segformer(variant: str, extra: dict, pretrained: str | None = None,
                    revision: str | None = None) -> SegformerForSemanticSegmentation:
    """A SegFormer detector; ``pretrained`` (a Hub id or folder) supplies the encoder weights."""
    config = segformer_config(variant, extra)
    if pretrained is None:
        return SegformerForSemanticSegmentation(config)
    try:
        return SegformerForSemanticSegmentation.from_pretrained(
            pretrained, config=config, revision=revision, use_safetensors=True)
    except (OSError, ValueError) as err:
        raise OSError(f"cannot load encoder weights {pretrained!r} (safetensors only): {err}. "
                      "Pass from_scratch=True (--from-scratch) to train without them.") from err
