"""Start a training from another trained detector's weights (``--init-from``): e.g. the semantic
detector from the binary one, which has already learned where the traces are."""

from __future__ import annotations

import json

import torch

from diffseg30k.checkpoint import resolve_checkpoint


def warm_start(model: torch.nn.Module, source: str) -> str:
    """Copy into ``model`` every tensor of the detector ``source`` (a folder written by
    ``diffseg30k train`` or a Hub id; safetensors only) whose name and shape match; the rest keep their
    fresh initialisation. Refuses a detector of another model. Returns a one-line summary."""
    from safetensors.torch import load_file

    folder = resolve_checkpoint(source)
    theirs = json.loads((folder / "config.json").read_text()).get("diffseg_model")
    ours = getattr(model.config, "diffseg_model", None)
    if theirs != ours:
        raise ValueError(f"--init-from {source}: that detector is a {theirs!r}, this run trains a {ours!r}; "
                         "warm starts need the same model")
    saved = load_file(str(folder / "model.safetensors"))
    own = model.state_dict()
    taken = {name: tensor for name, tensor in saved.items()
             if name in own and own[name].shape == tensor.shape}
    if not taken:
        raise ValueError(f"--init-from {source}: no tensor of it fits this model")
    model.load_state_dict(taken, strict=False)
    fresh = sorted(set(own) - set(taken))
    return (f"init from {folder}: {len(taken)} of {len(own)} tensors copied"
            + (f"; started afresh: {', '.join(fresh)}" if fresh else ""))
