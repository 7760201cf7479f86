"""Peak memory of one ``Detector`` call: label map only (the default) vs probabilities copied out.

The peer is ``return_probabilities=True``, which is what every call did before (the per-class
probabilities, 4 bytes x classes x pixels, copied into the result). Each side runs in a fresh process
and reports its peak RSS (``ru_maxrss``) above the RSS after loading the model and the image.

    python tests/benchmarks/bench_result_memory.py [--side 2048] [--model segformer-tiny]

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from diffseg30k.detector import Detector
from diffseg30k.models.registry import build_model
from diffseg30k.training.checkpoints import export_detector
from pathlib import Path
folder, side, keep, model = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
if not (folder / "config.json").exists():
    torch.manual_seed(0)
    export_detector(build_model(model, crop_size=64), folder, {})
detector = Detector.from_pretrained(folder, device="cpu", tile_size=max(side, 1024))
image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
detector(image[:64, :64], return_probabilities=keep)  # warm-up
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
result = detector(image, return_probabilities=keep)
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
held = 0 if result.probabilities is None else result.probabilities.nbytes
print(json.dumps({"peak_rss_mib": round(peak / 1024, 1), "above_load_mib": round((peak - base) / 1024, 1),
                  "probabilities_held_mib": round(held / 2**20, 1), "wall_s": round(wall, 2)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=2048)
    parser.add_argument("--model", default="segformer-tiny")
    args = parser.parse_args()
    folder = os.path.join(tempfile.mkdtemp(prefix="bench-result-"), "ckpt")
    results = {}
    for name, keep in (("default", "0"), ("peer_return_probabilities", "1"), ("default_again", "0")):
        done = subprocess.run([sys.executable, "-c", CHILD, folder, str(args.side), keep, args.model],
                              capture_output=True, text=True, check=True)
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    ours, peer = results["default_again"], results["peer_return_probabilities"]
    print(json.dumps({"image": f"{args.side}x{args.side}", "model": args.model, "results": results,
                      "peak_rss_ratio_peer_over_default": round(peer["peak_rss_mib"] / ours["peak_rss_mib"],
                                                                2),
                      "load_average": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
