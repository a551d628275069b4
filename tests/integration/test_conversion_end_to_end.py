"""The seeds' worked example through real Kafka and Redis: 274 buyers asked agent A and were
answered, 3 of them then paid: 3 / 274 = 1.09 %. The orders are produced before the chats,
so the worker sees the late side arrive last and must re-credit."""

from __future__ import annotations

import time
from typing import Any

from config.calendar import calendar_for
from tests.integration.harness import Deployment, http_get, wait_for

CAL = calendar_for("Asia/Shanghai")


def worked_example(now_ms: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    day = CAL.day_start_ms(CAL.day(now_ms) - 1)  # yesterday, so every event is in the past
    messages, orders = [], []
    for n in range(274):
        buyer, start = f"tb_{n:04d}", day + 9 * 3_600_000 + n * 60_000
        messages.append(
            {
                "event_id": f"q{n}",
                "type": "message",
                "shop_id": "s1",
                "buyer_id": buyer,
                "agent_id": "s1:A",
                "sender": "buyer",
                "ts": start,
            }
        )
        messages.append(
            {
                "event_id": f"r{n}",
                "type": "message",
                "shop_id": "s1",
                "buyer_id": buyer,
                "agent_id": "s1:A",
                "sender": "agent",
                "ts": start + 9_000,
            }
        )
    for n, amount in ((3, "199.00"), (77, "58.50"), (200, "1024.99")):
        paid_at = day + 9 * 3_600_000 + n * 60_000 + 600_000
        orders.append(
            {
                "event_id": f"o{n}",
                "type": "order",
                "shop_id": "s1",
                "buyer_id": f"tb_{n:04d}",
                "order_id": f"T{n}",
                "status": "paid",
                "amount": amount,
                "ts": paid_at,
            }
        )
    # One more order, created but never paid, and one silent order from a buyer who never asked.
    orders.append(
        {
            "event_id": "o-c",
            "type": "order",
            "shop_id": "s1",
            "buyer_id": "tb_0010",
            "order_id": "TC",
            "status": "created",
            "amount": "10.00",
            "ts": day + 9 * 3_600_000 + 10 * 60_000 + 60_000,
        }
    )
    orders.append(
        {
            "event_id": "o-s",
            "type": "order",
            "shop_id": "s1",
            "buyer_id": "walk_in",
            "order_id": "TS",
            "status": "paid",
            "amount": 5,
            "ts": day + 20 * 3_600_000,
        }
    )
    return messages, orders


def test_274_answered_3_paid(deployment: Deployment) -> None:
    deployment.create_topics()
    messages, orders = worked_example(time.time_ns() // 1_000_000)
    last = deployment.produce(orders)
    last |= deployment.produce(messages)
    _, port = deployment.start_worker()
    deployment.wait_applied(last)

    floor = deployment.stats("s1")
    row = next(r for r in floor["agents"] if r["agent"] == "s1:A")
    window = row["windows"]["28d"]
    assert window["inquiries"] == 274
    assert window["paid_inquiries"] == 3 and window["ordered_inquiries"] == 4
    assert window["consult_pay_ratio"] == 3 / 274
    assert round(window["consult_pay_ratio"] * 100, 2) == 1.09
    assert window["consult_order_ratio"] == 4 / 274 and window["order_pay_ratio"] == 3 / 4
    assert window["attributed_sales_yuan"] == 1282.49
    assert window["average_order_value_yuan"] == round(1282.49 / 3, 2)
    totals = floor["totals"]["windows"]["28d"]
    assert (totals["orders"], totals["silent_orders"], totals["silent_sales_yuan"]) == (5, 1, 5.0)
    assert totals["silent_share"] == 1 / 5

    expected = f'kefu_consult_pay_ratio{{agent="s1:A",shop="s1",window="28d"}} {3 / 274}'
    wait_for(lambda: expected in http_get(port, "/metrics"), timeout=30, what=expected)
    assert 'kefu_attributed_sales_yuan{agent="s1:A",shop="s1",window="28d"} 1282.49' in http_get(
        port, "/metrics"
    )
