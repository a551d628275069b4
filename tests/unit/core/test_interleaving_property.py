"""Kafka may deliver the two co-partitioned topics interleaved arbitrarily: the numbers must be
those of event-time order, for every attribution rule, window, judging moment and refund rule
(a refund or a payment arriving before the messages that precede it changes nothing)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from streams.contract.events import Event, Message, Order
from tests.builders import DAY0, Ledger, settings

AGENTS = ["s1:a", "s1:b"]
BUYERS = ["b1", "b2"]


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[Event], list[Event]]:
    ts = DAY0 + 18 * 3_600_000
    messages: list[Event] = []
    orders: list[Event] = []
    order_ids = 0
    for n in range(draw(st.integers(1, 30))):
        ts += draw(st.integers(0, 3 * 3_600_000))
        buyer = draw(st.sampled_from(BUYERS))
        kind = draw(st.sampled_from(["buyer", "agent", "auto", "order", "pay", "cancel", "refund"]))
        if kind in ("buyer", "agent", "auto"):
            agent = draw(st.sampled_from(AGENTS))
            sender = "buyer" if kind == "buyer" else "agent"
            messages.append(Message(f"m{n}", "s1", buyer, ts, agent, sender, kind == "auto"))
        elif kind == "order" or order_ids == 0:
            order_ids += 1
            orders.append(
                Order(f"o{n}", "s1", buyer, ts, f"T{order_ids}", "created", draw(st.integers(0, 10_000)))
            )
        else:
            target = draw(st.integers(1, order_ids))
            status = {"pay": "paid", "cancel": "cancelled", "refund": "refunded"}[kind]
            amount = draw(st.integers(0, 10_000))
            refund_all = kind == "refund" and draw(st.booleans())
            orders.append(
                Order(f"o{n}", "s1", buyer, ts, f"T{target}", status, None if refund_all else amount)
            )
    return messages, orders


def run(config: str, events: list[Event]) -> Ledger:
    ledger = Ledger(settings=settings(config), now_ms=DAY0 + 6 * 86_400_000)
    ledger.apply(*events)
    return ledger


def numbers(ledger: Ledger) -> dict[tuple[str, str, int], list[int]]:
    return {k: v for k, v in ledger.by_start.items() if any(v)}


@pytest.mark.parametrize("rule", ["first", "last", "all"])
@pytest.mark.parametrize("judge", ["created", "paid", "created_first"])
@pytest.mark.parametrize("deduct_refunds", ["true", "false"])
@hypothesis_settings(max_examples=60)
@given(data=st.data())
def test_any_interleaving_equals_event_time_order(
    rule: str, judge: str, deduct_refunds: str, data: st.DataObject
) -> None:
    messages, orders = data.draw(scenario())
    window = data.draw(st.sampled_from(["same_day", "next_day", "24h"]))
    hours = data.draw(st.sampled_from(["null", "'08:00-23:00'"]))
    config = (
        f"defaults: {{after_sale_days: 1, service_hours: {hours}, attribution: "
        f"{{rule: {rule}, window: {window}, judge: {judge}, deduct_refunds: {deduct_refunds}}}}}"
    )
    # Event-time order; ties keep messages first then orders, as a stable merge by ts does.
    reference = run(config, sorted(messages + orders, key=lambda e: e.ts))
    picks = data.draw(
        st.lists(st.booleans(), min_size=len(messages) + len(orders), max_size=len(messages) + len(orders))
    )
    merged: list[Event] = []
    m, o = iter(messages), iter(orders)
    remaining_m, remaining_o = len(messages), len(orders)
    for take_message in picks:
        if (take_message and remaining_m) or not remaining_o:
            merged.append(next(m))
            remaining_m -= 1
        else:
            merged.append(next(o))
            remaining_o -= 1
    interleaved = run(config, merged)
    assert numbers(interleaved) == numbers(reference)
    assert interleaved.waits == reference.waits
