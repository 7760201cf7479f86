"""Detectors: the registry (:mod:`diffseg30k.models.registry`) and one module per family."""

from diffseg30k.lazy import lazy_exports

#: The public API (imported on first use, so importing the package stays cheap).
__all__, __getattr__ = lazy_exports(__name__, {
    "DETECTORS": "diffseg30k.models.registry",
    "DetectorSpec": "diffseg30k.models.registry",
    "build_model": "diffseg30k.models.registry",
    "load_model": "diffseg30k.models.registry",
    "available_models": "diffseg30k.models.registry",
    "CLASSIFIERS": "diffseg30k.models.classifiers",
    "ClassifierSpec": "diffseg30k.models.classifiers",
    "build_classifier": "diffseg30k.models.classifiers",
    "WholeImageClassifier": "diffseg30k.models.classifiers",
})
