"""The drill-down lists (明细) as typed values: what `/api/v1/details`, `/details` and
`kefu-pulse details` give (docs/reports.md "The lists").

One list is the rows behind one number of the report: the consultations (or, for silent orders,
the orders) of one kind, for a shop or one agent over business days, newest first and paged.
Built by agents/exposure/details.py; turned into JSON here (`details_json`, the only place), and
into tables, CSV and XLSX in streams/render/details_sheets.py.
"""

from __future__ import annotations

from typing import Any

import msgspec

from streams.contract.report import ReportRequestError

# A buyer id is shown with at most this many characters kept at each end, and never more than a
# quarter of it at each end: at least half of any id is always hidden, so no id can be read back.
MASK_KEEP = 2
MASK = "***"
MAX_PAGE = 1000
DEFAULT_PAGE = 100


class DetailsRequestError(ReportRequestError):
    """A list that cannot be given (a bad kind, range, cursor or limit), in one sentence: the
    CLI's message and exit 1, the API's 400 `{"error": ...}`."""


def mask_buyer(buyer: str) -> str:
    """`tb12345689` → `tb***89`: a short prefix and suffix, the rest replaced by a fixed mark (so
    the length is hidden too)."""
    keep = min(MASK_KEEP, len(buyer) // 4)
    if keep == 0:
        return MASK
    return f"{buyer[:keep]}{MASK}{buyer[-keep:]}"


class OrderLine(msgspec.Struct, kw_only=True):
    """An order a consultation was credited with, or (`assisted`) helped another agent sell."""

    order_id: str
    amount_yuan: float
    created: str | None  # ISO 8601 in the shop's time zone, with milliseconds
    created_ms: int | None
    paid: str | None
    paid_ms: int | None
    refund_yuan: float
    assisted: bool


class ConsultationRow(msgspec.Struct, kw_only=True):
    buyer: str  # masked unless the reader may see buyers (`mask_buyer`)
    agent: str
    agent_name: str | None
    start: str  # the consultation's start, ISO 8601 in the shop's time zone
    start_ms: int
    first_reply: str | None
    first_reply_ms: int | None
    wait_seconds: float | None  # the first response it was judged on (service clock)
    rating: int | None
    flags: list[str]  # replied, inquiry, ordered, paid, assisted, rated, dissatisfied
    sales_yuan: float  # credited payments (less refunds when the shop deducts them)
    refund_yuan: float
    assisted_sales_yuan: float
    orders: list[OrderLine]

    def shown_orders(self, kind: str) -> list[OrderLine]:
        """The orders a flat line (CSV, table) shows: the assisted ones in the `assisted` list,
        the credited ones elsewhere."""
        assisted = kind == "assisted"
        return [order for order in self.orders if order.assisted == assisted]


class SilentOrderRow(msgspec.Struct, kw_only=True):
    """An order credited to no inquiry (静默下单): the shop's, not an agent's."""

    buyer: str
    order_id: str
    created: str
    created_ms: int
    paid: str | None
    paid_ms: int | None
    amount_yuan: float


DetailRow = ConsultationRow | SilentOrderRow


class Details(msgspec.Struct, kw_only=True):
    shop: str
    agent: str | None  # None: every agent of the shop (the team)
    kind: str
    from_: str = msgspec.field(name="from")
    to: str
    as_of: int
    timezone: str
    slow_over_seconds: float | None  # the `slow` list's threshold; None for other kinds
    rows: list[ConsultationRow] | list[SilentOrderRow]  # newest first
    next_cursor: str | None  # give it as `cursor` for the next page; None on the last page


def details_json(details: Details) -> dict[str, Any]:
    """A list as the API's JSON object."""
    body: dict[str, Any] = msgspec.to_builtins(details)
    return body


def details_json_bytes(details: Details) -> bytes:
    return msgspec.json.encode(details_json(details))
