"""Benchmark 16c: the 8x8 block DCT as a fixed strided convolution, and dctfreq-tiny on ONNX Runtime.

1. Block DCT of a (1, 3, S, S) image: the model's ``BlockDCT.coefficients`` (one conv, 64 filters,
   stride 8) against two peers computing the same coefficients -- ``scipy.fft.dctn`` on the 8x8
   blocks (pocketfft, the FFT route) and a separable ``einsum`` (D X D^T per block) -- with the
   largest difference to scipy.
2. ``Detector`` latency of dctfreq-tiny (random init) per image, torch vs ``runtime="onnx"``.

One torch thread (ONNX Runtime: one intra-op thread); medians of ``--repeats``; prints JSON with the
ratios to the named peer measured in the same run and the load average.

    python tests/benchmarks/bench_dct_export.py [--sizes 256,512] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def median_ms(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``run()`` in milliseconds (one warm-up call)."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 3)


def dct_peers(size: int, repeats: int) -> dict[str, float]:
    """Block-DCT timings (ms) of the conv, scipy.fft.dctn and einsum routes, and their max difference."""
    from scipy.fft import dctn

    from diffseg30k.models.dct_frequency import BlockDCT, dct_matrix

    x = torch.randn(1, 3, size, size)
    block = BlockDCT(low_band=4)
    n = size // 8
    one_d = dct_matrix().float()

    def scipy_route() -> np.ndarray:
        blocks = x.numpy().reshape(1, 3, n, 8, n, 8).transpose(0, 1, 2, 4, 3, 5)
        return dctn(blocks, type=2, norm="ortho", axes=(-2, -1))

    def einsum_route() -> torch.Tensor:
        blocks = x.reshape(1, 3, n, 8, n, 8)
        return torch.einsum("ux,bcixjy,vy->bcijuv", one_d, blocks, one_d)

    with torch.no_grad():
        conv = block.coefficients(x).reshape(1, 3, 8, 8, n, n).permute(0, 1, 4, 5, 2, 3).numpy()
        difference = float(np.abs(conv - scipy_route()).max())
        einsum_difference = float(np.abs(einsum_route().numpy() - scipy_route()).max())
        timings = {"conv_ms": median_ms(lambda: block.coefficients(x), repeats),
                   "scipy_dctn_ms": median_ms(scipy_route, repeats),
                   "einsum_ms": median_ms(einsum_route, repeats)}
    return {**timings, "max_abs_diff_conv_vs_scipy": difference,
            "max_abs_diff_einsum_vs_scipy": einsum_difference,
            "scipy_over_conv": round(timings["scipy_dctn_ms"] / timings["conv_ms"], 2),
            "einsum_over_conv": round(timings["einsum_ms"] / timings["conv_ms"], 2)}


def runtime_latency(sizes: list[int], repeats: int) -> dict[str, dict[str, float]]:
    """Detector latency (ms) of dctfreq-tiny on torch and ONNX Runtime at each size."""
    from diffseg30k.detector import Detector
    from diffseg30k.models.registry import build_model
    from diffseg30k.training.checkpoints import export_detector

    torch.manual_seed(0)
    folder = export_detector(build_model("dctfreq-tiny", crop_size=128), Path(tempfile.mkdtemp()) / "dct", {})
    torch_detector = Detector.from_pretrained(folder, device="cpu")
    onnx_detector = Detector.from_pretrained(folder, device="cpu", runtime="onnx")
    assert onnx_detector.runtime == "onnx", onnx_detector.runtime_note
    out = {}
    for size in sizes:
        image = np.random.default_rng(size).integers(0, 255, (size, size, 3), dtype=np.uint8)
        agree = float((torch_detector(image).label_map == onnx_detector(image).label_map).mean())
        torch_ms = median_ms(lambda image=image: torch_detector(image), repeats)
        onnx_ms = median_ms(lambda image=image: onnx_detector(image), repeats)
        out[str(size)] = {"torch_ms": torch_ms, "onnx_ms": onnx_ms,
                          "torch_over_onnx": round(torch_ms / onnx_ms, 2), "label_agreement": agree}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = [int(s) for s in args.sizes.split(",")]
    load_before = os.getloadavg()
    result = {"block_dct": {str(s): dct_peers(s, args.repeats) for s in sizes},
              "dctfreq_tiny_detector": runtime_latency(sizes, args.repeats),
              "threads": 1, "load_average_before": load_before, "load_average_after": os.getloadavg()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
