"""Loading OpenAI's released GLIDE inpainting checkpoints.

A checkpoint (``.pt``, from a path or URL) is verified by sha256, read once with
``torch.load(weights_only=True)``, its parameter names mapped onto :class:`GlideUNet` (every tensor
must be used and every parameter filled) and written as safetensors in the toolkit cache; later
loads read only the safetensors file. With no pinned digest, the digest of the first file seen is
recorded (trust on first use, with a warning) and enforced afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import tempfile
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from diffseg30k.generation.glide.config import GlideConfig, get_config
from diffseg30k.generation.glide.unet import GlideUNet
from diffseg30k.io import atomic_write_text, cache_dir, sha256_file

_BLOB = "https://openaipublic.blob.core.windows.net/diffusion/dec-2021"


@dataclass(frozen=True)
class ReleasedCheckpoint:
    url: str
    preset: str
    #: Expected sha256 of the .pt file; None = not pinned (recorded on first use).
    sha256: str | None = None


RELEASED: dict[str, ReleasedCheckpoint] = {
    "base-inpaint": ReleasedCheckpoint(f"{_BLOB}/base_inpaint.pt", "base-inpaint"),
    "upsample-inpaint": ReleasedCheckpoint(f"{_BLOB}/upsample_inpaint.pt", "upsample-inpaint"),
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


# ------------------------------------------------------------------------------------ name mapping
_RESBLOCK = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "emb_proj",
             "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "skip"}
_ATTENTION = {"norm": "norm", "qkv": "qkv", "encoder_kv": "text_kv", "proj_out": "proj_out"}
_TEXT_LAYER = {"attn.c_qkv": "attention.qkv", "attn.c_proj": "attention.proj", "ln_1": "norm1",
               "ln_2": "norm2", "mlp.c_fc": "fc1", "mlp.c_proj": "fc2"}
_TOP = {"time_embed.0": "time_embed_1", "time_embed.2": "time_embed_2", "input_blocks.0.0": "input_conv",
        "out.0": "output_norm", "out.2": "output_conv", "final_ln": "text_encoder.final_norm",
        "token_embedding": "text_encoder.token_embedding", "transformer_proj": "text_encoder.projection",
        "positional_embedding": "text_encoder.position_embedding",
        "padding_embedding": "text_encoder.padding_embedding"}


def _inner(rest: str, table: dict[str, str]) -> str | None:
    for old, new in table.items():
        if rest == old or rest.startswith(old + "."):
            return new + rest[len(old):]
    return None


def local_name(name: str, model: GlideUNet) -> str | None:
    """This implementation's name for a glide-text2im parameter name (None if it has none)."""
    for old, new in _TOP.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    if m := re.fullmatch(r"transformer\.resblocks\.(\d+)\.(.+)", name):
        inner = _inner(m[2], _TEXT_LAYER)
        return inner and f"text_encoder.layers.{m[1]}.{inner}"
    if m := re.fullmatch(r"input_blocks\.(\d+)\.([01])\.(.+)", name):
        index = int(m[1]) - 1
        kind, table = ("resnet", _RESBLOCK) if m[2] == "0" else ("attention", _ATTENTION)
        inner = _inner(m[3], table)
        return inner and index >= 0 and f"encoder.{index}.{kind}.{inner}"
    if m := re.fullmatch(r"middle_block\.([012])\.(.+)", name):
        kind, table = {"0": ("resnet_1", _RESBLOCK), "1": ("attention", _ATTENTION),
                       "2": ("resnet_2", _RESBLOCK)}[m[1]]
        inner = _inner(m[2], table)
        return inner and f"middle.{kind}.{inner}"
    if m := re.fullmatch(r"output_blocks\.(\d+)\.([012])\.(.+)", name):
        index, position = int(m[1]), int(m[2])
        if index >= len(model.decoder):
            return None
        has_attention = model.decoder[index].attention is not None
        kinds = ["resnet", *(["attention"] if has_attention else []), "resample"]
        if position >= len(kinds):
            return None
        kind = kinds[position]
        inner = _inner(m[3], _ATTENTION if kind == "attention" else _RESBLOCK)
        return inner and f"decoder.{index}.{kind}.{inner}"
    return None


def convert_state_dict(original: dict[str, torch.Tensor], config: GlideConfig,
                       source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Rename a glide-text2im state dict for :class:`GlideUNet` (1x1 Conv1d weights become Linear
    weights). Raises :class:`CheckpointError` unless every tensor is used and every parameter filled."""
    with torch.device("meta"):
        model = GlideUNet(config)
    target = {k: v.shape for k, v in model.state_dict().items()}
    converted: dict[str, torch.Tensor] = {}
    unexpected, mismatched = [], []
    for name, tensor in original.items():
        new = local_name(name, model)
        if not new or new not in target:
            unexpected.append(name)
            continue
        if tensor.dim() == len(target[new]) + 1 and tensor.shape[-1] == 1:
            tensor = tensor[..., 0]
        if tensor.shape != target[new]:
            mismatched.append(f"{name} {tuple(tensor.shape)} vs {new} {tuple(target[new])}")
            continue
        converted[new] = tensor.contiguous()
    missing = sorted(set(target) - set(converted))
    if unexpected or missing or mismatched:
        parts = [f"{label} ({len(items)}): {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}"
                 for label, items in (("unexpected", unexpected), ("missing", missing),
                                      ("shape mismatch", mismatched)) if items]
        raise CheckpointError(f"{source}: does not match the GLIDE config (image_size="
                              f"{config.image_size}, super_res={config.super_res}); {'; '.join(parts)}")
    return converted


# ------------------------------------------------------------------------------------ files
def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(source).scheme in ("http", "https", "file")


def _record_path() -> Path:
    return cache_dir("glide") / "sha256.json"


def recorded_sha256(source: str) -> str | None:
    """The digest recorded for ``source`` on first use (None if never loaded)."""
    path = _record_path()
    return json.loads(path.read_text()).get(source) if path.exists() else None


def _record_sha256(source: str, digest: str) -> None:
    path = _record_path()
    records = json.loads(path.read_text()) if path.exists() else {}
    records[source] = digest
    atomic_write_text(path, json.dumps(records, indent=1, sort_keys=True))


@contextlib.contextmanager
def _write_then_move(target: Path) -> Iterator[str]:
    """A temporary file next to ``target``, moved onto it only when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def download(url: str, dest: Path, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` through a temporary file (skipped when ``dest`` exists)."""
    from tqdm.auto import tqdm

    if dest.exists():
        return dest
    with _write_then_move(dest) as tmp, urllib.request.urlopen(url) as response, open(tmp, "wb") as fh:  # noqa: S310
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
            while block := response.read(1 << 20):
                fh.write(block)
                bar.update(len(block))
    return dest


def _converted_path(source: str, digest: str) -> Path:
    stem = Path(urllib.parse.urlparse(source).path).stem or "checkpoint"
    return cache_dir("glide") / f"{stem}-{digest[:16]}.safetensors"


def convert_checkpoint(source: str | os.PathLike, config: GlideConfig, sha256: str | None = None,
                       progress: bool = True) -> Path:
    """Verify, convert (once) and return the cached safetensors file of a GLIDE ``.pt`` checkpoint
    given as a path or URL. ``sha256`` pins the expected digest of the ``.pt`` file."""
    from safetensors.torch import save_file

    source = str(source)
    expected = (sha256 or recorded_sha256(source) or "").lower() or None
    if expected and (cached := _converted_path(source, expected)).exists():
        return cached
    if _is_url(source):
        name = Path(urllib.parse.urlparse(source).path).name or "checkpoint.pt"
        path = download(source, cache_dir("glide", "downloads") / name, progress)
    else:
        path = Path(source)
        if not path.is_file():
            raise CheckpointError(f"{source}: checkpoint file not found")
    digest = sha256_file(path)
    if expected and digest != expected:
        if _is_url(source):
            path.unlink(missing_ok=True)  # not kept: a retry downloads again instead of failing forever
        raise CheckpointError(f"{source if _is_url(source) else path}: sha256 is {digest}, expected "
                              f"{expected} (corrupt or wrong file)")
    if not expected:
        _record_sha256(source, digest)
        warnings.warn(f"{source}: no sha256 pinned; computed {digest} and recorded it in {_record_path()} "
                      "(later loads must match it)", stacklevel=2)
    target = _converted_path(source, digest)
    if target.exists():
        return target
    try:
        original = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch's text advises weights_only=False: never repeated
        raise CheckpointError(f"{path}: not a plain tensor file (it holds other pickled objects); it was "
                              "not loaded") from err
    except Exception as err:  # truncated files, not a torch archive
        raise CheckpointError(f"{path}: not a loadable weights-only torch checkpoint ({err})") from err
    if not isinstance(original, dict) or not all(isinstance(v, torch.Tensor) for v in original.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors")
    converted = convert_state_dict(original, config, str(path))
    with _write_then_move(target) as tmp:
        save_file(converted, tmp, metadata={"source": source, "sha256": digest,
                                            "config": json.dumps(config.to_dict())})
    if _is_url(source):
        path.unlink()  # the download is no longer needed: later loads read the converted file
    return target


def load_unet(source: str | os.PathLike | None = None, config: GlideConfig | str = "base-inpaint",
              sha256: str | None = None, device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32, progress: bool = True) -> GlideUNet:
    """Build :class:`GlideUNet` with released weights. ``source`` defaults to the OpenAI URL of the
    preset named ``config`` ("base-inpaint" or "upsample-inpaint"); a ``.safetensors`` file already
    in this implementation's naming is loaded directly."""
    from safetensors.torch import load_file

    preset = config if isinstance(config, str) else None
    config = get_config(config) if isinstance(config, str) else config
    if source is None:
        if preset not in RELEASED:
            raise ValueError(f"no released checkpoint for {preset!r}; pass source")
        source, sha256 = RELEASED[preset].url, sha256 or RELEASED[preset].sha256
    source = str(source)
    if source.endswith(".safetensors") and not _is_url(source):
        path = Path(source)
    else:
        path = convert_checkpoint(source, config, sha256, progress)
    with torch.device("meta"):
        model = GlideUNet(config)
    state = load_file(str(path))
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: does not fit the GLIDE config ({err})") from err
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)
