"""diffseg30k.data: see ``__all__``."""

from diffseg30k.lazy import lazy_exports

#: The public API (imported on first use, so importing the package stays cheap).
__all__, __getattr__ = lazy_exports(__name__, {
    "load_benchmark": "diffseg30k.data.load",
    "map_task": "diffseg30k.data.load",
    "label_names": "diffseg30k.data.load",
    "convert": "diffseg30k.data.convert",
    "ConversionSummary": "diffseg30k.data.convert",
    "get_distortion": "diffseg30k.data.distortions",
    "parse_distortions": "diffseg30k.data.distortions",
    "register_distortion": "diffseg30k.data.distortions",
    "DISTORTION_KINDS": "diffseg30k.data.distortions",
    "DISTORTIONS": "diffseg30k.data.distortions",
    "PAPER_DISTORTIONS": "diffseg30k.data.distortions",
    "Distortion": "diffseg30k.data.distortions",
})
