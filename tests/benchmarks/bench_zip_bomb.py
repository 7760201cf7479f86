"""Peak RSS of `diffseg30k convert` on a zip bomb (issue 11 item 3); prints JSON.

The archive (~4.5 MB) holds PNG-looking pairs whose image members inflate to ~900 MiB each (under the
per-member cap of 1 GiB) plus one honest pair; each run converts it with ``--on-error skip`` in a fresh
process and reads that process's peak resident memory from ``wait4``. The peer: the same command on a
4-pair honest release of the same image size (the memory a normal conversion needs).

    PYTHONPATH=$PWD python tests/benchmarks/bench_zip_bomb.py [--workers 1 4 16] [--members 5]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

CHUNK = 16 << 20


def _png_header(width: int, height: int) -> bytes:
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + len(ihdr).to_bytes(4, "big") + chunk + zlib.crc32(chunk).to_bytes(4, "big")


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def build_bomb(path: Path, members: int, member_bytes: int) -> None:
    """``members`` bomb pairs (image member: a PNG header then zeros) and one honest pair."""
    zeros = bytes(CHUNK)
    mask = _png(np.zeros((64, 64), np.uint8))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for index in range(members):
            with archive.open(f"train/{index:08d}.image.png", "w", force_zip64=True) as handle:
                handle.write(_png_header(8192, 8192))
                for _ in range(member_bytes // CHUNK):
                    handle.write(zeros)
            archive.writestr(f"train/{index:08d}.mask.png", mask)
        image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
        archive.writestr(f"train/{members:08d}.image.png", _png(image))
        archive.writestr(f"train/{members:08d}.mask.png", mask)


def build_honest(path: Path) -> None:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(4):
            archive.writestr(f"train/{index:08d}.image.png",
                             _png(rng.integers(0, 255, (64, 64, 3), np.uint8)))
            archive.writestr(f"train/{index:08d}.mask.png", _png(np.zeros((64, 64), np.uint8)))


def peak_rss(source: Path, out: Path, workers: int) -> dict:
    """Run convert in a child process; its peak RSS (MB), seconds, exit status and last stderr line."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen([sys.executable, "-m", "diffseg30k", "convert", str(source), "--out",
                                  str(out), "--on-error", "skip", "--workers", str(workers), "--quiet"],
                                 stdout=log, stderr=log, env={**os.environ})
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not a maximum over children
        child.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    lines = output.decode(errors="replace").strip().splitlines()
    return {"workers": workers, "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "rc": child.returncode,
            "seconds": round(time.perf_counter() - started, 2), "last_line": lines[-1][:200] if lines else ""}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--member-mib", type=int, default=896)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-zip-bomb-"))
    bomb, honest = root / "train.zip", root / "honest" / "train.zip"
    honest.parent.mkdir()
    build_bomb(bomb, args.members, args.member_mib << 20)
    build_honest(honest)
    results = {"zip_bytes": bomb.stat().st_size, "inflated_bytes": args.members * (args.member_mib << 20),
               "uptime": os.getloadavg(), "runs": []}
    results["peer_honest"] = peak_rss(honest, root / "out-honest", 4)
    for workers in sorted(args.workers):
        results["runs"].append(peak_rss(bomb, root / f"out-{workers}", workers))
    for run in results["runs"]:
        run["ratio_to_peer"] = round(run["peak_rss_mb"] / results["peer_honest"]["peak_rss_mb"], 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
