"""Registry of editor adapters: adding a generator is one adapter module plus one line here."""

from __future__ import annotations

import importlib
from typing import Any

from diffseg30k.generation.editors.base import Editor
from diffseg30k.labels import GENERATOR_BY_NAME

#: label name -> "module:Class" (imported lazily, so listing editors needs no diffusers).
EDITORS: dict[str, str] = {
    "sd2": "diffseg30k.generation.editors.sd2:SD2Editor",
    "kolors": "diffseg30k.generation.editors.kolors:KolorsEditor",
    "sd35": "diffseg30k.generation.editors.sd35:SD35Editor",
    "flux": "diffseg30k.generation.editors.flux:FluxEditor",
    "sdxl": "diffseg30k.generation.editors.sdxl:SDXLEditor",
    "glide": "diffseg30k.generation.editors.glide:GlideEditor",
    "hunyuan": "diffseg30k.generation.editors.hunyuan:HunyuanEditor",
    "kandinsky": "diffseg30k.generation.editors.kandinsky:KandinskyEditor",
    # variants: labelled as their parent generator (``Editor.name``), recorded under this key
    "sdxl-lora": "diffseg30k.generation.editors.sdxl:SDXLLoraEditor",
}


def available_editors() -> list[str]:
    """Names of the registered editors, in label-id order where they have one."""
    return list(EDITORS)


def is_variant(name: str) -> bool:
    """True for a registered variant (e.g. ``sdxl-lora``), drawn only when asked for explicitly."""
    return name in EDITORS and name not in GENERATOR_BY_NAME


def installed_generators() -> list[str]:
    """The registered generators (no variants) whose adapter module is present."""
    import importlib.util

    return [name for name, target in EDITORS.items()
            if not is_variant(name) and importlib.util.find_spec(target.split(":")[0]) is not None]


def label_of(name: str) -> str:
    """The label (generator) name an editor's edits carry: a variant's parent, else itself."""
    return get_editor_class(name).name if is_variant(name) else name


def get_editor_class(name: str) -> type[Editor]:
    """Import and return the adapter class registered as ``name``."""
    try:
        target = EDITORS[name]
    except KeyError:
        raise ValueError(f"unknown editor {name!r}; registered: {', '.join(EDITORS)}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create_editor(name: str, **kwargs: Any) -> Editor:
    """Instantiate the adapter registered as ``name`` (not yet loaded)."""
    return get_editor_class(name)(**kwargs)
