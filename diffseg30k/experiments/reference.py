"""The paper's reported numbers (Ci et al. 2025, validation set, 512x512 training), in one place.

Keys follow the metric's output names. ``None`` marks a cell the paper does not report.
"""

from __future__ import annotations

from typing import Any

SEG_KEYS = ("binary_accuracy", "binary_miou", "binary_bf1", "semantic_accuracy", "semantic_miou",
            "semantic_bf1")
IMAGE_KEYS = ("image_accuracy", "image_ap")


def _seg(*values: float) -> dict[str, float]:
    return dict(zip(SEG_KEYS, values))


#: Tab. 2: each detector family, binary and semantic tasks.
TAB2: dict[str, dict[str, float]] = {
    "segformer": _seg(0.989, 0.961, 0.678, 0.952, 0.825, 0.532),
    "deeplabv3plus": _seg(0.984, 0.974, 0.761, 0.916, 0.760, 0.431),
    "fcn8s": _seg(0.838, 0.699, 0.457, 0.331, 0.203, 0.024),
}

#: Tab. 3: robustness to distortions (models trained without augmentation).
TAB3: dict[str, dict[str, dict[str, float]]] = {
    "segformer": {
        "none": _seg(0.989, 0.961, 0.678, 0.953, 0.825, 0.532),
        "jpeg60": _seg(0.705, 0.260, 0.257, 0.665, 0.032, 0.197),
        "jpeg80": _seg(0.775, 0.291, 0.338, 0.724, 0.188, 0.305),
        "resize256": _seg(0.565, 0.360, 0.286, 0.616, 0.299, 0.338),
        "resize1024": _seg(0.966, 0.898, 0.548, 0.821, 0.414, 0.296),
    },
    "deeplabv3plus": {
        "none": _seg(0.984, 0.974, 0.761, 0.916, 0.760, 0.431),
        "jpeg60": _seg(0.867, 0.782, 0.556, 0.184, 0.013, 0.019),
        "jpeg80": _seg(0.907, 0.847, 0.613, 0.190, 0.014, 0.019),
        "resize256": _seg(0.811, 0.751, 0.631, 0.021, 0.012, 0.021),
        "resize1024": _seg(0.816, 0.729, 0.499, 0.168, 0.168, 0.014),
    },
}

#: The three 6->2 generator hold-outs of Tab. 4/6 (label names), with the paper's row names.
HOLDOUTS: tuple[tuple[str, str], ...] = (("flux", "hunyuan"), ("sd2", "sd35"), ("glide", "kolors"))
HOLDOUT_NAMES = {("flux", "hunyuan"): "Flux_Hunyuan", ("sd2", "sd35"): "SD2_SD3.5",
                 ("glide", "kolors"): "Glide_Kolors"}

#: Tab. 4: binary pixel metrics on edits by the two unseen generators ("baseline": all 8 seen).
TAB4: dict[str, dict[str, dict[str, float]]] = {
    "segformer": {
        "baseline": {"binary_accuracy": 0.989, "binary_miou": 0.961, "binary_bf1": 0.678},
        "flux+hunyuan": {"binary_accuracy": 0.935, "binary_miou": 0.930, "binary_bf1": 0.491},
        "sd2+sd35": {"binary_accuracy": 0.927, "binary_miou": 0.926, "binary_bf1": 0.497},
        "glide+kolors": {"binary_accuracy": 0.957, "binary_miou": 0.951, "binary_bf1": 0.578},
    },
    "deeplabv3plus": {
        "baseline": {"binary_accuracy": 0.984, "binary_miou": 0.974, "binary_bf1": 0.761},
        "flux+hunyuan": {"binary_accuracy": 0.920, "binary_miou": 0.867, "binary_bf1": 0.526},
        "sd2+sd35": {"binary_accuracy": 0.931, "binary_miou": 0.833, "binary_bf1": 0.372},
        "glide+kolors": {"binary_accuracy": 0.953, "binary_miou": 0.927, "binary_bf1": 0.648},
    },
}

#: Tab. 5: whole-image classification (segmenters by the 1 % area rule).
TAB5: dict[str, dict[str, float]] = {
    "cnnspot": {"image_accuracy": 0.942, "image_ap": 0.979},
    "ufd": {"image_accuracy": 0.860, "image_ap": 0.934},
    "segformer": {"image_accuracy": 0.997, "image_ap": 0.999},
    "deeplabv3plus": {"image_accuracy": 0.980, "image_ap": 0.994},
}

#: Tab. 6: image-level metrics under the generator hold-outs.
TAB6: dict[str, dict[str, dict[str, float]]] = {
    "ufd": {"baseline": {"image_accuracy": 0.860, "image_ap": 0.934},
            "flux+hunyuan": {"image_accuracy": 0.768, "image_ap": 0.877},
            "sd2+sd35": {"image_accuracy": 0.714, "image_ap": 0.817},
            "glide+kolors": {"image_accuracy": 0.749, "image_ap": 0.844}},
    "segformer": {"baseline": {"image_accuracy": 0.997, "image_ap": 0.999},
                  "flux+hunyuan": {"image_accuracy": 0.978, "image_ap": 0.986},
                  "sd2+sd35": {"image_accuracy": 0.982, "image_ap": 0.986},
                  "glide+kolors": {"image_accuracy": 0.987, "image_ap": 0.996}},
    "deeplabv3plus": {"baseline": {"image_accuracy": 0.980, "image_ap": 0.994},
                      "flux+hunyuan": {"image_accuracy": 0.935, "image_ap": 0.967},
                      "sd2+sd35": {"image_accuracy": 0.942, "image_ap": 0.965},
                      "glide+kolors": {"image_accuracy": 0.964, "image_ap": 0.985}},
}

#: Tab. 7: DeepLabV3+ (semantic), IoU of the SDXL class on SDXL vs SDXL-LoRA validation edits.
TAB7: dict[str, dict[str, dict[str, float]]] = {
    "deeplabv3plus": {"sdxl": {"sdxl_iou": 0.657}, "sdxl-lora": {"sdxl_iou": 0.630}},
}

#: Tab. 8: DeepLabV3+ on real-base vs AI-base images.
TAB8: dict[str, dict[str, dict[str, float]]] = {
    "deeplabv3plus": {"real": _seg(0.964, 0.911, 0.506, 0.918, 0.731, 0.339),
                      "ai": _seg(0.999, 0.999, 0.999, 0.887, 0.760, 0.516)},
}

#: Training times the paper reports (hours on one NVIDIA RTX 4090, 512x512, semantic task).
TRAINING_HOURS_4090 = {"fcn8s": 8.0, "segformer": 6.0, "deeplabv3plus": 3.0}

#: Display names of the detector families, as in the paper.
DISPLAY = {"segformer": "SegFormer", "deeplabv3plus": "DeepLab v3+", "fcn8s": "FCN-8s", "cnnspot": "CNNSpot",
           "ufd": "UniversalFakeDet", "trufor": "TruFor-style", "dctfreq": "DCT-frequency",
           "foundation": "Foundation (frozen ViT)"}

TABLES: dict[str, Any] = {"tab2": TAB2, "tab3": TAB3, "tab4": TAB4, "tab5": TAB5, "tab6": TAB6,
                          "tab7": TAB7, "tab8": TAB8}


def family_of(model_name: str) -> str:
    """The paper's family for a registry model name (``segformer-tiny`` -> ``segformer``)."""
    families = ("segformer", "deeplabv3plus", "fcn8s", "cnnspot", "ufd", "trufor", "dctfreq", "foundation")
    for family in families:
        if model_name.replace("-", "").replace("_", "").startswith(family):
            return family
    return model_name


def holdout_key(pair: tuple[str, str] | list[str]) -> str:
    """The key of a generator hold-out pair, e.g. ``flux+hunyuan``."""
    return "+".join(pair)


def paper_value(table: str, *path: str) -> float | None:
    """Look a number up, e.g. ``paper_value("tab3", "segformer", "jpeg60", "semantic_miou")``."""
    node: Any = TABLES.get(table)
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) else None
