"""diffseg30k.generation.editors: see ``__all__``."""

from diffseg30k.lazy import lazy_exports

#: The public API (imported on first use, so importing the package stays cheap).
__all__, __getattr__ = lazy_exports(__name__, {
    "EDITORS": "diffseg30k.generation.editors.registry",
    "create_editor": "diffseg30k.generation.editors.registry",
    "get_editor_class": "diffseg30k.generation.editors.registry",
    "available_editors": "diffseg30k.generation.editors.registry",
    "installed_generators": "diffseg30k.generation.editors.registry",
    "label_of": "diffseg30k.generation.editors.registry",
    "is_variant": "diffseg30k.generation.editors.registry",
    "Editor": "diffseg30k.generation.editors.base",
    "EditRequest": "diffseg30k.generation.editors.base",
    "DiffusersEditor": "diffseg30k.generation.editors.common",
})
