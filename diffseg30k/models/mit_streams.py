"""Mix Transformer (MiT) encoders as feature streams for the multi-stream detectors.

The TruFor-style and DCT-frequency families run two transformers ``SegformerModel`` encoders side by
side and exchange features between them after every stage, so they drive the encoders stage by
stage (:func:`run_stage`). Sizes come from :data:`~diffseg30k.models.segformer.MIT_VARIANTS`; ImageNet
weights (``nvidia/mit-bX``, safetensors only) load into every stream, the first patch embedding
widened with zero weights when a stream takes more than three input channels.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import SegformerConfig, SegformerModel

from diffseg30k.models.segformer import MIT_VARIANTS

#: The encoder of each ``-tiny`` entry (the size of ``segformer-tiny``).
MIT_TINY = dict(hidden_sizes=[16, 32, 64, 96], depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 2, 2],
                decoder_hidden_size=64)
ENCODER_KEYS = ("hidden_sizes", "depths", "num_attention_heads", "sr_ratios", "decoder_hidden_size",
                "drop_path_rate", "layer_norm_eps", "mlp_ratios", "patch_sizes", "strides")


def mit_sizes(variant: str) -> dict[str, Any]:
    """Encoder sizes of MiT-``variant`` ('b0'..'b5') or 'tiny'."""
    if variant == "tiny":
        return dict(MIT_TINY)
    hidden_sizes, depths, decoder = MIT_VARIANTS[variant]
    return dict(hidden_sizes=hidden_sizes, depths=depths, num_attention_heads=[1, 2, 5, 8],
                decoder_hidden_size=decoder)


def encoder_config(encoder: dict[str, Any], num_channels: int = 3, num_labels: int = 2) -> SegformerConfig:
    """A ``SegformerConfig`` from the ``encoder`` dict of a detector config."""
    values = {k: v for k, v in (encoder or {}).items() if k in ENCODER_KEYS}
    return SegformerConfig(num_channels=num_channels, num_labels=num_labels, **values)


def run_stage(encoder: SegformerModel, index: int, hidden: torch.Tensor) -> torch.Tensor:
    """Stage ``index`` of a MiT encoder: (B, C_in, H, W) -> (B, C_i, H / s, W / s)."""
    return encoder.stages[index](hidden)


def load_mit_weights(encoders: list[SegformerModel], repo_id: str, revision: str | None = None) -> None:
    """Copy ImageNet MiT weights (a Hub id or folder, safetensors only) into each encoder.

    A stream whose first patch embedding takes more than 3 channels keeps the RGB filters on its
    first 3 input channels and zeros on the others (so it starts as the RGB encoder)."""
    try:
        source = SegformerModel.from_pretrained(repo_id, revision=revision, use_safetensors=True)
    except (OSError, ValueError) as err:
        raise OSError(f"cannot load encoder weights {repo_id!r} (safetensors only): {err}. "
                      "Pass from_scratch=True (--from-scratch) to train without them.") from err
    weights = source.state_dict()
    key = "stages.0.patch_embeddings.proj.weight"
    for encoder in encoders:
        state = dict(weights)
        target = encoder.state_dict()[key]
        if target.shape != state[key].shape:
            if target.shape[0] != state[key].shape[0] or target.shape[1] < state[key].shape[1]:
                raise ValueError(f"{repo_id}: encoder sizes {tuple(state[key].shape)} do not fit "
                                 f"this detector ({tuple(target.shape)})")
            widened = torch.zeros_like(target)
            widened[:, :state[key].shape[1]] = state[key]
            state[key] = widened
        missing, unexpected = encoder.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{repo_id}: not a MiT encoder of this size (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
