"""The report's columns, one table for the CSV, the XLSX and the `report` CLI table.

Headers carry the Chinese name shops know from their performance tools and the field name of
`/api/v1/report`, so a payroll sheet and the API can be matched column by column. The metric
columns come from the one list in streams/render/formats.py, which `stats` reads too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from streams.contract.floor import WindowValues
from streams.contract.report import TEAM, ReportRow, ReportTotals
from streams.render.formats import (
    METRICS,
    TABLE_STYLE,
    Cell,
    Kind,
    Metric,
    headline_target,
    inserted_after,
    show,
    within,
)

Subject = ReportRow | ReportTotals  # an agent's row or the team row


@dataclass(frozen=True, slots=True)
class ReportColumn:
    zh: str
    en: str
    kind: Kind
    get: Callable[[Subject, WindowValues], Cell]
    compact: bool = False  # kept in a narrow terminal
    team_only: bool = False  # the shop's numbers: empty on agent rows

    @property
    def header(self) -> str:
        return f"{self.zh} {self.en}"

    def value(self, subject: Subject) -> Cell:
        return self.get(subject, subject.metrics)

    def display(self, value: Cell) -> str:
        """A value as people read it in a terminal: `1.09%`, `—` when absent."""
        return show(value, self.kind, TABLE_STYLE)


def _metric(metric: Metric) -> ReportColumn:
    # The English header is the field name, so one name both labels and reads the column.
    return ReportColumn(
        metric.zh, metric.key, metric.kind, lambda s, m: metric.read(m), metric.compact, metric.team_only
    )


def _agent(subject: Subject, metrics: WindowValues) -> Cell:
    return subject.agent if isinstance(subject, ReportRow) else TEAM


def _name(subject: Subject, metrics: WindowValues) -> Cell:
    return subject.name if isinstance(subject, ReportRow) else None


def report_columns(targets: Sequence[int]) -> list[ReportColumn]:
    """Every column in order; one replied-within column per response target of the shop, after
    the response times."""
    headline = headline_target(targets)
    targeted = [within(t, compact=t == headline) for t in targets]
    return [
        ReportColumn("客服 ID", "agent", "text", _agent, compact=True),
        ReportColumn("姓名", "name", "text", _name, compact=True),
        *(_metric(m) for m in inserted_after("response_avg_seconds", METRICS, targeted)),
    ]
