"""A drill-down list (明细) as a terminal table, CSV and XLSX (`kefu-pulse details`,
`/api/v1/details.csv`).

One line per row of the list, so a sheet's line count is the number the list explains. Headers
carry the Chinese name and the JSON field, as the report's sheets do (render/columns.py); numbers
go through render/formats.py, and the CSV and XLSX follow render/sheets.py's rules (the BOM,
formula-safe text, Excel's own number formats). A consultation with several orders shows their
ids in one cell and their amounts summed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.table import Table
from xlsxwriter.workbook import Workbook

from streams.contract.details import (
    ConsultationRow,
    DetailRow,
    Details,
    DetailsRequestError,
    OrderLine,
    SilentOrderRow,
)
from streams.render.formats import TABLE_STYLE, Cell, Kind, show
from streams.render.sheets import NUMBER_FORMATS, _cells, _csv_cell

KIND_TITLES = {
    "unreplied": "未回复明细",
    "slow": "慢响应明细",
    "lost": "询单流失明细",
    "ordered_unpaid": "下单未付款明细",
    "paid": "询单付款明细",
    "assisted": "协助付款明细",
    "silent_orders": "静默下单明细",
    "refunded": "退款明细",
    "dissatisfied": "差评明细",
}


def local(iso: str | None) -> str | None:
    """`2026-11-17T00:15:00.000+08:00` as a spreadsheet reads it: `2026-11-17 00:15:00` (the
    shop's time zone, which the title names)."""
    return None if iso is None else iso[:19].replace("T", " ")


@dataclass(frozen=True, slots=True)
class DetailColumn:
    zh: str
    en: str
    kind: Kind
    get: Callable[[DetailRow, str], Cell]  # (row, the list's kind) -> value

    @property
    def header(self) -> str:
        return f"{self.zh} {self.en}"


def _orders(row: DetailRow, kind: str) -> list[OrderLine]:
    return row.shown_orders(kind) if isinstance(row, ConsultationRow) else []


def _first(values: Iterable[str | None]) -> str | None:
    return next((value for value in values if value is not None), None)


def _consultation(get: Callable[[ConsultationRow], Cell]) -> Callable[[DetailRow, str], Cell]:
    return lambda row, kind: get(row) if isinstance(row, ConsultationRow) else None


def _money(orders: Sequence[OrderLine], amount: Callable[[OrderLine], float]) -> Cell:
    return round(sum(amount(order) for order in orders), 2) if orders else None


def _sales(row: DetailRow, kind: str) -> Cell:
    """What the line adds to the report's 客服销售额 (in the `assisted` list: the sales it helped
    another agent to); empty on a line with no orders."""
    if not isinstance(row, ConsultationRow) or not _orders(row, kind):
        return None
    return round(row.assisted_sales_yuan if kind == "assisted" else row.sales_yuan, 2)


def _refunds(row: DetailRow, kind: str) -> Cell:
    """The consultation's refunds, as the report sums them (in the `assisted` list: its
    assisted orders')."""
    orders = _orders(row, kind)
    if not isinstance(row, ConsultationRow) or not orders:
        return None
    return _money(orders, lambda o: o.refund_yuan) if kind == "assisted" else round(row.refund_yuan, 2)


CONSULTATION_COLUMNS: tuple[DetailColumn, ...] = (
    DetailColumn("买家", "buyer", "text", lambda row, kind: row.buyer),
    DetailColumn("客服 ID", "agent", "text", _consultation(lambda row: row.agent)),
    DetailColumn("姓名", "agent_name", "text", _consultation(lambda row: row.agent_name)),
    DetailColumn("咨询开始", "start", "text", _consultation(lambda row: local(row.start))),
    DetailColumn("首次回复", "first_reply", "text", _consultation(lambda row: local(row.first_reply))),
    DetailColumn("首次响应(秒)", "wait_seconds", "seconds", _consultation(lambda row: row.wait_seconds)),
    DetailColumn("评分", "rating", "count", _consultation(lambda row: row.rating)),
    DetailColumn("标记", "flags", "text", _consultation(lambda row: " ".join(row.flags))),
    DetailColumn(
        "订单号",
        "order_id",
        "text",
        lambda row, kind: " ".join(o.order_id for o in _orders(row, kind)) or None,
    ),
    # What the orders of the line came to, paid or not: not what the agent is credited with.
    DetailColumn(
        "订单金额",
        "amount_yuan",
        "money",
        lambda row, kind: _money(_orders(row, kind), lambda o: o.amount_yuan),
    ),
    # The column a payroll sheet sums: an order never paid, or paid to another inquiry's
    # credit, is in 订单金额 and not here.
    DetailColumn("客服销售额", "sales_yuan", "money", _sales),
    DetailColumn(
        "下单时间", "created", "text", lambda row, kind: local(_first(o.created for o in _orders(row, kind)))
    ),
    DetailColumn(
        "付款时间", "paid", "text", lambda row, kind: local(_first(o.paid for o in _orders(row, kind)))
    ),
    DetailColumn("退款金额", "refund_yuan", "money", _refunds),
)


def _silent(get: Callable[[SilentOrderRow], Cell]) -> Callable[[DetailRow, str], Cell]:
    return lambda row, kind: get(row) if isinstance(row, SilentOrderRow) else None


SILENT_COLUMNS: tuple[DetailColumn, ...] = (
    DetailColumn("买家", "buyer", "text", lambda row, kind: row.buyer),
    DetailColumn("订单号", "order_id", "text", _silent(lambda row: row.order_id)),
    DetailColumn("下单时间", "created", "text", _silent(lambda row: local(row.created))),
    DetailColumn("付款时间", "paid", "text", _silent(lambda row: local(row.paid))),
    DetailColumn("金额", "amount_yuan", "money", _silent(lambda row: row.amount_yuan)),
)


def detail_columns(kind: str) -> tuple[DetailColumn, ...]:
    return SILENT_COLUMNS if kind == "silent_orders" else CONSULTATION_COLUMNS


def title(details: Details) -> str:
    who = details.agent or "团队 team"
    return (
        f"{details.shop} {who} {KIND_TITLES.get(details.kind, details.kind)} {details.from_} ~ {details.to}"
    )


def cell_text(column: DetailColumn, value: Cell) -> str:
    return show(value, column.kind, TABLE_STYLE)


def csv_lines(details: Details) -> Iterator[bytes]:
    """The CSV, a chunk of lines at a time (the web streams it): the BOM and header first."""
    columns = detail_columns(details.kind)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.header for c in columns])
    yield out.getvalue().encode("utf-8-sig")  # Excel on Chinese Windows reads UTF-8 with it
    for start in range(0, len(details.rows), 500):
        out.seek(0)
        out.truncate()
        for row in details.rows[start : start + 500]:
            writer.writerow([_csv_cell(c.get(row, details.kind)) for c in columns])
        yield out.getvalue().encode("utf-8")


def details_csv(details: Details) -> bytes:
    return b"".join(csv_lines(details))


# A sheet's rows under its header: Excel's 2^20 rows, the header taken. xlsxwriter skips a row
# past it without a word (it returns -1), and a team's month can be a million rows.
XLSX_ROWS = 2**20 - 1


def details_xlsx(details: Details) -> bytes:
    """One sheet, 明细: the header frozen, money as ¥ numbers, ids as text. A list longer than a
    sheet is refused, never cut."""
    if len(details.rows) > XLSX_ROWS:
        raise DetailsRequestError(
            f"{len(details.rows):,} rows do not fit one XLSX sheet ({XLSX_ROWS:,} under its header): "
            "write --format csv, or ask for fewer days"
        )
    columns = detail_columns(details.kind)
    out = io.BytesIO()
    workbook = Workbook(out, {"in_memory": True})
    workbook.set_properties(
        {
            "title": title(details),
            "subject": f"{details.kind}, {details.timezone}",
            "author": "kefu-pulse",
            "created": datetime.fromtimestamp(details.as_of / 1000, UTC),
        }
    )
    sheet = workbook.add_worksheet("明细")
    header = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top", "bottom": 1})
    formats = {kind: workbook.add_format({"num_format": fmt}) for kind, fmt in NUMBER_FORMATS.items()}
    sheet.set_row(0, 32)
    sheet.freeze_panes(1, 1)
    for col, column in enumerate(columns):
        values = [column.get(row, details.kind) for row in details.rows]
        shown = [cell_text(column, v) for v in values if v is not None]
        sheet.set_column(col, col, max(_cells(part) for part in [*column.header.split(" "), *shown]) + 3)
        sheet.write_string(0, col, column.header, header)
        for line, value in enumerate(values, start=1):
            if value is None:
                sheet.write_blank(line, col, None, formats[column.kind])
            elif isinstance(value, str):
                sheet.write_string(line, col, value, formats[column.kind])
            else:
                sheet.write_number(line, col, value, formats[column.kind])
    workbook.close()
    return out.getvalue()


def details_table(details: Details) -> Table:
    """The list for a terminal: every row, the headers in Chinese with the field below."""
    columns = detail_columns(details.kind)
    table = Table(title=f"{title(details)} ({details.timezone}) · {len(details.rows):,} 条")
    for column in columns:
        table.add_column(f"{column.zh}\n{column.en}", justify="left" if column.kind == "text" else "right")
    for row in details.rows:
        table.add_row(*(cell_text(c, c.get(row, details.kind)) for c in columns))
    return table
