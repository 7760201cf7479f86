"""Generation shared among local worker processes (``GenerationConfig.workers``): on a CPU machine
without ``accelerate launch``, e.g. the benchmark's mini data on 2 cores. Each process takes every
``workers``-th planned sample, exactly as accelerate's processes do, so the output is byte-identical
to a one-process run; the parent assembles ``metadata.jsonl`` when all have finished.

The workers are ``python -m diffseg30k.generation.worker_main CONFIG INDEX`` subprocesses (not
``multiprocessing``, which would re-run the caller's ``__main__``), reading the run's arguments from a
JSON file beside the output. The pipeline hands in its own functions, so this module does not import it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from diffseg30k.children import sigterm_raises
from diffseg30k.generation.plan import GenerationConfig
from diffseg30k.io import atomic_write_text

LOG = logging.getLogger(__name__)
ARGUMENTS_FILE = ".workers-config.json"


def _to_json(config: GenerationConfig) -> str:
    values = dataclasses.asdict(config)
    return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in values.items()})


def read_arguments(path: str | Path) -> GenerationConfig:
    """The :class:`GenerationConfig` a worker was handed (written by :func:`generate_with_workers`)."""
    values = json.loads(Path(path).read_text(encoding="utf-8"))
    for name in ("editors", "turn_weights", "captions", "exemplar_images"):
        if values.get(name) is not None:
            values[name] = tuple(values[name])
    if values.get("source"):
        values["source"] = Path(values["source"])
    return GenerationConfig(**values)


def generate_with_workers(config: GenerationConfig,
                          run_share: Callable[[GenerationConfig, int, int, str], None],
                          prepare_output: Callable[[GenerationConfig], None],
                          assemble: Callable[[Path], int]) -> Path:
    """Run ``config.workers`` processes (this one takes share 0) and assemble; the caller holds the
    output lock. A worker that fails raises here after this share ends (finished samples stay, so a
    rerun resumes); an interruption here stops the workers too."""
    prepare_output(config)
    arguments = config.out / ARGUMENTS_FILE
    atomic_write_text(arguments, _to_json(config))
    command = [sys.executable, "-m", "diffseg30k.generation.worker_main", str(arguments)]
    children: list[subprocess.Popen] = []
    try:
        with sigterm_raises():
            for index in range(1, config.workers):
                children.append(subprocess.Popen([*command, str(index)]))
            run_share(config, 0, config.workers, config.device or "cpu")
            codes = [child.wait() for child in children]
    except BaseException:  # failed or interrupted here: stop the workers too (finished samples stay)
        for child in children:
            child.terminate()
        for child in children:
            child.wait()
        raise
    failed = [f"generate[{index}] (exit code {code})" for index, code in enumerate(codes, 1) if code]
    if failed:
        raise RuntimeError(f"{config.out}: generation worker {', '.join(failed)} failed (its error is "
                           "printed above); finished samples are kept: rerun to resume")
    arguments.unlink(missing_ok=True)
    kept = assemble(config.out)
    LOG.info("generated %d of %d samples into %s with %d processes", kept, config.num_images, config.out,
             config.workers)
    return config.out
