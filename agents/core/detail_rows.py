"""The drill-down rows as stored (msgspec structs), and a consultation's flags: see details.py.

A module of its own because the compiled core (agents/core/compiled.py) leaves it out: msgspec
builds a Struct class from its Python annotations and keywords, which a class compiled by mypyc
does not keep (a row's orders would decode as plain lists). `agents/core/details.py` re-exports
these names; import them from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

from msgspec import Struct


@dataclass(frozen=True, slots=True)
class RowKey:
    """Where a row is stored: the agent ('' for the shop), the business day, the hash field.

    Here, not compiled, for the same reason as the structs: a frozen dataclass that mypyc
    compiled does not unpickle (tests/unit/core/test_compiled_core.py tries it)."""

    agent: str
    day: int
    field: str


class Flag(IntFlag):
    """A consultation's counts, one bit each (from its cohort vector)."""

    REPLIED = 1
    INQUIRY = 2
    ORDERED = 4
    PAID = 8
    ASSISTED = 16
    RATED = 32
    DISSATISFIED = 64


class OrderRef(Struct, array_like=True, frozen=True):
    """An order credited to (or assisted by) a consultation, as the row shows it."""

    order_id: str
    created: int | None
    paid: int | None
    amount_fen: int
    refund_fen: int
    assisted: bool = False  # credited to another agent; this consultation assisted it


class ConsultationDetail(Struct, array_like=True, frozen=True):
    """One consultation's row, without the keys it is stored under (shop, agent, day, buyer).

    Appending fields with defaults keeps old rows readable; never reorder or remove one."""

    start: int
    first_reply: int | None
    response_ms: int | None  # the wait it was judged on (service hours only, metrics.md v2)
    flags: int
    rating: int | None
    sales_fen: int  # credited payments, less refunds if the shop deducts them
    refund_fen: int
    assisted_sales_fen: int
    orders: list[OrderRef]

    def has(self, flag: Flag) -> bool:
        return bool(self.flags & flag)


class SilentOrderDetail(Struct, array_like=True, frozen=True):
    """An order credited to nobody (静默下单), stored under the shop-level agent by order id."""

    buyer: str
    created: int
    paid: int | None
    amount_fen: int
