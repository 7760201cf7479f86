"""DiffSeg30k-style data generation (paper §3.1): regions, edit prompts, diffusion editors, quality filter.

Entry points: :func:`diffseg30k.generation.pipeline.generate` with a
:class:`~diffseg30k.generation.plan.GenerationConfig`, and
:func:`diffseg30k.generation.mini.build_mini_release` (the cached CPU mini release). Heavy libraries
(torch, diffusers, transformers) are imported by the submodules that need them.
"""
