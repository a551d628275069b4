"""`kefu-pulse report --format table`: the date-range report as tables for people."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from streams.contract.report import TEAM, Report, ReportRow, ReportTotals
from streams.render.columns import ReportColumn, Subject, report_columns
from streams.render.floor_table import plain
from streams.render.formats import WIDE_TERMINAL


def _label(subject: Subject) -> str:
    if isinstance(subject, ReportRow):
        return subject.name or subject.agent
    return TEAM


def _shop_line(columns: Sequence[ReportColumn], totals: ReportTotals) -> str:
    # The shop's orders belong to no agent: a line under the table rather than four columns
    # that would be empty on every row but one.
    return " · ".join(f"{c.zh} {c.display(c.value(totals))}" for c in columns if c.team_only)


def _fold(header: str, lines: int) -> str:
    cut = -(-len(header) // lines)
    return "\n".join(header[i : i + cut] for i in range(0, len(header), cut))


def _layout(
    columns: Sequence[ReportColumn], cells: Sequence[list[str]], room: int
) -> list[tuple[int, str, int]]:
    """(index, header, width) of the columns to show: the compact ones, then any others that fit,
    with headers on two lines when one line leaves some out. Widths are fixed here because rich
    would cut the last columns off without a word, or fold a number."""
    for lines in (1, 2):
        headers = [_fold(c.zh, lines) for c in columns]
        widths = [max(map(cell_len, [*h.split("\n"), *v])) for h, v in zip(headers, cells, strict=True)]
        # + 3 for each column's padding and border
        left = room - sum(w + 3 for c, w in zip(columns, widths, strict=True) if c.compact)
        kept = []
        for i, column in enumerate(columns):
            if not column.compact:
                if widths[i] + 3 > left:
                    continue
                left -= widths[i] + 3
            kept.append((i, headers[i], widths[i]))
        if len(kept) == len(columns) and left >= 0:
            break
    return kept


def _table(
    title: str | Text,
    columns: Sequence[ReportColumn],
    agents: Sequence[ReportRow],
    totals: ReportTotals,
    width: int,
) -> Table:
    subjects: list[Subject] = [*agents, totals]
    labels = [_label(s) for s in subjects]
    metrics = [c for c in columns if c.kind != "text" and not c.team_only]
    cells = [[c.display(c.value(s)) for s in subjects] for c in metrics]
    layout = _layout(metrics, cells, width - max(map(cell_len, [*labels, "客服"])) - 4)
    table = Table(title=title, caption=_shop_line(columns, totals), caption_justify="left")
    table.add_column("客服", no_wrap=True)
    for _, header, column_width in layout:
        table.add_column(header, justify="right", no_wrap=True, width=column_width)
    for row, label in enumerate(labels):
        team = row == len(labels) - 1
        if team:
            table.add_section()
        table.add_row(plain(label), *(cells[i][row] for i, _, _ in layout), style="bold" if team else None)
    return table


def report_table(report: Report, *, by_day: bool, width: int) -> list[Table]:
    """The range's table, then with `by_day` one table per day; fewer columns below 120 columns."""
    wide = width >= WIDE_TERMINAL
    columns = [c for c in report_columns(report.response_targets_seconds) if c.compact or c.team_only or wide]
    span = report.from_ if report.from_ == report.to else f"{report.from_} ~ {report.to}"
    title = plain(f"{report.name or report.shop} ({report.shop}) · {span}")
    tables = [_table(title, columns, report.agents, report.totals, width)]
    if by_day:
        tables += [_table(day.day, columns, day.agents, day.totals, width) for day in report.days]
    return tables
