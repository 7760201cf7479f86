"""The README runs as written: its shell and Python blocks, in document order, in one fresh folder.

Convention for everyone editing README.md (read this before adding a snippet):

- Every fenced block tagged ``bash`` / ``sh`` / ``shell`` / ``console`` or ``python`` / ``py`` is run, in
  the order the README shows them, in ONE temporary working folder that looks like a fresh clone (the
  repository's top-level entries are linked into it), with ``HF_HUB_OFFLINE=1``. A block may use files
  an earlier block wrote, so write snippets that build on each other (e.g. ``demo-parquet`` from the
  data section, the ``runs/tiny`` training run) instead of paths nothing creates.
- Python blocks share one interpreter namespace, like one Python session (a later block may use a
  name an earlier block defined). Shell blocks run under ``bash -euo pipefail``; ``diffseg30k`` there
  is ``python -m diffseg30k`` of this checkout.
- A block that cannot run in CI -- a placeholder (``path/to/...``), a GPU run, a Hub upload, a server,
  an install, or anything too slow (the full benchmark) -- carries, on the line right before its
  opening fence, a visible, explained marker::

      <!-- readme-test: skip (GPU: the paper recipe on 4 GPUs) -->

  The reason in parentheses is required. Blocks tagged ``json``, ``bibtex``, ``text`` or untagged are
  never run. Keep runnable snippets tiny (``--max-steps 20``, a few images): the whole README runs in
  well under three minutes on two cores.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SHELL = {"bash", "sh", "shell", "console"}
PYTHON = {"python", "py"}
FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"<!--\s*readme-test:\s*(\w+)\s*(?:\((.*?)\))?\s*-->")


@dataclass
class Block:
    line: int
    lang: str
    code: str
    skip: str | None  # the marker's reason, None when the block runs


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text`` with their language and skip marker (raises on a bad marker)."""
    lines, blocks, k = text.splitlines(), [], 0
    while k < len(lines):
        match = FENCE.match(lines[k])
        if not match:
            k += 1
            continue
        start, lang = k, match.group(1).lower()
        end = next(j for j in range(k + 1, len(lines)) if lines[j].startswith("```"))
        previous = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.search(previous)
        skip = None
        if marker:
            if marker.group(1) != "skip" or not (marker.group(2) or "").strip():
                raise ValueError(f"README.md:{start}: marker {previous.strip()!r} must read "
                                 "'<!-- readme-test: skip (REASON) -->'")
            skip = marker.group(2).strip()
        blocks.append(Block(start + 1, lang, "\n".join(lines[start + 1:end]), skip))
        k = end + 1
    return blocks


def runnable(blocks: list[Block]) -> list[Block]:
    return [b for b in blocks if b.skip is None and b.lang in SHELL | PYTHON]


#: Runs in the fresh folder: Python blocks exec'd in one namespace, shell blocks through bash.
DRIVER = r'''
import json, subprocess, sys, time, traceback
blocks = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
prelude = "set -euo pipefail\ndiffseg30k() { python -m diffseg30k \"$@\"; }\n"
for block in blocks:
    started = time.perf_counter()
    print(f"=== README.md:{block['line']} ({block['lang']})", flush=True)
    if block["lang"] == "python":
        try:
            exec(compile(block["code"], f"README.md:{block['line']}", "exec"), namespace)
        except BaseException:
            traceback.print_exc()
            sys.exit(f"README.md:{block['line']}: the Python block failed")
    else:
        done = subprocess.run(["bash", "-c", prelude + block["code"]])
        if done.returncode:
            sys.exit(f"README.md:{block['line']}: the shell block exited {done.returncode}")
    print(f"=== README.md:{block['line']} ok in {time.perf_counter() - started:.1f} s", flush=True)
'''


def fresh_clone(folder: Path) -> None:
    """Link the checkout's top-level entries into ``folder`` (outputs land in ``folder`` only)."""
    for entry in ROOT.iterdir():
        if entry.name.startswith(".") or entry.name in {"README.md"} or (folder / entry.name).exists():
            continue
        if entry.is_dir() and entry.name not in {"diffseg30k", "tests", "spaces", "evaluate_metrics",
                                                  "dataset_script"}:
            continue  # build outputs and other checkouts' folders are not part of a clone
        (folder / entry.name).symlink_to(entry)


def test_markers_are_well_formed_and_most_blocks_run():
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    runs = runnable(blocks)
    assert len(runs) >= 12, [b.line for b in runs]
    for block in blocks:
        if block.skip is None and block.lang in SHELL | PYTHON:
            assert "path/to/" not in block.code, f"README.md:{block.line}: placeholder in a runnable block"
            assert "tests/benchmarks/" not in block.code, (
                f"README.md:{block.line}: benchmark scripts take minutes; mark the block skipped")
    with pytest.raises(ValueError, match="must read"):
        readme_blocks("<!-- readme-test: skip -->\n```bash\necho\n```\n")


def test_readme_snippets_run_in_order(tmp_path):
    blocks = runnable(readme_blocks(README.read_text(encoding="utf-8")))
    work = tmp_path / "clone"
    work.mkdir()
    fresh_clone(work)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "TQDM_DISABLE": "1", "MPLBACKEND": "Agg"}
    payload = json.dumps([{"line": b.line, "lang": "python" if b.lang in PYTHON else "bash", "code": b.code}
                          for b in blocks])
    done = subprocess.run([sys.executable, "-c", DRIVER], input=payload, cwd=work, env=env, text=True,
                          capture_output=True, timeout=600)
    log = done.stdout + done.stderr
    print("\n".join(line for line in done.stdout.splitlines() if line.startswith("=== ")))  # timings (-s)
    assert done.returncode == 0, log[-6000:]
    assert log.count(" ok in ") == len(blocks), log[-3000:]
