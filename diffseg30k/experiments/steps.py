"""The benchmark's step registry: ``data``, one step per paper table, ``figures`` (``report`` last).

Tables register their step through :func:`diffseg30k.experiments.tables.register_table` (paper
tables) or :func:`~diffseg30k.experiments.tables.register_report_table` (others: ``families`` in
:mod:`diffseg30k.experiments.families`, ``cross`` in :mod:`diffseg30k.experiments.cross_dataset`);
the data and figures steps register in :mod:`diffseg30k.experiments.benchmark`. Steps run in ``order``.
"""

from __future__ import annotations

from diffseg30k.experiments.plan import Step
from diffseg30k.registry import Registry

__all__ = ["STEPS", "plan_steps"]

#: Every step of the benchmark plan, in run order.
STEPS: Registry[Step] = Registry(
    "benchmark step",
    package=(
        "diffseg30k.experiments.benchmark",
        "diffseg30k.experiments.trainings",
        "diffseg30k.experiments.tables",
        "diffseg30k.experiments.families",
        "diffseg30k.experiments.cross_dataset",
    ),
    describe=lambda step: step.title + (f"  (needs {', '.join(step.requires)})" if step.requires else ""),
    sort_key=lambda name, step: (step.order, name),
)


def plan_steps() -> tuple[Step, ...]:
    """The registered steps in run order (what :func:`~diffseg30k.experiments.benchmark.build_plan` runs)."""
    return tuple(STEPS.values())
