"""Cross-dataset readers and foreign-prediction scoring speed, each against its peer in the same run.

- conversion: an IMDL-BenCo ManiDataset folder (JPEG images, JPEG 0/255 masks binarised at 127) vs the
  same pixels in DiffSeg30k's own layout (PNG pairs, label-map masks): the cost of binarising;
- scoring: ``evaluate --from-predictions DIR --dataset`` on a folder of 0/255 PNG masks (read, matched
  by name, written as a prediction set, scored) vs re-scoring that saved prediction set (the metric
  alone): the cost of reading foreign files.

    python tests/benchmarks/bench_foreign.py [--pairs 150] [--size 256]

Prints one JSON object (pairs/s and the ratios); run ``uptime`` beside it, the VM is shared.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _write(root: Path, pairs: int, size: int) -> tuple[Path, Path, Path]:
    """The same pairs as a ManiDataset folder, a DiffSeg30k folder and a folder of 0/255 predictions."""
    mani, own, preds = root / "mani", root / "own" / "test_copy", root / "preds"
    for folder in (mani / "Tp", mani / "Gt", own, preds):
        folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(pairs):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), np.uint8)
        top, left = rng.integers(0, size // 2, 2)
        mask[top:top + size // 3, left:left + size // 3] = 1
        Image.fromarray(pixels).save(mani / "Tp" / f"im{k:05d}.jpg", quality=90)
        Image.fromarray(mask * 255).convert("RGB").save(mani / "Gt" / f"im{k:05d}_gt.jpg", quality=75)
        Image.fromarray(pixels).save(own / f"{k + 1:08d}.image.png", compress_level=1)
        Image.fromarray(mask, "L").save(own / f"{k + 1:08d}.mask.png")
        Image.fromarray(mask * 255, "L").save(preds / f"im{k:05d}.png")
    return mani, own.parent, preds


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=150)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import datasets  # noqa: F401  (library imports are not conversion time)

    from diffseg30k.data.convert import convert, features
    from diffseg30k.experiments.cross_dataset import open_eval_dataset
    from diffseg30k.experiments.evaluation import score_prediction_set
    from diffseg30k.experiments.foreign_predictions import score_foreign

    features(False)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        mani, own, preds = _write(root, args.pairs, args.size)
        mani_s = _timed(lambda: convert([mani], root / "mani-out", workers=args.workers, progress=False,
                                        verify="full"))
        own_s = _timed(lambda: convert([own], root / "own-out", workers=args.workers, progress=False,
                                       verify="full"))
        data = open_eval_dataset(str(root / "mani-out"), progress=False)
        foreign_s = _timed(lambda: score_foreign(preds, data, root / "set"))
        rescore_s = _timed(lambda: score_prediction_set(root / "set"))
    n = args.pairs
    print(json.dumps({
        "pairs": n, "size": args.size, "workers": args.workers,
        "convert_mani_pairs_per_s": round(n / mani_s, 1),
        "convert_own_layout_pairs_per_s": round(n / own_s, 1),
        "convert_ratio_mani_vs_own": round(own_s / mani_s, 2),
        "score_foreign_pairs_per_s": round(n / foreign_s, 1),
        "rescore_set_pairs_per_s": round(n / rescore_s, 1),
        "score_ratio_foreign_vs_rescore": round(rescore_s / foreign_s, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
