"""The ``train`` step: every detector the planned tables need, trained up to
``BenchmarkConfig.parallel_trainings`` at a time (CPU: each in its own ``python -m diffseg30k train
--config`` process with one torch thread), warm starts after the detectors they start from.

The tables then find their detectors done and reuse them; a table run without this step trains what
it misses itself, one at a time. A detector trained here is the same one the table would train:
the same :class:`~diffseg30k.training.config.TrainConfig`, written to its folder and read back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

from diffseg30k.experiments.artifacts import (
    TRAIN_CONFIG_FILE,
    PreparedTraining,
    TrainingJob,
    describe_training,
    prepare_training,
    run_training,
)
from diffseg30k.experiments.plan import PlanContext, Step, StepFailed
from diffseg30k.experiments.steps import STEPS
from diffseg30k.io import atomic_write_text

LOG_FILE = "train.log"


def planned_jobs(ctx: PlanContext) -> list[TrainingJob]:
    """The trainings of the tables this run will execute (``ctx.planned``), in plan order, once each."""
    from diffseg30k.experiments.tables import paper_tables

    planned = set(ctx.planned or ())
    jobs: dict[TrainingJob, None] = {}
    for table in paper_tables():
        if table.name in planned and table.trainings is not None:
            jobs.update(dict.fromkeys(table.trainings(ctx)))
    return list(jobs)


def waves(jobs: list[TrainingJob], cfg: Any) -> list[list[TrainingJob]]:
    """``jobs`` in rounds: a job runs in the round after the job it warm-starts from."""
    rounds: list[list[TrainingJob]] = []
    placed: dict[TrainingJob, int] = {}
    for job in sorted(jobs, key=lambda j: j.warm_start(cfg) is not None):
        start = job.warm_start(cfg)
        level = placed[start] + 1 if start in placed else 0
        placed[job] = level
        while len(rounds) <= level:
            rounds.append([])
        rounds[level].append(job)
    return rounds


def _launch(ctx: PlanContext, prepared: PreparedTraining, parallel: int) -> tuple[subprocess.Popen, Any]:
    """Start one training process (its config written to its folder, its output appended to its log);
    each gets its share of the cores unless the config fixes threads and workers."""
    from diffseg30k import threads

    config = prepared.config
    config = replace(config, progress=False,
                     threads=config.threads or threads.torch_threads(parallel),
                     num_workers=threads.loader_workers(parallel) if config.num_workers is None
                     else config.num_workers)
    path = prepared.folder / TRAIN_CONFIG_FILE
    atomic_write_text(path, json.dumps(config.to_json_dict(), indent=2))
    ctx.log(describe_training(prepared) + f" in a subprocess (log: {prepared.folder / LOG_FILE})")
    log = open(prepared.folder / LOG_FILE, "a", encoding="utf-8")  # noqa: SIM115 (closed when it exits)
    log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} diffseg30k train --config {path}\n")
    log.flush()
    try:
        return subprocess.Popen([sys.executable, "-m", "diffseg30k", "train", "--config", str(path)],
                                stdout=log, stderr=subprocess.STDOUT), log
    except BaseException:
        log.close()
        raise


def _log_tail(prepared: PreparedTraining) -> str:
    return (prepared.folder / LOG_FILE).read_text(encoding="utf-8", errors="replace")[-2000:]


def train_concurrently(ctx: PlanContext, pending: list[PreparedTraining], parallel: int) -> list[str]:
    """Train ``pending`` with at most ``parallel`` processes at once; returns the keys trained. A failed
    training raises with the end of its log; on any error, Ctrl-C or SIGTERM every running training is
    stopped (each resumes from its folder on the next run)."""
    from tqdm.auto import tqdm

    from diffseg30k.children import sigterm_raises

    queue, running, trained = list(pending), [], []
    try:
        with sigterm_raises(), tqdm(total=len(pending), desc="train", unit="detector") as bar:
            while queue or running:
                while queue and len(running) < parallel:
                    prepared = queue.pop(0)
                    running.append((prepared, *_launch(ctx, prepared, parallel)))
                time.sleep(0.2)
                for item in [r for r in running if r[1].poll() is not None]:
                    running.remove(item)
                    prepared, process, log = item
                    log.close()
                    if process.returncode != 0:
                        raise StepFailed(f"training {prepared.job.key} failed (exit {process.returncode}); "
                                         f"the end of {prepared.folder / LOG_FILE}:\n{_log_tail(prepared)}")
                    prepared.finish(prepared.folder / "best")
                    trained.append(prepared.job.key)
                    bar.update()
    finally:
        for _, process, log in running:
            process.terminate()
            process.wait()
            log.close()
    return trained


def step_train(ctx: PlanContext) -> dict[str, Any]:
    """Train every planned detector not trained yet, wave by wave; runs each time it is planned (cheap
    when all are done), so detectors that later steps add are trained side by side too."""
    cfg = ctx.config
    parallel = cfg.resolved_parallel_trainings()
    trained, reused = [], []
    for wave in waves(planned_jobs(ctx), cfg):
        pending = []
        for job in wave:
            prepared = prepare_training(ctx, job)
            (reused if prepared.marker.is_file() else pending).append(prepared)
        if parallel > 1 and cfg.launcher == "inprocess" and len(pending) > 1:
            trained += train_concurrently(ctx, pending, parallel)
            continue
        for prepared in pending:
            run_training(ctx, prepared)
            trained.append(prepared.job.key)
    return {"trained": trained, "reused": [p.job.key for p in reused], "parallel": parallel}


STEPS.register(Step("train", "detectors the planned tables need, trained side by side", step_train,
                    ("data",), order=5.0, rerun=True))
