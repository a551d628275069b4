"""The report's CSV, XLSX and table, read back with readers that share no code with the writers."""

from __future__ import annotations

import csv
import io
from typing import Any

import msgspec
import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from rich.cells import cell_len
from rich.console import Console

from streams.contract.report import TEAM, Report, ReportRow, ReportTotals
from streams.render.report_table import report_table
from streams.render.sheets import report_csv, report_xlsx
from tests.report_samples import sample_report

BOM = b"\xef\xbb\xbf"
BEFORE_WITHIN = ["consultations", "replied_consultations", "reply_ratio"]
BEFORE_WITHIN += ["first_response_avg_seconds", "response_avg_seconds"]
AFTER_WITHIN = [
    "inquiries",
    "ordered_inquiries",
    "paid_inquiries",
    "consult_order_ratio",
    "consult_pay_ratio",
]
AFTER_WITHIN += [
    "order_pay_ratio",
    "attributed_sales_yuan",
    "average_order_value_yuan",
    "refunded_sales_yuan",
]
AFTER_WITHIN += ["assisted_paid", "assisted_sales_yuan"]
AFTER_WITHIN += ["rated_consultations", "rating_ratio", "satisfaction_ratio", "dissatisfied_consultations"]
AFTER_WITHIN += ["average_rating_score", "online_seconds", "away_seconds", "logins"]
SHOP_ONLY = ["orders", "silent_orders", "silent_share", "silent_sales_yuan"]
HEADER = [
    "客服 ID agent",
    "姓名 name",
    "咨询人数 consultations",
    "接待人数 replied_consultations",
    "回复率 reply_ratio",
    "首次响应时间 first_response_avg_seconds",
    "平均响应时间 response_avg_seconds",
    "15秒回复率 replied_within_15s",
    "180秒回复率 replied_within_180s",
    "询单人数 inquiries",
    "询单→下单人数 ordered_inquiries",
    "询单→付款人数 paid_inquiries",
    "询单→下单转化率 consult_order_ratio",
    "询单转化率 consult_pay_ratio",
    "付款转化率 order_pay_ratio",
    "客服销售额 attributed_sales_yuan",
    "客单价 average_order_value_yuan",
    "退款金额 refunded_sales_yuan",
    "协助付款人数 assisted_paid",
    "协助销售额 assisted_sales_yuan",
    "评价数 rated_consultations",
    "评价率 rating_ratio",
    "满意度 satisfaction_ratio",
    "差评数 dissatisfied_consultations",
    "平均评分 average_rating_score",
    "在线时长 online_seconds",
    "挂起时长 away_seconds",
    "登录次数 logins",
    "全店订单数 orders",
    "静默下单数 silent_orders",
    "静默下单占比 silent_share",
    "静默销售额 silent_sales_yuan",
]
RATIOS = {"reply_ratio", "replied_within", "consult_order_ratio", "consult_pay_ratio", "order_pay_ratio"}
RATIOS |= {"silent_share", "rating_ratio", "satisfaction_ratio"}
MONEY = {"attributed_sales_yuan", "average_order_value_yuan", "refunded_sales_yuan", "assisted_sales_yuan"}
MONEY |= {"silent_sales_yuan"}


def with_absent(row: ReportRow) -> ReportRow:
    """An agent with nothing paid: the ratios over paid orders are absent, not 0."""
    metrics = msgspec.structs.replace(
        row.metrics,
        order_pay_ratio=None,
        average_order_value_yuan=None,
        replied_within_ratio={"15": None, "180": 0.5},
    )
    return msgspec.structs.replace(row, metrics=metrics)


@pytest.fixture(scope="module")
def report() -> Report:
    """Four agents (s1:D has no name) over three days; s1:B's ratios partly absent."""
    sample = sample_report(days=3, agents=4)
    agents = [with_absent(r) if r.agent == "s1:B" else r for r in sample.agents]
    first = msgspec.structs.replace(sample.days[0], agents=[with_absent(r) for r in sample.days[0].agents])
    return msgspec.structs.replace(sample, agents=agents, days=[first, *sample.days[1:]])


def expected(subject: ReportRow | ReportTotals) -> list[Any]:
    m = subject.metrics
    who: list[Any] = [subject.agent, subject.name] if isinstance(subject, ReportRow) else [TEAM, None]
    within = [m.replied_within_ratio["15"], m.replied_within_ratio["180"]]
    shop = [getattr(m, f) for f in SHOP_ONLY] if isinstance(subject, ReportTotals) else [None] * 4
    return [
        *who,
        *(getattr(m, f) for f in BEFORE_WITHIN),
        *within,
        *(getattr(m, f) for f in AFTER_WITHIN),
        *shop,
    ]


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def assert_csv_row(cells: list[str], values: list[Any]) -> None:
    assert len(cells) == len(values)
    for cell, value in zip(cells, values, strict=True):
        if value is None:
            assert cell == ""
        elif isinstance(value, str | int):  # an int stays an int: "43", never "43.0"
            assert cell == str(value)
        else:
            assert float(cell) == value  # the shortest repr reads back to the same float


def test_csv_starts_with_a_bom_and_has_chinese_and_english_headers(report: Report) -> None:
    data = report_csv(report, by_day=False)
    assert data.startswith(BOM) and not data[3:].startswith(BOM)
    rows = csv_rows(data)
    assert rows[0] == HEADER
    assert "询单转化率 consult_pay_ratio" in rows[0]


def test_csv_rows_are_the_reports_numbers_team_last(report: Report) -> None:
    rows = csv_rows(report_csv(report, by_day=False))[1:]
    subjects: list[ReportRow | ReportTotals] = [*report.agents, report.totals]
    assert [r[0] for r in rows] == ["s1:A", "s1:B", "s1:C", "s1:D", TEAM]
    for cells, subject in zip(rows, subjects, strict=True):
        assert_csv_row(cells, expected(subject))
    b = rows[1]
    assert b[HEADER.index("付款转化率 order_pay_ratio")] == "" and b[7] == "" and b[8] == "0.5"
    assert rows[3][1] == "" and rows[4][1] == ""  # s1:D has no name; the team row has none
    assert rows[4][HEADER.index("全店订单数 orders")] == str(report.totals.metrics.orders)


def test_csv_by_day_has_each_days_rows_and_no_range_rows(report: Report) -> None:
    rows = csv_rows(report_csv(report, by_day=True))
    assert rows[0] == ["日期 day", *HEADER]
    assert len(rows) - 1 == 3 * (4 + 1)
    at = 1
    for day in report.days:
        subjects: list[ReportRow | ReportTotals] = [*day.agents, day.totals]
        for subject in subjects:
            assert rows[at][0] == day.day
            assert_csv_row(rows[at][1:], expected(subject))
            at += 1
    assert rows[2][8] == "" and rows[7][8] != ""  # the first day's s1:B, then the second's


def test_csv_text_never_runs_as_a_formula(report: Report) -> None:
    rogue = msgspec.structs.replace(report.agents[0], name="=HYPERLINK(1)")
    rows = csv_rows(report_csv(msgspec.structs.replace(report, agents=[rogue]), by_day=False))
    assert rows[1][1] == "'=HYPERLINK(1)"


def sheet_values(ws: Any) -> list[list[Any]]:
    return [list(r) for r in ws.iter_rows(values_only=True)]


def assert_sheet_rows(rows: list[list[Any]], subjects: list[ReportRow | ReportTotals]) -> None:
    assert len(rows) == len(subjects)
    for cells, subject in zip(rows, subjects, strict=True):
        values = expected(subject)
        assert cells[:2] == values[:2]
        # Excel keeps 15 to 17 significant digits; the writer's 16 may round the last one.
        assert cells[2:] == [v if v is None else pytest.approx(v, rel=1e-14) for v in values[2:]]


def column_width(ws: Any, col: int) -> float:
    """The width Excel shows: xlsxwriter writes neighbours of one width as one <col min max>
    record, which openpyxl files under the first column's letter only."""
    for dimension in ws.column_dimensions.values():
        if dimension.min is not None and dimension.min <= col <= dimension.max:
            return float(dimension.width)
    return float(ws.column_dimensions[get_column_letter(col)].width)


def test_xlsx_summary_sheet_has_the_reports_numbers_and_formats(report: Report) -> None:
    book = openpyxl.load_workbook(io.BytesIO(report_xlsx(report, by_day=False)))
    assert book.sheetnames == ["汇总"]
    assert book.properties.title == "旗舰店 客服报表 2026-11-01 ~ 2026-11-03"
    ws = book["汇总"]
    rows = sheet_values(ws)
    assert rows[0] == HEADER
    assert_sheet_rows(rows[1:], [*report.agents, report.totals])
    assert ws.freeze_panes == "C2"
    for col, header in enumerate(HEADER, start=1):
        field = header.split(" ")[1]
        fmt = ws.cell(row=2, column=col).number_format
        if any(field.startswith(r) for r in RATIOS):
            assert "%" in fmt, header
        if field in MONEY:
            assert "¥" in fmt, header
        # Wide enough for the header's longest word, a CJK character counting two.
        width = column_width(ws, col)
        assert width >= max(cell_len(word) for word in header.split(" ")), header
    assert ws.cell(row=2, column=6).number_format == "0.0"  # seconds
    assert ws.cell(row=2, column=3).number_format == "0"  # counts
    assert ws.cell(row=6, column=1).font.b and not ws.cell(row=5, column=1).font.b  # the team row


def test_xlsx_by_day_adds_one_sheet_per_day(report: Report) -> None:
    book = openpyxl.load_workbook(io.BytesIO(report_xlsx(report, by_day=True)))
    assert book.sheetnames == ["汇总", "2026-11-01", "2026-11-02", "2026-11-03"]
    assert_sheet_rows(sheet_values(book["汇总"])[1:], [*report.agents, report.totals])
    for day in report.days:
        rows = sheet_values(book[day.day])
        assert rows[0] == HEADER
        assert_sheet_rows(rows[1:], [*day.agents, day.totals])
        assert book[day.day].freeze_panes == "C2"


def rendered(report: Report, width: int, by_day: bool = False) -> str:
    console = Console(record=True, width=width)
    for table in report_table(report, by_day=by_day, width=width):
        console.print(table)
    return console.export_text()


def test_the_table_shows_percentages_the_team_row_and_absent_values(report: Report) -> None:
    text = rendered(report, 160)
    assert "旗舰店 (s1) · 2026-11-01 ~ 2026-11-03" in text
    team = next(line for line in text.splitlines() if TEAM in line)
    assert report.totals.metrics.paid_inquiries == 30 and report.totals.metrics.inquiries == 348
    assert "8.62%" in team and "4,163.50" in team  # 30 / 348 paid; the team's sales
    assert "—" in next(line for line in text.splitlines() if "阿强" in line)
    assert "静默下单数 9" in text


@pytest.mark.parametrize("width", [80, 120, 160])
def test_the_table_fits_the_terminal_instead_of_cutting_columns(report: Report, width: int) -> None:
    text = rendered(report, width)
    assert max(cell_len(line) for line in text.splitlines()) <= width
    assert "…" not in text


def test_narrow_terminals_keep_fewer_columns_and_by_day_adds_a_table_per_day(report: Report) -> None:
    narrow = report_table(report, by_day=False, width=80)[0]
    wide = report_table(report, by_day=False, width=250)[0]
    # who, 回复率, 首次响应时间, 15秒回复率, 询单人数, 询单转化率, 客服销售额, 满意度
    assert len(narrow.columns) == 8
    assert len(wide.columns) == 1 + 26  # every metric; the shop's orders are in the caption
    tables = report_table(report, by_day=True, width=160)
    assert [t.title for t in tables[1:]] == ["2026-11-01", "2026-11-02", "2026-11-03"]
