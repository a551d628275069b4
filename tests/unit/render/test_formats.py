"""The one number formatter and the one metric list, and the text every output shows with them:
headers and numbers pinned as people read them, so a change to either is a failing test."""

from __future__ import annotations

import csv
import io
import re

import msgspec
import pytest
from rich.table import Table

from streams.contract.floor import TeamWindowValues
from streams.contract.report import TEAM, Report
from streams.render.floor_table import floor_table
from streams.render.formats import (
    DASH,
    METRICS,
    PAGE_STYLE,
    STATS_STYLE,
    TABLE_STYLE,
    Kind,
    Style,
    show,
)
from streams.render.page import render_report_page
from streams.render.report_table import report_table
from streams.render.sheets import report_csv
from tests.builders import agent_row, shop_floor
from tests.report_samples import sample_report

STYLES = {"stats": STATS_STYLE, "table": TABLE_STYLE, "page": PAGE_STYLE}


@pytest.mark.parametrize(
    ("style", "kind", "value", "text"),
    [
        ("stats", "percent", 0.9166666, "91.67%"),
        ("stats", "seconds", 12.345, "12.345"),  # the API's millisecond, as it came
        ("stats", "money", 12345.6, "12345.6"),
        ("stats", "count", 7, "7"),
        ("stats", "duration", 25500.4, "7h05m"),
        ("table", "percent", 3 / 274, "1.09%"),
        ("table", "seconds", 9.75, "9.8"),
        ("table", "money", 4163.5, "4,163.50"),
        ("table", "score", 4.5, "4.50"),
        ("table", "count", 1234, "1234"),
        ("table", "duration", 360000.0, "100h00m"),
        ("page", "percent", 1.0, "100.00%"),
        ("page", "seconds", 9.75, "9.8 秒"),
        ("page", "money", 1234.5, "¥1,234.50"),
        ("page", "count", 1234, "1,234"),
        ("page", "duration", 59.9, "0h00m"),
    ],
)
def test_each_output_writes_a_kind_in_its_own_style(style: str, kind: Kind, value: float, text: str) -> None:
    assert show(value, kind, STYLES[style]) == text


@pytest.mark.parametrize("style", STYLES.values())
def test_an_absent_value_is_the_dash_in_every_style_never_zero(style: Style) -> None:
    assert DASH == "—"
    assert {show(None, kind, style) for kind in style} == {DASH}
    assert show(0.0, "percent", style) == "0.00%" and show("s1:A", "text", style) == "s1:A"


def test_the_metric_list_names_fields_of_the_team_window_once() -> None:
    fields = set(TeamWindowValues.__struct_fields__)
    keys = [m.key for m in METRICS]
    assert len(set(keys)) == len(keys) and set(keys) <= fields
    # Every number but the replied-within ratios (a column per target) and the per-window keys.
    assert fields - set(keys) == {"replied_within_ratio"}


# ---- `stats`: the terminal headers at each width and a row's text -----------------------------

STATS_80 = ["agent", "waiting", "oldest s", "回复率", "15秒回复率", "首响 s", "询单转化率"]
STATS_120 = ["agent", "waiting", "oldest s", "咨询", "接待", "回复率", "15秒回复率", "首响 s", "平均响应 s"]
STATS_120 += ["询单", "询单转化率", "销售额", "退款", "协助"]
STATS_200 = [*STATS_120, "满意度", "差评", "状态", "在线", "挂起"]


def busy_floor() -> Table:
    row = agent_row("s1:a", 3.5, 2.0)
    row.name, row.agent_status, row.waiting_buyers = "小美", "online", 3
    for w in row.windows.values():
        w.consultations, w.replied_consultations, w.inquiries = 12, 11, 7
        w.reply_ratio, w.consult_pay_ratio, w.satisfaction_ratio = 0.9166666, 0.428571, 1.0
        w.response_avg_seconds, w.attributed_sales_yuan, w.refunded_sales_yuan = 8.0, 12345.6, 100.0
        w.assisted_paid, w.dissatisfied_consultations = 2, 1
        w.online_seconds, w.away_seconds = 25500.4, 59.9
        w.replied_within_ratio = {"15": 0.5, "180": None}
    idle = agent_row("s1:b")
    idle.agent_status = "away"
    floor = shop_floor("s1", 15, [row, idle])
    return floor_table(floor, "5m", 200)


def cells(table: Table, row: int) -> list[str]:
    return [str(list(column.cells)[row]) for column in table.columns]


@pytest.mark.parametrize(("width", "headers"), [(80, STATS_80), (120, STATS_120), (200, STATS_200)])
def test_stats_headers_at_each_terminal_width(width: int, headers: list[str]) -> None:
    floor = shop_floor("s1", 15, [agent_row("s1:a")])
    assert [c.header for c in floor_table(floor, "5m", width).columns] == headers


def test_stats_writes_the_floors_numbers_as_the_api_sends_them() -> None:
    table = busy_floor()
    assert cells(table, 0) == [
        *("小美", "3", "3.5", "12", "11", "91.67%", "50.00%", "2.0", "8.0", "7", "42.86%"),
        *("12345.6", "100.0", "2", "100.00%", "1", "在线", "7h05m", "0h00m"),
    ]
    assert cells(table, 1) == [
        *("s1:b", "0", "0.0", "0", "0", DASH, DASH, DASH, DASH, "0", DASH),
        *("0.0", "0.0", "0", DASH, "0", "挂起", "0h00m", "0h00m"),
    ]


def test_stats_puts_the_shops_first_target_when_it_has_no_15_seconds() -> None:
    floor = shop_floor("s1", 15, [agent_row("s1:a")])
    floor.response_targets_seconds = [30, 180]
    assert [c.header for c in floor_table(floor, "5m", 80).columns][3:6] == ["回复率", "30秒回复率", "首响 s"]
    floor.response_targets_seconds = []
    assert "回复率" in [c.header for c in floor_table(floor, "5m", 80).columns]


# ---- the report: CSV, table and page ----------------------------------------------------------


@pytest.fixture(scope="module")
def report() -> Report:
    """The three-day sample, the team with satisfaction, a score and time online to show."""
    sample = sample_report(days=3, agents=3)
    metrics = msgspec.structs.replace(
        sample.totals.metrics, satisfaction_ratio=0.95, average_rating_score=4.5, online_seconds=25500.4
    )
    return msgspec.structs.replace(sample, totals=msgspec.structs.replace(sample.totals, metrics=metrics))


def test_the_csv_header_line_and_a_row_keep_their_bytes(report: Report) -> None:
    lines = report_csv(report, by_day=False).decode("utf-8-sig").split("\r\n")
    assert lines[0] == ",".join(
        [
            *("客服 ID agent", "姓名 name", "咨询人数 consultations", "接待人数 replied_consultations"),
            *("回复率 reply_ratio", "首次响应时间 first_response_avg_seconds"),
            *("平均响应时间 response_avg_seconds", "15秒回复率 replied_within_15s"),
            *("180秒回复率 replied_within_180s", "询单人数 inquiries", "询单→下单人数 ordered_inquiries"),
            *("询单→付款人数 paid_inquiries", "询单→下单转化率 consult_order_ratio"),
            *("询单转化率 consult_pay_ratio", "付款转化率 order_pay_ratio"),
            *("客服销售额 attributed_sales_yuan", "客单价 average_order_value_yuan"),
            *("退款金额 refunded_sales_yuan", "协助付款人数 assisted_paid", "协助销售额 assisted_sales_yuan"),
            *("评价数 rated_consultations", "评价率 rating_ratio", "满意度 satisfaction_ratio"),
            *("差评数 dissatisfied_consultations", "平均评分 average_rating_score"),
            *("在线时长 online_seconds", "挂起时长 away_seconds", "登录次数 logins"),
            *("全店订单数 orders", "静默下单数 silent_orders", "静默下单占比 silent_share"),
            "静默销售额 silent_sales_yuan",
        ]
    )
    # Numbers stay numbers, absent cells empty: the spreadsheet formats them, not we.
    assert lines[1] == (
        "s1:A,小美,69,66,0.9565217391304348,4.0,7.091,0.8260869565217391,0.9130434782608695,60,9,6,"
        "0.15,0.1,0.6666666666666666,740.7,123.45,5.0,0,0.0,0,0.0,,0,,0.0,0.0,0,,,,"
    )
    assert next(csv.reader(io.StringIO(lines[4])))[0] == TEAM


REPORT_HEADERS = ["客服", "咨询人数", "接待人数", "回复率", "首次响应时间", "平均响应时间", "15秒回复率"]
REPORT_HEADERS += ["180秒回复率", "询单人数", "询单→下单人数", "询单→付款人数", "询单→下单转化率"]
REPORT_HEADERS += ["询单转化率", "付款转化率", "客服销售额", "客单价", "退款金额", "协助付款人数"]
REPORT_HEADERS += ["协助销售额", "评价数", "评价率", "满意度", "差评数", "平均评分", "在线时长"]
REPORT_HEADERS += ["挂起时长", "登录次数"]


def test_the_report_tables_headers_narrow_and_wide(report: Report) -> None:
    narrow = report_table(report, by_day=False, width=80)[0]
    assert [str(c.header).replace("\n", "") for c in narrow.columns] == [
        *("客服", "回复率", "首次响应时间", "15秒回复率", "询单人数", "询单转化率", "客服销售额", "满意度"),
    ]
    wide = report_table(report, by_day=False, width=400)[0]
    assert [str(c.header) for c in wide.columns] == REPORT_HEADERS


def test_the_report_tables_team_row_and_shop_line(report: Report) -> None:
    table = report_table(report, by_day=False, width=400)[0]
    assert cells(table, 3) == [
        *(TEAM, "270", "252", "93.33%", "6.9", "7.1", "83.33%", "90.00%", "234", "32", "23"),
        *("13.68%", "9.83%", "71.88%", "3,089.35", "134.32", "15.00", "3", "240.00", "0", "0.00%"),
        *("95.00%", "0", "4.50", "7h05m", "0h00m", "0"),
    ]
    assert table.caption == "全店订单数 39 · 静默下单数 9 · 静默下单占比 23.08% · 静默销售额 891.00"


def test_the_pages_team_row_and_cards(report: Report) -> None:
    page = render_report_page(report, None)
    team = page[page.index('<tr class="team">') : page.index("</tr>", page.index('<tr class="team">'))]
    assert re.findall(r'<td class="num">([^<]*)</td>', team) == [
        *("270", "252", "93.33%", "6.9 秒", "83.33%", "90.00%", "234", "23", "9.83%"),
        *("¥3,089.35", "¥15.00", "3", "95.00%", "0", "7h05m"),
    ]
    assert re.findall(r'<div class="value">([^<]*)</div>', page) == [
        *("270", "93.33%", "6.9 秒", "83.33%", "234", "9.83%", "¥3,089.35", "95.00%", "9"),
    ]
