"""Demo latency: one ``/predict`` request through the Gradio app vs calling the ``Detector`` directly.

The peer is the floor the demo wraps (``Detector(image)`` on the decoded array); the difference is the
app's own cost: upload, input normalisation, overlays, the mask PNG, the HTTP/queue round trip.

    python tests/benchmarks/bench_demo.py [--sizes 256 512 1024] [--repeats 5] [--threads 1]

Prints one JSON object: per image size the median milliseconds of both and their ratio.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import time
from pathlib import Path


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return round(statistics.median(times), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (measure: 2-core VMs oversubscribe)")
    args = parser.parse_args()

    import numpy as np
    import torch
    from gradio_client import Client, handle_file

    from diffseg30k.data.synthetic import synthetic_pair
    from diffseg30k.demo import build_app, launch_kwargs
    from diffseg30k.detector import Detector
    from diffseg30k.models.registry import build_model
    from diffseg30k.training.checkpoints import export_detector

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    checkpoint = export_detector(build_model("segformer-tiny", crop_size=64), work / "ckpt", {})
    detector = Detector.from_pretrained(checkpoint, device="cpu")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = build_app(str(checkpoint), detector=detector)
    app.launch(**{**launch_kwargs("127.0.0.1", port), "prevent_thread_lock": True, "quiet": True})
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    results = {}
    try:
        for size in args.sizes:
            image = synthetic_pair(size, (size, size))[0]
            path = work / f"{size}.png"
            image.save(path)
            pixels = np.asarray(image)
            direct = _median_ms(lambda pixels=pixels: detector(pixels), args.repeats)
            api = _median_ms(lambda path=path: client.predict(handle_file(str(path)), api_name="/predict"),
                             args.repeats)
            results[f"{size}x{size}"] = {"detector_ms": direct, "demo_api_ms": api,
                                         "ratio": round(api / direct, 2),
                                         "overhead_ms": round(api - direct, 1)}
    finally:
        app.close()
    print(json.dumps({"benchmark": "demo /predict vs Detector()", "model": "segformer-tiny (random init)",
                      "torch_threads": args.threads, "repeats": args.repeats, "results": results}, indent=2))


if __name__ == "__main__":
    main()
