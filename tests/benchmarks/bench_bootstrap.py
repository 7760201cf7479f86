"""Bootstrap CI speed: ``diffseg30k.experiments.scoring`` vs the naive peer, on the same pairs.

Ours computes each image's additive statistics once (``DiffSegMetric.pair_stats``) and scores every
resample by adding those statistics; the peer is what a user would write by hand: for each resample,
a fresh ``DiffSegMetric`` fed the resampled label maps with ``update``. Both give identical intervals
(checked here).

    python tests/benchmarks/bench_bootstrap.py [--images 200] [--size 256] [--resamples 100]

Prints one JSON object: seconds for both, the speed ratio, and whether the intervals agree.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _records(num: int, size: int):
    from diffseg30k.data.synthetic import synthetic_pair
    from diffseg30k.experiments.predictions import PredictionRecord

    rng = np.random.default_rng(0)
    out = []
    for k in range(num):
        _, ref = synthetic_pair(k, (size, size))
        pred = np.roll(ref, int(rng.integers(-3, 4)), axis=int(rng.integers(0, 2)))
        out.append(PredictionRecord(f"{k:08d}", pred, ref, float((pred > 0).mean())))
    return out


def naive(records, resamples: int, seed: int) -> dict[str, list[float]]:
    from diffseg30k.metrics import DiffSegMetric

    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {"semantic_miou": [], "binary_bf1": []}
    for _ in range(resamples):
        metric = DiffSegMetric(task="both")
        for i in rng.integers(0, len(records), len(records)):
            metric.update(records[i].prediction, records[i].reference, score=records[i].score)
        computed = metric.compute()
        for key in draws:
            draws[key].append(computed[key])
    return {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for k, v in draws.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--resamples", type=int, default=100)
    args = parser.parse_args()
    from diffseg30k.experiments.scoring import score_records

    records = _records(args.images, args.size)
    start = time.perf_counter()
    ours = score_records(records, "semantic", bootstrap=args.resamples, seed=0, progress=False)["ci"]
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    peer = naive(records, args.resamples, seed=0)
    peer_s = time.perf_counter() - start
    agree = all(np.allclose(ours[k], peer[k]) for k in peer)
    print(json.dumps({"images": args.images, "size": args.size, "resamples": args.resamples,
                      "ours_s": round(ours_s, 3), "naive_peer_s": round(peer_s, 3),
                      "speedup": round(peer_s / ours_s, 1), "intervals_agree": bool(agree)}, indent=2))


if __name__ == "__main__":
    main()
