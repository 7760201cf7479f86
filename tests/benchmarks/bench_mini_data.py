"""The mini data's bar (issue 15): do edits and AI bases look like images, not noise?

    python tests/benchmarks/bench_mini_data.py [--num 16] [--release DIR] [--profile mini]

Generates ``--num`` mini samples (or reads an existing release) and measures, per sample, the
high-frequency energy (squared Laplacian, :func:`diffseg30k.generation.quality.high_frequency_maps`)
of luma and of chroma (Cb + Cr) inside the edits divided by that of the unedited pixels, and the
unedited pixels' chroma energy of AI bases against real bases. Bar: median chroma ratio <= 3,
median luma ratio >= 0.05 (no flat fills), AI/real base chroma ratio <= 3. ``--profile tiny`` measures
the real diffusers pipelines with random weights (the previous mini data) as the peer.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def measure(release: Path) -> dict:
    from diffseg30k.generation.mini import read_metadata
    from diffseg30k.generation.quality import high_frequency_maps

    rows = read_metadata(release)
    luma_ratios, chroma_ratios, base_chroma = [], [], {"real": [], "ai": []}
    for row in rows:
        image = Image.open(release / f"{row['id']}.image.png").convert("RGB")
        edited = np.asarray(Image.open(release / f"{row['id']}.mask.png")) > 0
        luma, chroma = high_frequency_maps(image)
        unedited = ~edited
        if edited.any() and unedited.any():
            luma_ratios.append(float(luma[edited].mean() / max(luma[unedited].mean(), 1e-3)))
            chroma_ratios.append(float(chroma[edited].mean() / max(chroma[unedited].mean(), 1e-3)))
        if unedited.any():
            base_chroma[row["base"]].append(float(chroma[unedited].mean()))
    real, ai = np.mean(base_chroma["real"] or [np.nan]), np.mean(base_chroma["ai"] or [np.nan])
    result = {"samples": len(rows), "real_bases": len(base_chroma["real"]),
              "ai_bases": len(base_chroma["ai"]),
              "median_chroma_ratio_edit_vs_unedited": round(float(np.median(chroma_ratios)), 3),
              "median_luma_ratio_edit_vs_unedited": round(float(np.median(luma_ratios)), 3),
              "ai_vs_real_base_chroma_ratio": round(float(ai / real), 3),
              "backends": sorted({t.get("editor_backend", "?") for r in rows for t in r["turns"]})}
    result["bar"] = {"chroma_ratio<=3": result["median_chroma_ratio_edit_vs_unedited"] <= 3,
                     "luma_ratio>=0.05": result["median_luma_ratio_edit_vs_unedited"] >= 0.05,
                     "ai_base_chroma<=3x_real": result["ai_vs_real_base_chroma_ratio"] <= 3}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default="mini")
    parser.add_argument("--editors", default=None, help="comma-separated editors (default: all eight)")
    parser.add_argument("--release", type=Path, default=None, help="measure this release instead")
    args = parser.parse_args()
    if args.release is not None:
        print(json.dumps({"release": str(args.release), **measure(args.release)}, indent=2))
        return
    from diffseg30k.generation.pipeline import GenerationConfig, generate

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        # quality_threshold=0: measure what the editors make, before the filter drops anything
        out = generate(GenerationConfig(out=Path(tmp) / "g", profile=args.profile, num_images=args.num,
                                        seed=args.seed, quality_threshold=0, progress=False,
                                        editors=tuple(args.editors.split(",")) if args.editors else None))
        seconds = time.perf_counter() - start
        result = measure(out)
    print(json.dumps({"profile": args.profile, "generate_seconds": round(seconds, 1),
                      "loadavg": os.getloadavg()[0], **result}, indent=2))


if __name__ == "__main__":
    main()
