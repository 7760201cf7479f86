"""TruFor's released weights (``trufor.pth.tar``, grip-unina/TruFor) -> a safetensors detector folder.

Never required: the TruFor family trains from ImageNet MiT weights. The checkpoint is a pickle, so
it is opened with ``torch.load(weights_only=True)`` (tensors and plain containers only), after its
sha256 is checked; the converted folder (``config.json`` + ``model.safetensors``) is what every later
run loads. The published layout (``test_docker/src/models/cmx``) is renamed key by key:

=====================================  ===========================================================
TruFor                                 here
=====================================  ===========================================================
``dncnn.N``                            ``noiseprint.N`` (same module order)
``backbone.[extra_]patch_embed{s}``    ``{rgb,noise}_encoder.stages.{s-1}.patch_embeddings``
``backbone.[extra_]block{s}.{j}``      ``..stages.{s-1}.blocks.{j}`` (``attn.kv`` split into k/v)
``backbone.[extra_]norm{s}``           ``..stages.{s-1}.layer_norm``
``backbone.FRMs.i`` / ``FFMs.i``       ``rectify.i`` / ``fuse.i``
``decode_head[_conf].linear_c{k}``     ``{decode,confidence}_head.linear_projections.{k-1}``
``..linear_fuse.0`` / ``.1``           ``..linear_fuse`` (its bias folded into BN) / ``..batch_norm``
``..linear_pred``, ``detection``       ``..classifier``, ``detection``
=====================================  ===========================================================

Layer-norm epsilons differ slightly (TruFor 1e-6, transformers 1e-5): outputs are close, not equal.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from pathlib import Path

import torch

from diffseg30k.io import atomic_dir, cache_dir, sha256_file

_BLOCK = [(r"\.norm1\.", ".layernorm_before."), (r"\.norm2\.", ".layernorm_after."),
          (r"\.attn\.q\.", ".attention.q_proj."), (r"\.attn\.proj\.", ".attention.o_proj."),
          (r"\.attn\.sr\.", ".attention.sequence_reduction.sequence_reduction."),
          (r"\.attn\.norm\.", ".attention.sequence_reduction.layer_norm.")]


class TruForWeightsError(ValueError):
    """The checkpoint is not TruFor's layout, fails its sha256, or does not fit the model."""


def _stage_key(key: str) -> str | None:
    match = re.match(r"backbone\.(extra_)?(patch_embed|block|norm)(\d)\.(.*)", key)
    if not match:
        return None
    extra, part, stage, rest = match.groups()
    prefix = f"{'noise' if extra else 'rgb'}_encoder.stages.{int(stage) - 1}"
    if part == "patch_embed":
        return f"{prefix}.patch_embeddings.{rest.replace('norm.', 'layer_norm.')}"
    if part == "norm":
        return f"{prefix}.layer_norm.{rest}"
    renamed = f"{prefix}.blocks.{rest}"
    for pattern, replacement in _BLOCK:
        renamed = re.sub(pattern, replacement, renamed)
    return renamed


def _head_key(key: str) -> str | None:
    match = re.match(r"decode_head(_conf)?\.(.*)", key)
    if not match:
        return None
    head = "confidence_head" if match.group(1) else "decode_head"
    rest = match.group(2)
    rest = re.sub(r"^linear_c(\d)\.", lambda m: f"linear_projections.{int(m.group(1)) - 1}.", rest)
    rest = rest.replace("linear_fuse.0.", "linear_fuse.").replace("linear_fuse.1.", "batch_norm.")
    return f"{head}.{rest.replace('linear_pred.', 'classifier.')}"


def convert_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """TruFor's state dict (keys as published, optionally under ``module.``) -> this model's keys."""
    state = {re.sub(r"^(module\.|model\.)+", "", k): v for k, v in state.items()}
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        if key.startswith("dncnn."):
            out["noiseprint." + key[len("dncnn."):]] = value
        elif key.startswith(("backbone.FRMs.", "backbone.FFMs.")):
            kind, rest = key[len("backbone."):].split(".", 1)
            out[("rectify." if kind == "FRMs" else "fuse.") + rest] = value
        elif key.startswith("detection."):
            out[key] = value
        elif (renamed := _stage_key(key) or _head_key(key)) is not None:
            if renamed.endswith(".linear_fuse.bias"):
                continue  # folded into the BatchNorm below
            if ".attn.kv." in renamed:
                key_part, value_part = value.chunk(2, dim=0)
                out[renamed.replace(".attn.kv.", ".attention.k_proj.")] = key_part
                out[renamed.replace(".attn.kv.", ".attention.v_proj.")] = value_part
            else:
                out[renamed] = value
        else:
            unknown.append(key)
    if unknown:
        raise TruForWeightsError(f"not TruFor's layout: unexpected keys {unknown[:5]}")
    for head in ("decode_head", "decode_head_conf"):
        bias = state.get(f"{head}.linear_fuse.0.bias")
        target = "decode_head" if head == "decode_head" else "confidence_head"
        if bias is not None:  # BN(conv(x) + b) == BN'(conv(x)) with running_mean' = running_mean - b
            out[f"{target}.batch_norm.running_mean"] = out[f"{target}.batch_norm.running_mean"] - bias
    return out


def infer_sizes(state: dict[str, torch.Tensor], num_attention_heads: list[int] | None = None) -> dict:
    """TruFor config entries (encoder sizes, noiseprint depth/width, labels) from converted weights."""
    stages = sorted({int(m.group(1)) for k in state if (m := re.match(r"rgb_encoder\.stages\.(\d+)\.", k))})
    hidden = [state[f"rgb_encoder.stages.{s}.patch_embeddings.proj.weight"].shape[0] for s in stages]
    depths = [len({m.group(1) for k in state
                   if (m := re.match(rf"rgb_encoder\.stages\.{s}\.blocks\.(\d+)\.", k))}) for s in stages]
    sr = [state[key].shape[-1] if (key := f"rgb_encoder.stages.{s}.blocks.0.attention.sequence_reduction."
                                          "sequence_reduction.weight") in state else 1 for s in stages]
    convs = sorted(int(k.split(".")[1]) for k in state if re.match(r"noiseprint\.\d+\.weight$", k)
                   and state[k].ndim == 4)
    encoder = dict(hidden_sizes=hidden, depths=depths, sr_ratios=sr,
                   num_attention_heads=list(num_attention_heads or [1, 2, 5, 8][:len(stages)]),
                   decoder_hidden_size=state["decode_head.linear_projections.0.proj.weight"].shape[0])
    return dict(encoder=encoder, noise_depth=len(convs), noise_width=state["noiseprint.0.weight"].shape[0],
                noise_channels=state[f"noiseprint.{convs[-1]}.weight"].shape[0],
                num_labels=state["decode_head.classifier.weight"].shape[0])


def read_released_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a ``trufor.pth.tar`` (``{"state_dict": ...}`` or a bare state dict)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # an unpickling refusal, a truncated file, not a torch file
        raise TruForWeightsError(f"{path}: cannot be read with torch.load(weights_only=True): {err}") from err
    state = data.get("state_dict", data.get("network", data)) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TruForWeightsError(f"{path}: no state dict of tensors inside")
    return state


def _local_copy(source: str, sha256: str | None, progress: bool) -> Path:
    if urllib.parse.urlparse(source).scheme in ("http", "https"):
        from diffseg30k.generation.glide.checkpoints import download

        if not sha256:
            raise TruForWeightsError(f"{source}: a download needs its sha256 (pass sha256=...)")
        name = Path(urllib.parse.urlparse(source).path).name or "trufor.pth.tar"
        path = download(source, cache_dir("trufor", "downloads") / f"{sha256[:16]}-{name}", progress)
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{source}: TruFor checkpoint not found")
    if sha256 and (digest := sha256_file(path)) != sha256.lower():
        if path.parent == cache_dir("trufor", "downloads"):
            path.unlink(missing_ok=True)
        raise TruForWeightsError(f"{path}: sha256 is {digest}, expected {sha256} (corrupt or wrong file)")
    return path


def convert_released_weights(source: str | os.PathLike, out: str | os.PathLike, sha256: str | None = None,
                             num_attention_heads: list[int] | None = None, progress: bool = True) -> Path:
    """Convert TruFor's checkpoint (path or URL; ``sha256`` required for URLs) once into ``out``, a
    binary TruFor detector folder for ``Detector`` / ``--pretrained``; an existing ``out`` is reused."""
    from diffseg30k.models.common import diffseg_config_kwargs
    from diffseg30k.models.trufor import TruForConfig, TruForForSemanticSegmentation

    out = Path(out)
    if (out / "model.safetensors").is_file():
        return out
    state = convert_state_dict(read_released_checkpoint(_local_copy(str(source), sha256, progress)))
    sizes = infer_sizes(state, num_attention_heads)
    extra = diffseg_config_kwargs("binary", None, 512, "trufor-released")
    if sizes.pop("num_labels") != 2:
        raise TruForWeightsError(f"{source}: expected TruFor's 2-class localiser")
    model = TruForForSemanticSegmentation(TruForConfig(**sizes, **extra))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise TruForWeightsError(f"{source}: does not fit the model (missing {missing[:5]}, "
                                 f"unexpected {unexpected[:5]})")
    with atomic_dir(out, overwrite=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
    return out


def load_matching_weights(model: torch.nn.Module, folder: str | os.PathLike) -> None:
    """Copy every weight of a converted TruFor folder whose name and shape match ``model`` (the
    classifier is skipped when the label sets differ)."""
    from safetensors.torch import load_file

    path = Path(folder) / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no model.safetensors")
    own = model.state_dict()
    weights = {k: v for k, v in load_file(str(path)).items() if k in own and own[k].shape == v.shape}
    if len(weights) < len(own) // 2:
        raise TruForWeightsError(f"{folder}: only {len(weights)} of {len(own)} weights fit this model")
    model.load_state_dict(weights, strict=False)
