"""The drill-down rows the engine writes (agents/core/details.py through engine.py): what a
buyer's events make of its consultations' rows and its silent orders' rows."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.core.buyer import BuyerState
from agents.core.details import (
    ConsultationDetail,
    Flag,
    OrderRef,
    RowKey,
    SilentOrderDetail,
    decode_consultation,
    decode_silent_order,
)
from agents.core.engine import Horizon, apply_buyer_events
from agents.core.policy import PolicyBook
from agents.core.projection import SHOP_LEVEL
from streams.contract.events import Event
from tests.builders import agent_msg, at, buyer_msg, order, settings

NOW = at(23, 0, day=2)
DAY = PolicyBook(settings())("s1").calendar.day(at(0))  # business day 0 of the builders


@dataclass
class Rows:
    """A buyer's events applied one call each, their row changes kept like a details hash."""

    yaml_text: str = ""
    state: BuyerState = field(default_factory=BuyerState)
    stored: dict[RowKey, bytes] = field(default_factory=dict)
    changes: list[dict[RowKey, bytes | None]] = field(default_factory=list)

    def apply(self, *events: Event) -> Rows:
        policy = PolicyBook(settings(self.yaml_text))("s1")
        for event in events:
            delta = apply_buyer_events(self.state, [event], policy, Horizon.at(policy, NOW))
            self.changes.append(delta.rows)
            for key, row in delta.rows.items():
                if row is None:
                    self.stored.pop(key, None)
                else:
                    self.stored[key] = row
        return self

    def row(self, agent: str = "s1:a", day: int = 0, buyer: str = "b1") -> ConsultationDetail:
        return decode_consultation(self.stored[RowKey(agent, DAY + day, buyer)])

    def silent(self, order_id: str, day: int = 0) -> SilentOrderDetail:
        return decode_silent_order(self.stored[RowKey(SHOP_LEVEL, DAY + day, order_id)])


def test_a_new_consultation_is_an_unreplied_row() -> None:
    rows = Rows().apply(buyer_msg(at(10)))
    assert rows.stored.keys() == {RowKey("s1:a", DAY, "b1")}
    assert rows.row() == ConsultationDetail(at(10), None, None, 0, None, 0, 0, 0, [])


def test_a_reply_rewrites_the_row_replied_and_an_inquiry() -> None:
    rows = Rows().apply(buyer_msg(at(10)), agent_msg(at(10, 0, 12)))
    row = rows.row()
    assert (row.first_reply, row.response_ms) == (at(10, 0, 12), 12_000)
    assert row.flags == Flag.REPLIED | Flag.INQUIRY


def test_a_message_that_changes_no_count_rewrites_no_row() -> None:
    rows = Rows().apply(buyer_msg(at(10)), agent_msg(at(10, 0, 12)), buyer_msg(at(10, 5)))
    assert rows.changes[-1] == {}


def test_an_order_credited_then_paid_then_partly_refunded() -> None:
    rows = Rows().apply(buyer_msg(at(10)), agent_msg(at(10, 0, 5)), order(at(11), "T1", "created", 19900))
    row = rows.row()
    assert row.flags == Flag.REPLIED | Flag.INQUIRY | Flag.ORDERED
    assert row.orders == [OrderRef("T1", at(11), None, 19900, 0)]
    rows.apply(order(at(11, 10), "T1", "paid", 19900))
    row = rows.row()
    assert row.has(Flag.PAID) and row.sales_fen == 19900 and row.refund_fen == 0
    assert row.orders == [OrderRef("T1", at(11), at(11, 10), 19900, 0)]
    rows.apply(order(at(12), "T1", "refunded", 5000))
    row = rows.row()
    assert row.has(Flag.PAID) and row.refund_fen == 5000
    assert row.sales_fen == 19900  # the default keeps refunds out of sales (deduct_refunds: false)
    assert row.orders == [OrderRef("T1", at(11), at(11, 10), 19900, 5000)]
    assert RowKey(SHOP_LEVEL, DAY, "T1") not in rows.stored


def test_deducted_refunds_leave_the_sales_of_the_row() -> None:
    rows = Rows("defaults: {attribution: {deduct_refunds: true}}")
    rows.apply(buyer_msg(at(10)), agent_msg(at(10, 0, 5)), order(at(11), "T1", "paid", 19900))
    rows.apply(order(at(12), "T1", "refunded", 5000))
    assert (rows.row().sales_fen, rows.row().refund_fen) == (14900, 5000)


def test_a_silent_order_is_credited_when_a_reply_arrives_out_of_order() -> None:
    rows = Rows().apply(buyer_msg(at(10)), order(at(10, 30), "T1", "paid", 2500))
    assert rows.silent("T1") == SilentOrderDetail("b1", at(10, 30), at(10, 30), 2500)
    assert not rows.row().has(Flag.ORDERED)
    rows.apply(agent_msg(at(10, 0, 5)))  # the reply came before the order, arrives after it
    assert rows.changes[-1][RowKey(SHOP_LEVEL, DAY, "T1")] is None
    assert RowKey(SHOP_LEVEL, DAY, "T1") not in rows.stored
    row = rows.row()
    assert row.flags == Flag.REPLIED | Flag.INQUIRY | Flag.ORDERED | Flag.PAID
    assert row.sales_fen == 2500


def test_a_payment_before_its_creation_moves_the_silent_row_to_the_earlier_day() -> None:
    rows = Rows().apply(order(at(11, day=1), "T1", "paid", 2500))
    assert rows.silent("T1", day=1).created == at(11, day=1)
    rows.apply(order(at(9), "T1", "created", 2500))  # created the day before, reported later
    assert rows.changes[-1][RowKey(SHOP_LEVEL, DAY + 1, "T1")] is None
    assert RowKey(SHOP_LEVEL, DAY + 1, "T1") not in rows.stored
    assert rows.silent("T1") == SilentOrderDetail("b1", at(9), at(11, day=1), 2500)


def test_an_after_sale_consultation_is_replied_but_no_inquiry() -> None:
    rows = Rows().apply(order(at(9), "T1", "paid", 2500), buyer_msg(at(10)), agent_msg(at(10, 0, 5)))
    row = rows.row()
    assert row.flags == Flag.REPLIED
    assert row.orders == [] and row.sales_fen == 0
    assert rows.silent("T1").paid == at(9)  # a payment before the consultation is credited to nobody


def test_with_rule_all_every_qualifying_inquiry_is_credited() -> None:
    rows = Rows("defaults: {attribution: {rule: all}}").apply(
        buyer_msg(at(10)),
        agent_msg(at(10, 0, 5)),
        buyer_msg(at(10, 10), agent="s1:b"),
        agent_msg(at(10, 10, 5), agent="s1:b"),
        order(at(11), "T1", "paid", 2500),
    )
    for agent in ("s1:a", "s1:b"):
        row = rows.row(agent)
        assert row.has(Flag.PAID) and not row.has(Flag.ASSISTED), agent
        assert row.orders == [OrderRef("T1", at(11), at(11), 2500, 0)]


def test_an_assist_is_flagged_and_its_order_marked_assisted() -> None:
    rows = Rows().apply(  # the default rule credits the last inquiry; the other one assisted
        buyer_msg(at(10)),
        agent_msg(at(10, 0, 5)),
        buyer_msg(at(10, 10), agent="s1:b"),
        agent_msg(at(10, 10, 5), agent="s1:b"),
        order(at(11), "T1", "paid", 2500),
    )
    credited, assisting = rows.row("s1:b"), rows.row("s1:a")
    assert credited.has(Flag.PAID) and not credited.has(Flag.ASSISTED)
    assert assisting.has(Flag.ASSISTED) and not assisting.has(Flag.PAID)
    assert assisting.assisted_sales_fen == 2500 and assisting.sales_fen == 0
    assert assisting.orders == [OrderRef("T1", at(11), at(11), 2500, 0, assisted=True)]


def test_a_reply_that_moves_an_unpaid_orders_credit_rewrites_the_row_that_loses_it() -> None:
    """`rule: last`: b's later inquiry takes T2 from a, whose `ordered` stays 1 (it keeps T1), so
    no count of a's moves: its row must still drop T2 (found by review: both rows listed it)."""
    rows = Rows("defaults: {attribution: {rule: last}}").apply(
        buyer_msg(at(10)),
        agent_msg(at(10, 0, 5)),
        order(at(10, 30), "T1", "created", 1000),
        order(at(12), "T2", "created", 2000),
        buyer_msg(at(11), agent="s1:b"),
        agent_msg(at(11, 1), agent="s1:b"),
    )
    assert [o.order_id for o in rows.row("s1:a").orders] == ["T1"]
    assert [o.order_id for o in rows.row("s1:b").orders] == ["T2"]
