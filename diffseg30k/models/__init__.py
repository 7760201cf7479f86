"""Detectors: the registry (:mod:`diffseg30k.models.registry`) and one module per family."""
