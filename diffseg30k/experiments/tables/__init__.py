"""The paper's tables, one module each: title, paper numbers, requirements, run and render.

A module here defines a :class:`PaperTable` and passes it to :func:`register_table`; the benchmark
plan (its step), the report (its section and renderer) and results.json (its reference numbers)
are all built from the registered tables, so a new table is one new module. The paper numbers are
a required field: a table without them fails when its module is imported, not at report time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from diffseg30k.experiments.plan import PlanContext, Step
from diffseg30k.experiments.steps import STEPS
from diffseg30k.registry import Registry

__all__ = ["TABLES", "PaperTable", "paper_tables", "register_table"]


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

    def __post_init__(self) -> None:
        if not isinstance(self.paper, dict) or not self.paper:
            raise ValueError(
                f"table {self.name!r}: paper numbers are missing (the reference to compare with)"
            )
        if not self.title or not self.step_title:
            raise ValueError(f"table {self.name!r}: a title and a step title are required")

    @property
    def step(self) -> Step:
        return Step(self.name, self.step_title, self.run, tuple(self.requires), order=10.0 * self.number)


#: Every paper table, in table-number order.
TABLES: Registry[PaperTable] = Registry(
    "paper table",
    package="diffseg30k.experiments.tables",
    describe=lambda table: table.title,
    sort_key=lambda name, table: (table.number, name),
)


def register_table(table: PaperTable) -> PaperTable:
    """Register ``table`` and its benchmark step; returns it."""
    TABLES.register(table)
    STEPS.register(table.step, name=table.name)
    return table


def paper_tables() -> list[PaperTable]:
    """The registered tables, in order."""
    return TABLES.values()
