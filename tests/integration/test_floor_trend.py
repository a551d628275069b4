"""`/api/v1/floor/trend` through real Kafka and Redis: 60 one-minute points that add up to the
`1h` window, the leader's minute samples of waiting buyers, and each agent's hour against the
hour before."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.integration.harness import Deployment, chat_message, http_get, wait_for

SHOP = "shops:\n  s1:\n    agents: {'s1:A': {name: 小美, group: presale}, 's1:B': {name: 阿强}}\n"
MINUTE = 60_000


def conversation(
    serial: int, buyer: str, agent: str, asked: int, reply_ms: int | None
) -> list[dict[str, Any]]:
    events = [chat_message(f"t{serial}q", buyer, "buyer", asked, agent=agent)]
    if reply_ms is not None:
        events.append(chat_message(f"t{serial}a", buyer, "agent", asked + reply_ms, agent=agent))
    return events


def test_trend_points_add_up_to_the_hour_and_agents_compare_hours(deployment: Deployment) -> None:
    deployment.config.write_text(deployment.config.read_text() + SHOP)
    deployment.create_topics()
    now = time.time_ns() // 1_000_000
    events: list[dict[str, Any]] = []
    # A answered slowly in the hour before (20 s) and quickly in this one (5 s): better.
    for i in range(6):
        events += conversation(i, f"tb_old{i}", "s1:A", now - 110 * MINUTE + i * 5 * MINUTE, 20_000)
    for i in range(8):
        events += conversation(100 + i, f"tb_new{i}", "s1:A", now - 55 * MINUTE + i * 6 * MINUTE, 5_000)
    # B only this hour, one buyer still waiting: no comparison, and a waiting buyer to sample.
    events += conversation(200, "tb_b1", "s1:B", now - 30 * MINUTE, 8_000)
    events += conversation(201, "tb_b2", "s1:B", now - 2 * MINUTE, None)
    last = deployment.produce(events)
    _, port = deployment.start_worker()
    deployment.wait_applied(last)

    def trend() -> dict[str, Any]:
        return dict(json.loads(http_get(port, "/api/v1/floor/trend?shop=s1")))

    wait_for(lambda: trend()["points"]["waiting_buyers"][-1] == 1, timeout=30, what="a waiting sample")
    body = trend()
    floor = json.loads(http_get(port, "/api/v1/floor?shop=s1"))
    points = body["points"]
    assert body["minutes"] == 60
    assert all(len(series) == 60 for series in points.values())
    assert sum(points["consultations"]) == floor["totals"]["windows"]["1h"]["consultations"] == 10
    replied = [p for p in points["first_response_avg_seconds"] if p is not None]
    assert sorted(set(replied)) == [5.0, 8.0]
    assert points["consult_pay_ratio"].count(None) >= 50  # no inquiry paid: 0.0 where asked, else absent
    a, b = body["agents"]["s1:A"], body["agents"]["s1:B"]
    assert (a["last_hour"], a["hour_before"], a["direction"]) == (5.0, 20.0, "better")
    assert (b["last_hour"], b["hour_before"], b["direction"]) == (8.0, None, None)
    # The floor names each agent's group for `/floor?group=`.
    groups = {row["agent"]: row.get("group") for row in floor["agents"]}
    assert groups == {"s1:A": "presale", "s1:B": None}
