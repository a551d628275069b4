"""The report as CSV and XLSX bytes, for payroll spreadsheets (`report --format csv|xlsx`)."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime

from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from streams.contract.report import Report
from streams.render.columns import ReportColumn, Subject, report_columns
from streams.render.formats import Cell, Kind

DAY_HEADER = "日期 day"
SUMMARY_SHEET = "汇总"
# Excel's own number formats: the cell keeps the number, as a payroll formula needs it, and the
# format only shows it (formats.TABLE_STYLE's decimals, with the yuan sign).
NUMBER_FORMATS: dict[Kind, str] = {
    "count": "0",
    "percent": "0.00%",
    "seconds": "0.0",
    "money": "¥#,##0.00",
    "text": "@",
    "score": "0.00",
    "duration": "#,##0",  # seconds, as the header says (online_seconds): sums and pay rules stay simple
}
# Excel would run a text cell starting with one of these as a formula (CSV injection); agent
# ids and names come from the platform and the configuration, not from us.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Cell) -> Cell:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _sections(report: Report, by_day: bool) -> list[tuple[list[str], list[Subject]]]:
    if not by_day:
        return [([], [*report.agents, report.totals])]
    return [([d.day], [*d.agents, d.totals]) for d in report.days]


def report_csv(report: Report, *, by_day: bool) -> bytes:
    """Header row, then one row per agent and the team row; with `by_day` those of each day only,
    so summing a column in Excel does not count the range twice."""
    columns = report_columns(report.response_targets_seconds)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    lead = [DAY_HEADER] if by_day else []
    writer.writerow([*lead, *(c.header for c in columns)])
    for day, subjects in _sections(report, by_day):
        for subject in subjects:
            writer.writerow([*day, *(_csv_cell(c.value(subject)) for c in columns)])
    # The BOM makes Excel on Chinese Windows read UTF-8 instead of GBK.
    return out.getvalue().encode("utf-8-sig")


def _cells(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _width(column: ReportColumn, values: Sequence[Cell]) -> int:
    # Not worksheet.autofit(): it counts a CJK character as narrow as a Latin one and a number
    # by its full repr (0.9534883720930233 for a cell showing 95.35%). The header wraps at its
    # space, so its longest word sets the minimum.
    shown = [column.display(v) for v in values if v is not None]
    return max(_cells(part) for part in [*column.header.split(" "), *shown]) + 3


class _Sheets:
    def __init__(self, workbook: Workbook, columns: list[ReportColumn]) -> None:
        self.workbook = workbook
        self.columns = columns
        self.header = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top", "bottom": 1})
        self.formats = {
            (kind, bold): workbook.add_format({"num_format": fmt, "bold": bold})
            for kind, fmt in NUMBER_FORMATS.items()
            for bold in (False, True)
        }

    def add(self, name: str, agents: Sequence[Subject], team: Subject) -> None:
        sheet = self.workbook.add_worksheet(name)
        sheet.set_row(0, 32)  # two lines: the Chinese name above the field name
        sheet.freeze_panes(1, 2)  # the header and who the row is
        rows = [*agents, team]
        for col, column in enumerate(self.columns):
            values = [column.value(subject) for subject in rows]
            sheet.set_column(col, col, _width(column, values))
            sheet.write_string(0, col, column.header, self.header)
            for row, value in enumerate(values, start=1):
                self._write(sheet, row, col, column.kind, value, bold=row == len(rows))

    def _write(self, sheet: Worksheet, row: int, col: int, kind: Kind, value: Cell, *, bold: bool) -> None:
        fmt = self.formats[(kind, bold)]
        if value is None:
            sheet.write_blank(row, col, None, fmt)
        elif isinstance(value, str):
            sheet.write_string(row, col, value, fmt)  # never a formula, never a number
        else:
            sheet.write_number(row, col, value, fmt)


def report_xlsx(report: Report, *, by_day: bool) -> bytes:
    """A sheet 汇总 with the range's table, team row last; with `by_day` one more sheet per day."""
    out = io.BytesIO()
    workbook = Workbook(out, {"in_memory": True})
    workbook.set_properties(
        {
            "title": f"{report.name or report.shop} 客服报表 {report.from_} ~ {report.to}",
            "subject": f"shop {report.shop}, {report.from_} to {report.to} ({report.timezone})",
            "author": "kefu-pulse",
            "comments": f"as of {report.as_of} ms",
            # The data's moment rather than now, so one report always gives the same bytes.
            "created": datetime.fromtimestamp(report.as_of / 1000, UTC),
        }
    )
    sheets = _Sheets(workbook, report_columns(report.response_targets_seconds))
    sheets.add(SUMMARY_SHEET, report.agents, report.totals)
    if by_day:
        for day in report.days:
            sheets.add(day.day, day.agents, day.totals)
    workbook.close()
    return out.getvalue()
