"""DiffSeg30k-style data generation (paper §3.1): regions, edit prompts, diffusion editors, quality filter.

Entry points: :func:`diffseg30k.generation.pipeline.generate` with a
:class:`~diffseg30k.generation.plan.GenerationConfig`, and
:func:`diffseg30k.generation.mini.build_mini_release` (the cached CPU mini release). Heavy libraries
(torch, diffusers, transformers) are imported by the submodules that need them.
"""

from diffseg30k.lazy import lazy_exports

#: The public API (imported on first use, so importing the package stays cheap).
__all__, __getattr__ = lazy_exports(__name__, {
    "generate": "diffseg30k.generation.pipeline",
    "GenerationConfig": "diffseg30k.generation.plan",
    "build_mini_release": "diffseg30k.generation.mini",
    "EDITORS": "diffseg30k.generation.editors.registry",
    "create_editor": "diffseg30k.generation.editors.registry",
    "Editor": "diffseg30k.generation.editors.base",
    "EditRequest": "diffseg30k.generation.editors.base",
})
