"""The paper's tables, one module each: title, paper numbers, requirements, run and render.

A module here defines a :class:`PaperTable` and passes it to :func:`register_table`; the benchmark
plan (its step), the report (its section and renderer) and results.json (its reference numbers)
are all built from the registered tables, so a new table is one new module. The paper numbers are
a required field: a table without them fails when its module is imported, not at report time.

A report table that is *not* in the paper (no reference numbers, e.g. generalisation to other
datasets) is a :class:`ReportTable` passed to :func:`register_report_table` from its own module,
listed in :data:`REPORT_TABLES`'s ``package``; :func:`report_tables` gives both kinds in plan order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from diffseg30k.experiments.plan import PlanContext, Step
from diffseg30k.experiments.steps import STEPS
from diffseg30k.registry import Registry

__all__ = [
    "REPORT_TABLES",
    "TABLES",
    "PaperTable",
    "ReportTable",
    "paper_tables",
    "register_report_table",
    "register_table",
    "report_tables",
]


@dataclass(frozen=True)
class PaperTable:
    """One table of the paper as a benchmark step and a report section.

    ``paper`` holds the paper's numbers keyed as the rows are (family -> setting -> metric key);
    ``run(ctx) -> {"rows": [...], ...}`` computes ours; ``render(results) -> markdown lines`` draws
    the section from every step's results; ``number`` orders tables in the plan and the report.
    """

    name: str
    number: int
    title: str
    step_title: str
    paper: dict[str, Any]
    run: Callable[[PlanContext], dict[str, Any]]
    render: Callable[[dict[str, Any]], list[str]]
    requires: tuple[str, ...] = ("tab2",)
    #: ``trainings(ctx) -> [TrainingJob, ...]``: the detectors its ``run`` trains, so the ``train``
    #: step can train them side by side first (None: it trains none).
    trainings: Callable[[PlanContext], list[Any]] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.paper, dict) or not self.paper:
            raise ValueError(
                f"table {self.name!r}: paper numbers are missing (the reference to compare with)"
            )
        if not self.title or not self.step_title:
            raise ValueError(f"table {self.name!r}: a title and a step title are required")

    @property
    def order(self) -> float:
        return 10.0 * self.number

    @property
    def step(self) -> Step:
        return Step(self.name, self.step_title, self.run, tuple(self.requires), order=self.order)


@dataclass(frozen=True)
class ReportTable:
    """A report table with no paper counterpart (so no reference numbers) as a benchmark step.

    ``order`` places its step among the others (Tab. N is ``10 N``, ``figures`` 1000) and its section
    among the tables; ``forget_stale(plan, config)``, when given, drops a finished record that inputs
    outside the config fingerprint have made stale (called before the plan runs).
    """

    name: str
    order: float
    title: str
    step_title: str
    run: Callable[[PlanContext], dict[str, Any]]
    render: Callable[[dict[str, Any]], list[str]]
    requires: tuple[str, ...] = ("tab2",)
    forget_stale: Callable[[Any, Any], None] | None = None
    #: No paper numbers, by definition (results.json's ``paper`` lists the paper tables only).
    paper: ClassVar[None] = None

    def __post_init__(self) -> None:
        if not self.title or not self.step_title:
            raise ValueError(f"table {self.name!r}: a title and a step title are required")

    @property
    def step(self) -> Step:
        return Step(self.name, self.step_title, self.run, tuple(self.requires), order=self.order)


#: Every paper table, in table-number order.
TABLES: Registry[PaperTable] = Registry(
    "paper table",
    package="diffseg30k.experiments.tables",
    describe=lambda table: table.title,
    sort_key=lambda name, table: (table.number, name),
)

#: Every report table that is not a paper table, in order.
REPORT_TABLES: Registry[ReportTable] = Registry(
    "report table",
    package=("diffseg30k.experiments.families", "diffseg30k.experiments.cross_dataset"),
    describe=lambda table: table.title,
    sort_key=lambda name, table: (table.order, name),
)


def register_table(table: PaperTable) -> PaperTable:
    """Register ``table`` and its benchmark step; returns it."""
    TABLES.register(table)
    STEPS.register(table.step, name=table.name)
    return table


def register_report_table(table: ReportTable) -> ReportTable:
    """Register a non-paper ``table`` and its benchmark step; returns it."""
    if table.name in TABLES:
        raise ValueError(f"report table {table.name!r}: a paper table has that name")
    REPORT_TABLES.register(table)
    STEPS.register(table.step, name=table.name)
    return table


def paper_tables() -> list[PaperTable]:
    """The registered paper tables, in order."""
    return TABLES.values()


def report_tables() -> list[PaperTable | ReportTable]:
    """Every table of the report, paper tables and the others, in plan order."""
    both: list[PaperTable | ReportTable] = [*TABLES.values(), *REPORT_TABLES.values()]
    return sorted(both, key=lambda table: (table.order, table.name))
