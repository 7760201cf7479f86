"""Registry of editor adapters: adding a generator is one adapter module that registers its class.

An adapter module in this package decorates its class with ``@EDITORS.register``; the registry key
is the class's ``editor_name`` (a variant such as ``sdxl-lora``) or its label ``name``. Modules
import diffusers lazily, so listing editors needs no diffusers.
"""

from __future__ import annotations

from typing import Any

from diffseg30k.generation.editors.base import Editor
from diffseg30k.labels import GENERATOR_BY_NAME
from diffseg30k.registry import Registry, RegistryError, first_sentence

__all__ = ["EDITORS", "RegistryError", "available_editors", "create_editor", "get_editor_class",
           "installed_generators", "is_variant", "label_of"]


def _order(name: str, cls: type[Editor]) -> int:
    generator = GENERATOR_BY_NAME.get(name)
    return generator.id if generator else 1_000  # label-id order, variants after


def _describe(cls: type[Editor]) -> str:
    import sys

    if cls.editor_name and cls.editor_name != cls.name:
        return f"variant, labelled {cls.name}: {first_sentence(cls.__doc__ or '')}"
    return first_sentence(sys.modules[cls.__module__].__doc__ or cls.__doc__ or "")


#: label or variant name -> adapter class (each module of this package registers its own).
EDITORS: Registry[type[Editor]] = Registry(
    "editor", package="diffseg30k.generation.editors", describe=_describe,
    key=lambda cls: cls.editor_name or cls.name, sort_key=_order)


def available_editors() -> list[str]:
    """Names of the registered editors, in label-id order where they have one."""
    return EDITORS.names()


def is_variant(name: str) -> bool:
    """True for a registered variant (e.g. ``sdxl-lora``), drawn only when asked for explicitly."""
    return name in EDITORS and name not in GENERATOR_BY_NAME


def installed_generators() -> list[str]:
    """The registered generators (no variants), in label-id order."""
    return [name for name in EDITORS.names() if not is_variant(name)]


def label_of(name: str) -> str:
    """The label (generator) name an editor's edits carry: a variant's parent, else itself."""
    return get_editor_class(name).name if is_variant(name) else name


def get_editor_class(name: str) -> type[Editor]:
    """The adapter class registered as ``name`` (:class:`RegistryError` suggesting near names)."""
    return EDITORS.get(name)


def create_editor(name: str, **kwargs: Any) -> Editor:
    """Instantiate the adapter registered as ``name`` (not yet loaded)."""
    return get_editor_class(name)(**kwargs)
