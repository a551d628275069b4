"""metrics.md v3 satisfaction through real Kafka and Redis, equal to hand-computed values on
/metrics, the floor API, `stats --json` and a report.

Yesterday (Asia/Shanghai):
- r1 asks A 09:00, answered 09:00:05, rates A 5 at 09:10.
- r2 asks A 10:00, answered 10:00:08, rates A 1 at 10:30, then changes it to 4 at 11:00.
- r3 asks B 09:00, answered 09:00:20, rates B 2 at 09:30.
- r4 rates A at 12:00 without ever asking anyone: unmatched (counted, never credited).
- r1's rating is delivered twice: the second is a duplicate.

A: 2 replied consultations, both rated (5 and 4): rating ratio 1, satisfaction 1, no bad
   rating, mean score 4.5. B: 1 replied, rated 2: rating ratio 1, satisfaction 0, one bad
   rating, mean 2. The team: 3 rated of 3 replied, 2 satisfied: 2/3, mean 11/3.
"""

from __future__ import annotations

import json
import time
from typing import Any

from config.calendar import calendar_for
from tests.integration.harness import Deployment, chat_message, http_get, wait_for

CAL = calendar_for("Asia/Shanghai")
HOUR, MINUTE, SECOND = 3_600_000, 60_000, 1000
EXPECTED = {
    "s1:A": {
        "rated_consultations": 2,
        "rating_ratio": 1.0,
        "satisfaction_ratio": 1.0,
        "dissatisfied_consultations": 0,
        "average_rating_score": 4.5,
    },
    "s1:B": {
        "rated_consultations": 1,
        "rating_ratio": 1.0,
        "satisfaction_ratio": 0.0,
        "dissatisfied_consultations": 1,
        "average_rating_score": 2.0,
    },
}
TEAM = {"rated_consultations": 3, "satisfaction_ratio": 2 / 3, "average_rating_score": round(11 / 3, 3)}


def rating(event_id: str, buyer: str, agent: str, score: int, ts: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "rating",
        "shop_id": "s1",
        "buyer_id": buyer,
        "agent_id": agent,
        "score": score,
        "ts": ts,
    }


def scenario(now_ms: int) -> list[dict[str, Any]]:
    day = CAL.day_start_ms(CAL.day(now_ms) - 1)

    def at(hours: int, minutes: int = 0, seconds: int = 0) -> int:
        return day + hours * HOUR + minutes * MINUTE + seconds * SECOND

    first = rating("rate-1", "tb_r1", "s1:A", 5, at(9, 10))
    return [
        chat_message("m1", "tb_r1", "buyer", at(9), agent="s1:A"),
        chat_message("m2", "tb_r1", "agent", at(9, 0, 5), agent="s1:A"),
        first,
        chat_message("m3", "tb_r2", "buyer", at(10), agent="s1:A"),
        chat_message("m4", "tb_r2", "agent", at(10, 0, 8), agent="s1:A"),
        rating("rate-2", "tb_r2", "s1:A", 1, at(10, 30)),
        rating("rate-3", "tb_r2", "s1:A", 4, at(11)),
        chat_message("m5", "tb_r3", "buyer", at(9), agent="s1:B"),
        chat_message("m6", "tb_r3", "agent", at(9, 0, 20), agent="s1:B"),
        rating("rate-4", "tb_r3", "s1:B", 2, at(9, 30)),
        rating("rate-5", "tb_r4", "s1:A", 5, at(12)),
        first,
    ]


def window_of(floor: dict[str, Any], agent: str) -> dict[str, Any]:
    row = next(r for r in floor["agents"] if r["agent"] == agent)
    return {key: row["windows"]["28d"][key] for key in EXPECTED[agent]}


def metric_lines(messages_topic: str) -> list[str]:
    names = {
        "rated_consultations",
        "satisfaction_ratio",
        "dissatisfied_consultations",
        "average_rating_score",
    }
    return [
        f'kefu_{key}{{agent="{agent}",shop="s1",window="28d"}} {float(value)}'
        for agent, values in EXPECTED.items()
        for key, value in values.items()
        if key in names
    ] + [f'kefu_events_total{{outcome="unmatched",topic="{messages_topic}"}} 1.0']


def test_ratings_end_to_end(deployment: Deployment) -> None:
    deployment.create_topics()
    now_ms = time.time_ns() // 1_000_000
    last = deployment.produce(scenario(now_ms))
    _, port = deployment.start_worker()
    deployment.wait_applied(last)
    wait_for(lambda: deployment.knows_shop("s1"), timeout=30, what="the shop in stats")

    stats = deployment.stats("s1")
    api = json.loads(http_get(port, "/api/v1/floor?shop=s1"))
    for agent, values in EXPECTED.items():
        assert window_of(stats, agent) == values, agent
        assert window_of(api, agent) == values, agent
    team = api["totals"]["windows"]["28d"]
    assert {key: team[key] for key in TEAM} == TEAM

    def missing() -> list[str]:
        text = http_get(port, "/metrics")
        return [line for line in metric_lines(deployment.topics["messages"]) if line not in text]

    deadline = time.monotonic() + 30
    while missing() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert missing() == []

    yesterday = CAL.day(now_ms) - 1
    day_text = time.strftime("%Y-%m-%d", time.gmtime(CAL.day_start_ms(yesterday) / 1000 + 8 * 3600))
    result = deployment.cli(
        "report", "--shop", "s1", "--from", day_text, "--to", day_text, "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for row in report["agents"]:
        assert {key: row["metrics"][key] for key in EXPECTED[row["agent"]]} == EXPECTED[row["agent"]]
    assert {key: report["totals"]["metrics"][key] for key in TEAM} == TEAM
