"""A drill-down list's CSV, XLSX, table and page; the report page's links to its lists."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from urllib.parse import parse_qsl, urlsplit

import msgspec
import openpyxl
import pytest

from streams.contract.details import ConsultationRow, Details, DetailsRequestError, OrderLine, SilentOrderRow
from streams.render.details_page import render_details_page
from streams.render.details_sheets import XLSX_ROWS, details_csv, details_table, details_xlsx
from streams.render.page import LISTS, render_report_page
from tests.report_samples import sample_report

CONSULTATION_HEADERS = [
    "买家 buyer",
    "客服 ID agent",
    "姓名 agent_name",
    "咨询开始 start",
    "首次回复 first_reply",
    "首次响应(秒) wait_seconds",
    "评分 rating",
    "标记 flags",
    "订单号 order_id",
    "订单金额 amount_yuan",
    "客服销售额 sales_yuan",
    "下单时间 created",
    "付款时间 paid",
    "退款金额 refund_yuan",
]
SILENT_HEADERS = ["买家 buyer", "订单号 order_id", "下单时间 created", "付款时间 paid", "金额 amount_yuan"]


def order(order_id: str, amount: float, refund: float = 0.0, assisted: bool = False) -> OrderLine:
    created = "2026-11-17T10:01:00.000+08:00"
    return OrderLine(
        order_id=order_id,
        amount_yuan=amount,
        created=created,
        created_ms=1,
        paid="2026-11-17T10:02:00.000+08:00",
        paid_ms=2,
        refund_yuan=refund,
        assisted=assisted,
    )


def row(buyer: str, orders: list[OrderLine]) -> ConsultationRow:
    return ConsultationRow(
        buyer=buyer,
        agent="s1:A",
        agent_name="小美",
        start="2026-11-17T10:00:00.123+08:00",
        start_ms=1,
        first_reply="2026-11-17T10:00:05.123+08:00",
        first_reply_ms=2,
        wait_seconds=5.0,
        rating=None,
        flags=["replied", "inquiry", "ordered", "paid"],
        sales_yuan=sum(o.amount_yuan for o in orders if o.paid),
        refund_yuan=sum(o.refund_yuan for o in orders),
        assisted_sales_yuan=0.0,
        orders=orders,
    )


def listed(kind: str = "paid", rows: list[ConsultationRow] | list[SilentOrderRow] | None = None) -> Details:
    return Details(
        shop="s1",
        agent=None,
        kind=kind,
        from_="2026-11-15",
        to="2026-11-19",
        as_of=1_763_600_000_000,
        timezone="Asia/Shanghai",
        slow_over_seconds=None,
        rows=rows
        if rows is not None
        else [row("tb***89", [order("o1", 50.0), order("o2", 25.5, 5.0)]), row("=cmd", [])],
        next_cursor=None,
    )


def test_csv_has_chinese_and_english_headers_and_one_line_per_row() -> None:
    data = details_csv(listed())
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads it as UTF-8
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert lines[0] == CONSULTATION_HEADERS
    assert lines[1] == [
        "tb***89", "s1:A", "小美", "2026-11-17 10:00:00", "2026-11-17 10:00:05", "5.0", "",
        "replied inquiry ordered paid", "o1 o2", "75.5", "75.5", "2026-11-17 10:01:00", "2026-11-17 10:02:00",
        "5.0",
    ]  # fmt: skip
    assert lines[2][0] == "'=cmd" and lines[2][8:11] == ["", "", ""]  # never a formula; no order
    assert len(lines) == 3


def test_the_sales_column_sums_to_the_reports_sales_not_the_orders_placed() -> None:
    """A buyer who ordered twice and paid once: 订单金额 is what was ordered, 客服销售额 what the
    report credits (metrics.md: the credited *paid* orders), the column payroll sums."""
    unpaid = msgspec.structs.replace(order("o2", 50.0), paid=None, paid_ms=None)
    lines = list(
        csv.reader(
            io.StringIO(
                details_csv(listed(rows=[row("tb***89", [order("o1", 100.0), unpaid])])).decode("utf-8-sig")
            )
        )
    )
    amounts = dict(zip(lines[0], lines[1], strict=True))
    assert amounts["订单金额 amount_yuan"] == "150.0" and amounts["客服销售额 sales_yuan"] == "100.0"


def test_silent_orders_have_their_own_columns() -> None:
    silent = SilentOrderRow(
        buyer="tb***nt", order_id="o9", created="2026-11-17T00:20:00.000+08:00", created_ms=1, paid=None,
        paid_ms=None, amount_yuan=30.0,
    )  # fmt: skip
    lines = list(csv.reader(io.StringIO(details_csv(listed("silent_orders", [silent])).decode("utf-8-sig"))))
    assert lines == [SILENT_HEADERS, ["tb***nt", "o9", "2026-11-17 00:20:00", "", "30.0"]]


def test_xlsx_has_the_same_headers_and_numbers_as_numbers() -> None:
    book = openpyxl.load_workbook(io.BytesIO(details_xlsx(listed())))
    sheet = book["明细"]
    assert [cell.value for cell in sheet[1]] == CONSULTATION_HEADERS
    assert sheet["J2"].value == 75.5 and sheet["J2"].number_format == "¥#,##0.00"
    assert sheet["K2"].value == 75.5 and sheet["K2"].number_format == "¥#,##0.00"
    assert sheet["A3"].value == "=cmd" and sheet["A3"].data_type == "s"  # text, never a formula
    assert sheet.max_row == 3


def test_xlsx_refuses_a_list_longer_than_a_sheet_rather_than_cut_it() -> None:
    """xlsxwriter skips rows past Excel's 2^20 without a word: a payroll review would miss the
    oldest ones. The refusal names the format that holds them."""
    rows = listed().rows
    too_long = listed(rows=rows * ((XLSX_ROWS + 1) // len(rows)) + rows[: (XLSX_ROWS + 1) % len(rows)])
    assert len(too_long.rows) == XLSX_ROWS + 1 == 2**20
    with pytest.raises(
        DetailsRequestError, match=r"^1,048,576 rows do not fit one XLSX sheet .*--format csv"
    ):
        details_xlsx(too_long)


def test_the_table_shows_every_row() -> None:
    table = details_table(listed())
    assert table.row_count == 2 and "询单付款明细" in str(table.title)


def test_the_list_page_links_its_next_page_and_the_whole_csv() -> None:
    first_page = msgspec.structs.replace(listed(), next_cursor="abc_-1")
    page = render_details_page(first_page, 50)
    assert 'href="/api/v1/details.csv?shop=s1&amp;kind=paid&amp;from=2026-11-15&amp;to=2026-11-19"' in page
    assert (
        'href="/details?shop=s1&amp;kind=paid&amp;from=2026-11-15&amp;to=2026-11-19&amp;limit=50&amp;cursor=abc_-1"'
        in page
    )
    assert "tb***89" in page and "<script src" not in page  # self-contained
    assert page.count("<script>") == 1 and 'get("token")' in page  # only the token carrier
    assert 'id="next"' not in render_details_page(listed(), 50)  # the last page has no next


@pytest.fixture(scope="module")
def linked_page() -> str:
    report = sample_report(days=7, agents=3)
    return render_report_page(report, None, lists_from=report.from_)  # the lists reach its first day


def _links(page: str) -> list[dict[str, str]]:
    return [
        dict(parse_qsl(urlsplit(href.replace("&amp;", "&")).query))
        for href in re.findall(r'\shref="(?!#)([^"]+)"', page)
    ]


def test_every_explained_number_on_the_report_links_to_its_list(linked_page: str) -> None:
    report = sample_report(days=7, agents=3)
    links = _links(linked_page)
    hrefs = re.findall(r'<a class="list" href="(/details\?[^"]+)"', linked_page)
    assert hrefs and len(hrefs) == len(links)  # every link is a list's
    for query in links:
        assert (query["shop"], query["from"], query["to"]) == ("s1", report.from_, report.to)
        assert "token" not in query
    kinds_by_agent = {(q.get("agent"), q["kind"], q.get("over")) for q in links}
    for agent in [None, *(row.agent for row in report.agents)]:
        for kind in ("unreplied", "lost", "paid", "refunded", "assisted", "dissatisfied"):
            assert (agent, kind, None) in kinds_by_agent
        for target in report.response_targets_seconds:
            assert (agent, "slow", str(target)) in kinds_by_agent
    assert (None, "silent_orders", None) in kinds_by_agent
    assert not any(q.get("agent") and q["kind"] == "silent_orders" for q in links)


def test_a_report_older_than_the_lists_has_no_links_and_says_why() -> None:
    """A 月报 once the lists (details_days) no longer reach its first day: a link would open a
    refusal, or a list shorter than its number."""
    report = sample_report(days=7, agents=3)
    day_after = (date.fromisoformat(report.from_) + timedelta(days=1)).isoformat()
    page = render_report_page(report, None, lists_from=day_after)
    assert 'class="list"' not in page and "/details?" not in page
    assert f"kept from {day_after} on" in page


def test_only_numbers_a_list_counts_or_adds_up_link_to_it(linked_page: str) -> None:
    """Consultations and inquiries have no list of their own: their rates link to what they miss."""
    assert "consultations" not in LISTS and "inquiries" not in LISTS


def test_a_report_written_to_a_file_has_no_links() -> None:
    page = render_report_page(sample_report(days=7, agents=3), None)
    assert "/details?" not in page and 'class="list"' not in page
