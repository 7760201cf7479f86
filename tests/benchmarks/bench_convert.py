"""Conversion speed and peak memory: ``diffseg30k.data.convert`` vs a naive ``datasets`` peer.

The peer is what a user would write by hand: ``Dataset.from_dict`` of file paths, cast to ``Image``,
embed the files (``embed_table_storage``, as ``push_to_hub`` does) and ``to_parquet`` -- no
validation, no mask normalisation. Each measurement runs in a fresh process (peak RSS is its own).

    python tests/benchmarks/bench_convert.py [--pairs-512 300] [--pairs-1024 100] [--scale-1024 1000]

Prints one JSON object: pairs/s and peak RSS (MiB) per size for both, the speed ratio, and a
memory-scaling run (10x the pairs at 1024^2: peak RSS stays flat because conversion streams), and
the in-process cost per image of ``--verify fast`` with and without the IDAT zlib inflate.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _make_release(root: Path, num: int, size: int, unique: int = 40) -> Path:
    """``num`` pairs: ``unique`` synthetic ones, the rest hard links to them under new ids (cheap)."""
    from diffseg30k.data.synthetic import write_synthetic_release

    folder = write_synthetic_release(root, num=min(num, unique), size=(size, size), split="train")
    for k in range(unique, num):
        for kind in ("image", "mask"):
            os.link(folder / f"{k % unique + 1:08d}.{kind}.png", folder / f"{k + 1:08d}.{kind}.png")
    return folder


def _ours(source: Path, out: Path, workers: int, verify: str = "fast") -> None:
    from diffseg30k.data.convert import convert

    convert([source], out, workers=workers, progress=False, verify=verify)


def _peer(source: Path, out: Path, workers: int) -> None:
    import datasets
    from datasets.table import embed_table_storage

    images = sorted(str(p) for p in source.glob("*.image.png"))
    masks = [p.replace(".image.png", ".mask.png") for p in images]
    ids = [Path(p).name.split(".")[0] for p in images]
    ds = datasets.Dataset.from_dict({"id": ids, "image": images, "mask": masks})
    ds = ds.cast_column("image", datasets.Image()).cast_column("mask", datasets.Image())
    ds = ds.with_format("arrow").map(embed_table_storage, batched=True, num_proc=None).with_format(None)
    out.mkdir(parents=True)
    ds.to_parquet(str(out / "train-00000-of-00001.parquet"))


def _worker(kind: str, source: str, out: str, workers: int) -> None:
    import datasets  # noqa: F401  (imports are not conversion time)
    import pyarrow.parquet  # noqa: F401

    import diffseg30k.data.convert  # noqa: F401

    started = time.perf_counter()
    if kind == "peer":
        _peer(Path(source), Path(out), workers)
    else:
        _ours(Path(source), Path(out), workers, verify="full" if kind == "ours_full" else "fast")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mib": round(peak, 1)}))


def _measure(kind: str, source: Path, num: int, workers: int, scratch: Path) -> dict:
    out = scratch / f"out-{kind}"
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run([sys.executable, __file__, "--worker", kind, str(source), str(out), str(workers)],
                          capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["pairs_per_s"] = round(num / result.pop("seconds"), 1)
    result["output_mib"] = round(sum(p.stat().st_size for p in out.rglob("*.parquet")) / 2**20, 1)
    shutil.rmtree(out, ignore_errors=True)
    return result


def _fast_verify_cost(source: Path, rounds: int = 3) -> dict:
    """In-process cost of ``--verify fast`` per image: CRC/structure only vs. also inflating the IDAT
    zlib stream (the peer), on the same files, best of ``rounds``."""
    import inspect

    from diffseg30k.data.decode import check_png

    images = [p.read_bytes() for p in sorted(source.glob("*.image.png"))[:40]]
    has_inflate = "inflate" in inspect.signature(check_png).parameters
    result = {}
    for name, kwargs in (("structure_crc", {"inflate": False} if has_inflate else {}),
                         ("structure_crc_zlib", {"inflate": True} if has_inflate else None)):
        if kwargs is None:
            continue
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            for data in images:
                check_png(data, "bench", **kwargs)
            best = min(best, (time.perf_counter() - started) / len(images))
        result[name] = {"ms_per_image": round(best * 1e3, 3), "images_per_s": round(1 / best, 1)}
    if len(result) == 2:
        result["zlib_cost_ms"] = round(result["structure_crc_zlib"]["ms_per_image"]
                                       - result["structure_crc"]["ms_per_image"], 3)
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs-512", type=int, default=300)
    parser.add_argument("--pairs-1024", type=int, default=100)
    parser.add_argument("--scale-1024", type=int, default=1000,
                        help="pairs of the memory-scaling run (ours only): peak RSS must not grow with it")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    report: dict = {"uptime": os.getloadavg(), "workers": args.workers,
                    "peer": "datasets from_dict + Image + embed + to_parquet"}
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp:
        scratch = Path(tmp)
        for size, num in ((512, args.pairs_512), (1024, args.pairs_1024)):
            source = _make_release(scratch / f"src{size}", num, size)
            ours = _measure("ours", source, num, args.workers, scratch)
            full = _measure("ours_full", source, num, args.workers, scratch)
            peer = _measure("peer", source, num, args.workers, scratch)
            report[f"{size}px"] = {"pairs": num, "ours": ours, "ours_verify_full": full, "peer": peer,
                                   "speed_ratio": round(ours["pairs_per_s"] / peer["pairs_per_s"], 2),
                                   "fast_verify_cost": _fast_verify_cost(source)}
            shutil.rmtree(source.parent, ignore_errors=True)
        if args.scale_1024:
            source = _make_release(scratch / "scale", args.scale_1024, 1024)
            report["1024px_memory_scaling"] = {"pairs": args.scale_1024,
                                               "ours": _measure("ours", source, args.scale_1024,
                                                                args.workers, scratch)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
