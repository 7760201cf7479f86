"""Start a training from another trained detector's weights (``--init-from``): e.g. the semantic
detector from the binary one, which has already learned where the traces are."""

from __future__ import annotations

import json

import torch

from diffseg30k.checkpoint import CheckpointNotFound, resolve_checkpoint

#: Share of the model's parameters (by count) a warm start must fill; below it the source is refused.
MIN_SHARE = 0.5


def warm_start(model: torch.nn.Module, source: str) -> str:
    """Copy into ``model`` every tensor of the detector ``source`` (a folder written by
    ``diffseg30k train`` or a Hub id; ``model.safetensors`` only) whose name and shape match; the rest
    keep their fresh initialisation. Refuses a detector of another model or input stem, and one that
    fills under half of the parameters. Returns a one-line summary."""
    from safetensors.torch import load_file

    try:
        folder = resolve_checkpoint(source)
    except CheckpointNotFound as err:
        raise ValueError(f"--init-from {source}: {err}") from err
    theirs = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    for key, what in (("diffseg_model", "model"), ("diffseg_stem", "input stem")):
        mine = getattr(model.config, key, None)
        if theirs.get(key, "none" if key == "diffseg_stem" else None) != mine:
            raise ValueError(f"--init-from {source}: that detector's {what} is {theirs.get(key)!r}, this "
                             f"run's is {mine!r}; a warm start needs the same one")
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ValueError(f"--init-from {source}: {weights} is missing (warm starts read one "
                         "model.safetensors file)")
    saved = load_file(str(weights))
    own = model.state_dict()
    taken = {name: tensor for name, tensor in saved.items()
             if name in own and own[name].shape == tensor.shape}
    params = dict(model.named_parameters())
    filled = sum(params[name].numel() for name in taken if name in params)
    total = sum(p.numel() for p in params.values())
    if filled < MIN_SHARE * total:
        raise ValueError(f"--init-from {source}: only {filled} of {total} parameters match this model "
                         "by name and shape; is it the same architecture?")
    model.load_state_dict(taken, strict=False)
    fresh = sorted(set(own) - set(taken))
    listed = ", ".join(fresh[:8]) + (f" and {len(fresh) - 8} more" if len(fresh) > 8 else "")
    return (f"init from {folder}: {len(taken)} of {len(own)} tensors copied ({filled / total:.0%} of the "
            "parameters)" + (f"; started afresh: {listed}" if fresh else ""))
