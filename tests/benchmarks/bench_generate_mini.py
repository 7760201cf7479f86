"""Mini-profile generation speed (samples/minute on this CPU) against two peers, each in a fresh process.

* ``ours``: ``diffseg30k.generation.pipeline.generate`` (mini profile, 1 torch thread): every step
  written atomically and resumable.
* ``naive``: the same sample plans, regions, prompts and editor calls in a plain in-memory loop
  (no per-step files, no resume) -- what the orchestration costs on top of the models.
* ``ours-2threads``: ours with torch's default of 2 threads on 2 cores (why the mini profile pins 1).
* ``ours-2workers``: ours with ``workers=2`` (two local processes of 1 thread each, the benchmark's
  data step on 2 cores); its output must be byte-identical to ``ours`` (``same_bytes``).

    python tests/benchmarks/bench_generate_mini.py [--num 60] [--size 128] [--skip-threads]

Prints one JSON object: wall seconds (imports and tiny-model builds included), samples/minute,
ratios to ours, and the load average at the start (the machine is shared).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

OURS = """
import sys, time
t = time.perf_counter()
from diffseg30k.generation.pipeline import GenerationConfig, generate
from diffseg30k.generation.mini import read_metadata
out = generate(GenerationConfig(out=sys.argv[1], profile="mini", num_images=int(sys.argv[2]), seed=0,
                                size=int(sys.argv[3]), threads=int(sys.argv[4]), progress=False,
                                workers=int(sys.argv[5]) if len(sys.argv) > 5 else 1))
print(time.perf_counter() - t, len(read_metadata(out)))
"""

NAIVE = """
import sys, time
t = time.perf_counter()
import numpy as np, torch
torch.set_num_threads(1)
from diffseg30k.generation.composite import composite, fit_square
from diffseg30k.generation.editors.base import EditRequest
from diffseg30k.generation.profiles import MINI
from diffseg30k.generation.pipeline import GenerationConfig, plans_for
from diffseg30k.generation.prompts import TemplatePromptWriter
from diffseg30k.generation.regions import ShapeProposer, choose_regions
cfg = GenerationConfig(out=sys.argv[1], profile="mini", num_images=int(sys.argv[2]), seed=0,
                       size=int(sys.argv[3]))
editors, writer, proposer, done = {}, TemplatePromptWriter(), ShapeProposer(), 0
def editor(name):
    if name not in editors:
        editors[name] = MINI.editor(name)
        editors[name].load()
    return editors[name]
for plan in plans_for(cfg):
    if plan.base == "real":
        image = fit_square(MINI.varied_photo(plan.source, np.random.default_rng(plan.base_seed)), cfg.size)
    else:
        base = editor(plan.base_editor).text_to_image(plan.source, plan.base_seed, cfg.size)
        image = fit_square(base, cfg.size)
    rng = np.random.default_rng(plan.region_seed)
    for turn, region in enumerate(choose_regions(proposer.propose(image, rng), len(plan.editors), rng)):
        step = writer.write(image, region.mask, region.label, plan.edit_types[turn],
                            np.random.default_rng(plan.seeds[turn]))
        ed = editor(plan.editors[turn])
        if step.removal_prompt:
            removed = ed.inpaint(EditRequest(image, region.mask, step.removal_prompt, 1, edit_type="removal"))
            image = composite(image, removed, region.mask)
        request = EditRequest(image, region.mask, step.prompt, 2, edit_type=step.edit_type)
        image = composite(image, ed.inpaint(request), region.mask)
    done += 1
print(time.perf_counter() - t, done)
"""


def _run(code: str, *args: str) -> tuple[float, int]:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                            check=True)
    seconds, samples = result.stdout.strip().splitlines()[-1].split()
    return float(seconds), int(samples)


def _digest(folder: str) -> str:
    """sha256 over the release's files (names and bytes)."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and not name.startswith("."):
            digest.update(name.encode())
            with open(path, "rb") as fh:
                digest.update(fh.read())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=60)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--skip-threads", action="store_true", help="skip the 2-thread peer (slow when busy)")
    args = parser.parse_args()
    report: dict[str, object] = {"num": args.num, "size": args.size, "cpus": os.cpu_count(),
                                 "load_average_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"ours": (OURS, f"{tmp}/ours", ("1",)), "naive": (NAIVE, f"{tmp}/naive", ()),
                "ours-2workers": (OURS, f"{tmp}/ours2w", ("1", "2"))}
        if not args.skip_threads:
            runs["ours-2threads"] = (OURS, f"{tmp}/ours2", ("2",))
        for name, (code, out, extra) in runs.items():
            start = time.perf_counter()
            seconds, samples = _run(code, out, str(args.num), str(args.size), *extra)
            report[name] = {"wall_s": round(seconds, 1), "samples": samples,
                            "samples_per_min": round(60 * samples / seconds, 1),
                            "process_s": round(time.perf_counter() - start, 1)}
        report["same_bytes"] = _digest(f"{tmp}/ours") == _digest(f"{tmp}/ours2w")
    ours = report["ours"]["wall_s"]
    for name in ("naive", "ours-2threads", "ours-2workers"):
        if name in report:
            report[f"{name}_over_ours_time"] = round(report[name]["wall_s"] / ours, 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
