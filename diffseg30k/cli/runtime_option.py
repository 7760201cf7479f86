"""The ``--runtime`` option shared by ``predict``, ``evaluate`` and ``demo`` (kept light: no torch import)."""

from __future__ import annotations

import argparse

#: Mirrors :data:`diffseg30k.models.runtimes.RUNTIMES` plus 'auto' (a test keeps them equal).
RUNTIME_CHOICES = ("torch", "onnx", "onnx-int8", "openvino", "auto")


def add_runtime_argument(parser: argparse.ArgumentParser, default: str = "torch") -> None:
    parser.add_argument("--runtime", default=default, choices=RUNTIME_CHOICES,
                        help=f"inference runtime (default: {default}): torch, or the model exported to "
                             "ONNX Runtime (fp32, int8) / OpenVINO on CPU, cached beside the checkpoint; "
                             "'auto' = the fastest installed; an unavailable runtime falls back to torch "
                             "with a message")
