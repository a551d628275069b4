"""metrics.md v2 through real Kafka and Redis: 催付 buyers, buyers who ask two agents, refunds
and the service clock, equal to hand-computed values on /metrics, the floor API and
`stats --json`; then a change of the judging moment, logged once and recomputed by `rebuild`.

The shop (yesterday, Asia/Shanghai, service hours 08:00-23:00, judge `paid`, rule `last`,
refunds deducted):

- c1 asks A 09:00 (A replies 09:00:05), orders T1 200.00 at 10:00, asks B 11:00 (B replies
  11:00:20: 催付), pays 12:00, is refunded 30.00 at 13:00. Payment credit: B (last at 12:00),
  net 170.00, refunded 30.00; A assisted it (170.00); the order credit stays with A.
- c2 asks A 09:30 (reply 09:30:10) and B 09:40 (reply 09:40:30), pays T2 100.00 at 10:00 with
  no `created` event, refunded whole at 15:00: B credited (net 0.00, refunded 100.00), A assisted.
- c3 asks A at 07:59:00, answered 08:00:10: 10 s on the service clock, within 15 s.
- c4 asks B two days ago and is never answered (counts against B's replied-within ratios).
- c5 asks A 16:00 (reply 16:00:03), pays T5 80.00 at 16:30, refunds 50.00 and 50.00: capped
  at 80.00, net 0.00.

A: 4 consultations, all replied (5, 10, 10, 3 s: mean 7 s), within 15 s and 180 s: 4/4;
   4 inquiries, ordered 2 (c1 at creation, c5), paid 1 (c5), sales 0.00, refunded 80.00,
   assisted 2 (c1, c2), assisted sales 170.00.
B: 3 consultations, 2 replied (20 s, 30 s: mean 25 s), within 15 s 0/3, within 180 s 2/3;
   2 inquiries, ordered 2, paid 2, sales 170.00, refunded 130.00, assisted 0.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from config.calendar import calendar_for
from tests.integration.harness import Deployment, chat_message, http_get, order_event, wait_for

CAL = calendar_for("Asia/Shanghai")
SHOP = (
    "defaults:\n  service_hours: '08:00-23:00'\n"
    "  attribution: {judge: paid, rule: last, deduct_refunds: true}\n"
    "shops:\n  s1:\n    agents: {'s1:A': {name: 小美}, 's1:B': {name: 阿强}}\n"
)
HOUR, MINUTE, SECOND = 3_600_000, 60_000, 1000


def scenario(now_ms: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    day = CAL.day_start_ms(CAL.day(now_ms) - 1)
    earlier = CAL.day_start_ms(CAL.day(now_ms) - 2)
    serial = iter(range(1000))

    def at(hours: int, minutes: int = 0, seconds: int = 0, base: int = day) -> int:
        return base + hours * HOUR + minutes * MINUTE + seconds * SECOND

    def say(buyer: str, agent: str, sender: str, ts: int) -> dict[str, Any]:
        return chat_message(f"m{next(serial)}", buyer, sender, ts, agent=agent)

    def order(buyer: str, order_id: str, status: str, ts: int, amount: str | None) -> dict[str, Any]:
        return order_event(f"o{next(serial)}", buyer, order_id, status, ts, amount)

    messages = [
        say("tb_c1", "s1:A", "buyer", at(9)),
        say("tb_c1", "s1:A", "agent", at(9, 0, 5)),
        say("tb_c1", "s1:B", "buyer", at(11)),
        say("tb_c1", "s1:B", "agent", at(11, 0, 20)),
        say("tb_c2", "s1:A", "buyer", at(9, 30)),
        say("tb_c2", "s1:A", "agent", at(9, 30, 10)),
        say("tb_c2", "s1:B", "buyer", at(9, 40)),
        say("tb_c2", "s1:B", "agent", at(9, 40, 30)),
        say("tb_c3", "s1:A", "buyer", at(7, 59)),
        say("tb_c3", "s1:A", "agent", at(8, 0, 10)),
        say("tb_c4", "s1:B", "buyer", at(8, 30, base=earlier)),
        say("tb_c5", "s1:A", "buyer", at(16)),
        say("tb_c5", "s1:A", "agent", at(16, 0, 3)),
    ]
    orders = [
        order("tb_c1", "T1", "created", at(10), "200.00"),
        order("tb_c1", "T1", "paid", at(12), "200.00"),
        order("tb_c1", "T1", "refunded", at(13), "30.00"),
        order("tb_c2", "T2", "paid", at(10), "100.00"),
        order("tb_c2", "T2", "refunded", at(15), None),
        order("tb_c5", "T5", "paid", at(16, 30), "80.00"),
        order("tb_c5", "T5", "refunded", at(17), "50.00"),
        order("tb_c5", "T5", "refunded", at(18), "50.00"),
    ]
    return messages, orders


JUDGED_AT_PAYMENT = {
    "s1:A": {
        "consultations": 4,
        "replied_consultations": 4,
        "first_response_avg_seconds": 7.0,
        "replied_within_ratio": {"15": 1.0, "180": 1.0},
        "inquiries": 4,
        "ordered_inquiries": 2,
        "paid_inquiries": 1,
        "attributed_sales_yuan": 0.0,
        "refunded_sales_yuan": 80.0,
        "assisted_paid": 2,
        "assisted_sales_yuan": 170.0,
    },
    "s1:B": {
        "consultations": 3,
        "replied_consultations": 2,
        "first_response_avg_seconds": 25.0,
        "replied_within_ratio": {"15": 0.0, "180": 2 / 3},
        "inquiries": 2,
        "ordered_inquiries": 2,
        "paid_inquiries": 2,
        "attributed_sales_yuan": 170.0,
        "refunded_sales_yuan": 130.0,
        "assisted_paid": 0,
        "assisted_sales_yuan": 0.0,
    },
}
# Judged at creation: c1's payment follows A's order credit (no assist: B had not answered at
# 10:00); c2 (created at its payment, 10:00) goes to B, A assisted with 0.00 net.
JUDGED_AT_CREATION = {
    "s1:A": JUDGED_AT_PAYMENT["s1:A"]
    | {
        "paid_inquiries": 2,
        "attributed_sales_yuan": 170.0,
        "refunded_sales_yuan": 110.0,
        "assisted_paid": 1,
        "assisted_sales_yuan": 0.0,
    },
    "s1:B": JUDGED_AT_PAYMENT["s1:B"]
    | {
        "ordered_inquiries": 1,
        "paid_inquiries": 1,
        "attributed_sales_yuan": 0.0,
        "refunded_sales_yuan": 100.0,
    },
}


def window_of(floor: dict[str, Any], agent: str, keys: dict[str, Any]) -> dict[str, Any]:
    row = next(r for r in floor["agents"] if r["agent"] == agent)
    return {key: row["windows"]["28d"][key] for key in keys}


def metric_line(name: str, agent: str, value: float, within: str | None = None) -> str:
    labels = f'agent="{agent}",shop="s1",window="28d"' + (f',within="{within}"' if within else "")
    return f"{name}{{{labels}}} {float(value)}"


def assert_numbers(deployment: Deployment, port: int, expected: dict[str, dict[str, Any]]) -> None:
    floor = deployment.stats("s1")
    api = json.loads(http_get(port, "/api/v1/floor?shop=s1"))
    for agent, values in expected.items():
        assert window_of(floor, agent, values) == values, agent
        assert window_of(api, agent, values) == values, agent
    assert floor["totals"]["windows"]["28d"]["silent_orders"] == 0
    assert floor["totals"]["windows"]["28d"]["orders"] == 3
    lines = [
        metric_line(f"kefu_{key}", agent, value)
        for agent, values in expected.items()
        for key, value in values.items()
        if key in ("refunded_sales_yuan", "assisted_paid", "assisted_sales_yuan", "attributed_sales_yuan")
    ] + [
        metric_line("kefu_replied_within_ratio", agent, value, within)
        for agent, values in expected.items()
        for within, value in values["replied_within_ratio"].items()
    ]

    def exported() -> list[str]:
        text = http_get(port, "/metrics")
        return [line for line in lines if line not in text]

    wait_for(lambda: not exported(), timeout=30, what="the /metrics lines")


def test_cuifu_two_agents_and_refunds_end_to_end(deployment: Deployment) -> None:
    deployment.config.write_text(deployment.config.read_text() + SHOP)
    deployment.create_topics()
    messages, orders = scenario(time.time_ns() // 1_000_000)
    last = deployment.produce(orders)  # payments and refunds first: the late side arrives last
    last |= deployment.produce(messages)
    _, port = deployment.start_worker()
    deployment.wait_applied(last)
    wait_for(lambda: deployment.knows_shop("s1"), timeout=30, what="the shop in stats")
    assert_numbers(deployment, port, JUDGED_AT_PAYMENT)

    # Judge at creation from now on: the worker says once that history needs a rebuild.
    log = Path(deployment.tmp) / f"worker-{deployment.name}-0.log"
    stamp = deployment.config.stat().st_mtime_ns
    deployment.config.write_text(deployment.config.read_text().replace("judge: paid", "judge: created"))
    assert deployment.config.stat().st_mtime_ns != stamp
    wait_for(lambda: "kefu-pulse rebuild" in log.read_text(errors="replace"), timeout=30, what="the log")
    time.sleep(2)  # more polls of the unchanged file say nothing more
    assert log.read_text(errors="replace").count("kefu-pulse rebuild") == 1
    assert "$.defaults.attribution.judge: 'paid' -> 'created'" in log.read_text(errors="replace")

    deployment.stop_workers()
    deployment.rebuild()
    _, port = deployment.start_worker()
    deployment.wait_applied(last)
    assert_numbers(deployment, port, JUDGED_AT_CREATION)
