"""A resumable plan of named steps: finished steps are recorded atomically and skipped on rerun.

Each step's record (``<out>/steps/<name>.json``) holds its result, wall time and the fingerprint of
the configuration it ran under; a record made under another configuration is stale and re-run. A
step whose requirements have no record runs them first, so every step can be asked for alone.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from diffseg30k.io import atomic_write_text


class StepFailed(RuntimeError):
    """A plan step raised; the message names the step and keeps the cause."""


@dataclass(frozen=True)
class Step:
    """One named unit of work: ``run(context) -> dict`` (JSON-serialisable result); ``order`` places
    it in a registered plan (:data:`diffseg30k.experiments.steps.STEPS`)."""

    name: str
    title: str
    run: Callable[[PlanContext], dict[str, Any]]
    requires: tuple[str, ...] = ()
    order: float = 0.0
    #: Run again whenever it is planned, even when recorded (a step that is cheap once its work is done
    #: and whose work depends on what else is planned, e.g. ``train``).
    rerun: bool = False


@dataclass
class PlanContext:
    """What a step sees: the output folder, the configuration and the finished steps' results."""

    out_dir: Path
    config: Any
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: Callable[[str], None] = print
    #: In-memory objects steps share within one process (loaded datasets, ...); never persisted.
    cache: dict[str, Any] = field(default_factory=dict)
    #: The steps this run executes (set by :meth:`Plan.run`), e.g. for the ``train`` step.
    planned: tuple[str, ...] = ()

    def result(self, step: str) -> dict[str, Any]:
        if step not in self.results:
            raise StepFailed(f"step {step!r} has no result yet")
        return self.results[step]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Plan:
    """An ordered set of steps sharing one output folder."""

    def __init__(self, steps: Iterable[Step], out_dir: str | Path, config: Any = None,
                 fingerprint: str = "", log: Callable[[str], None] = print) -> None:
        self.steps = {s.name: s for s in steps}
        self.out_dir = Path(out_dir)
        self.fingerprint = fingerprint
        self.context = PlanContext(self.out_dir, config, log=log)
        for step in self.steps.values():
            unknown = set(step.requires) - set(self.steps)
            if unknown:
                raise ValueError(f"step {step.name!r} requires unknown steps {sorted(unknown)}")

    @property
    def names(self) -> list[str]:
        return list(self.steps)

    def record_path(self, name: str) -> Path:
        return self.out_dir / "steps" / f"{name}.json"

    def record(self, name: str) -> dict[str, Any] | None:
        """The finished record of ``name`` under this configuration, or None."""
        path = self.record_path(name)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if record.get("status") != "done" or record.get("fingerprint") != self.fingerprint:
            return None
        return record

    def order(self, selected: Iterable[str] | None = None) -> list[str]:
        """Selected steps plus their unfinished requirements, in plan order."""
        wanted = list(self.steps) if selected is None else list(selected)
        unknown = [n for n in wanted if n not in self.steps]
        if unknown:
            raise ValueError(f"unknown steps {unknown}; the plan has {', '.join(self.steps)}")
        needed: set[str] = set()

        def visit(name: str, explicit: bool) -> None:
            if name in needed:
                return
            if not explicit and not self.steps[name].rerun and self.record(name) is not None:
                return
            needed.add(name)
            for req in self.steps[name].requires:
                visit(req, False)

        for name in wanted:
            visit(name, True)
        return [n for n in self.steps if n in needed]

    def run(self, selected: Iterable[str] | None = None, force: bool = False,
            progress: bool = True) -> dict[str, dict[str, Any]]:
        """Run the plan; returns every step record (finished earlier or now), keyed by name."""
        names = self.order(selected)
        self.context.planned = tuple(names)
        for name in self.steps:  # results of steps finished earlier feed later ones
            record = self.record(name)
            if record is not None:
                self.context.results[name] = record["result"]
        records: dict[str, dict[str, Any]] = {}
        bar = tqdm(names, desc="benchmark", unit="step", disable=not progress)
        for name in bar:
            bar.set_postfix_str(name)
            previous = self.record(name)
            if previous is not None and not force and not self.steps[name].rerun:
                self.context.log(f"[{name}] done earlier ({previous['wall_s']:.1f} s), reused")
                records[name] = {**previous, "reused": True}
                continue
            step = self.steps[name]
            self.context.log(f"[{name}] {step.title}")
            started, start = utc_now(), time.perf_counter()
            try:
                result = step.run(self.context)
            except Exception as err:
                self._write(name, {"status": "failed", "error": f"{type(err).__name__}: {err}",
                                   "traceback": traceback.format_exc(), "started": started,
                                   "wall_s": round(time.perf_counter() - start, 3)})
                raise StepFailed(f"step {name!r} failed: {err}") from err
            record = {"status": "done", "name": name, "title": step.title, "result": result,
                      "started": started, "finished": utc_now(),
                      "wall_s": round(time.perf_counter() - start, 3)}
            self._write(name, record)
            self.context.results[name] = result
            records[name] = {**record, "fingerprint": self.fingerprint, "reused": False}
            self.context.log(f"[{name}] finished in {record['wall_s']:.1f} s")
        for name in self.steps:
            if name not in records and (rec := self.record(name)) is not None:
                records[name] = {**rec, "reused": True}
        return {n: records[n] for n in self.steps if n in records}

    def _write(self, name: str, record: dict[str, Any]) -> None:
        atomic_write_text(self.record_path(name),
                          json.dumps({**record, "fingerprint": self.fingerprint}, indent=2, default=str))
