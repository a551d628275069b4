"""A response-metrics scenario with hand-computed expectations from metrics.md.

Placed on yesterday and the day before (shop time), so it is valid at any time of day;
one buyer waits since `now - 30 s` to exercise the live queue.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from agents.core.calendar import calendar_for

CAL = calendar_for("Asia/Shanghai")
SHOP_YAML = (
    "shops:\n  s1:\n    name: 旗舰店\n    block: ['ad_*']\n"
    "    agents:\n      's1:a': {name: 小美}\n      's1:b': {name: 阿强}\n"
)


def _msg(eid: str, ts: int, buyer: str, agent: str, sender: str, auto: bool = False) -> dict[str, Any]:
    event = {
        "event_id": eid,
        "type": "message",
        "shop_id": "s1",
        "buyer_id": buyer,
        "agent_id": agent,
        "sender": sender,
        "ts": ts,
    }
    if auto:
        event["auto_reply"] = True
    return event


def build(now_ms: int | None = None) -> tuple[list[dict[str, Any]], list[str], int]:
    """(events, invalid raw lines, now)."""
    now_ms = now_ms or time.time_ns() // 1_000_000
    today = CAL.day(now_ms)
    d = CAL.day_start_ms(today - 1)  # yesterday 00:00
    d0 = CAL.day_start_ms(today - 2)  # the day before
    s = 1000
    h = 3600 * s
    events = [
        _msg("e1", d + 10 * h, "b1", "s1:a", "buyer"),
        _msg("e2", d + 10 * h + 1 * s, "b1", "s1:a", "agent", auto=True),
        _msg("e3", d + 10 * h + 5 * s, "b1", "s1:a", "buyer"),
        _msg("e4", d + 10 * h + 7 * s, "b1", "s1:a", "buyer"),
        _msg("e5", d + 10 * h + 12 * s, "b1", "s1:a", "agent"),
        _msg("e5", d + 10 * h + 12 * s, "b1", "s1:a", "agent"),  # duplicate delivery
        _msg("e7", d + 10 * h + 60 * s, "b1", "s1:a", "buyer"),
        _msg("e8", d + 10 * h + 80 * s, "b1", "s1:a", "agent"),  # an emoji is a reply too
        _msg("e9", d + 11 * h, "b2", "s1:a", "buyer"),
        {
            "event_id": "e10",
            "type": "transfer",
            "shop_id": "s1",
            "buyer_id": "b2",
            "from_agent": "s1:a",
            "to_agent": "s1:b",
            "ts": d + 11 * h + 30 * s,
        },
        _msg("e11", d + 11 * h + 45 * s, "b2", "s1:b", "agent"),
        _msg("e12", d + 12 * h, "ad_spam_1", "s1:a", "buyer"),
        _msg("e13", d + 12 * h + 5 * s, "ad_spam_1", "s1:a", "agent"),
        _msg("e14", d0 + 24 * h - 10 * s, "b3", "s1:a", "buyer"),
        _msg("e15", d + 10 * s, "b3", "s1:a", "agent"),  # just after midnight: answers yesterday
        _msg("e16", now_ms - 30 * s, "b5", "s1:a", "buyer"),  # waiting now
    ]
    invalid = [
        json.dumps(
            {
                "event_id": "x1",
                "type": "message",
                "shop_id": "s1",
                "buyer_id": "b1",
                "agent_id": "s1:a",
                "sender": "robot",
                "ts": d + 10 * h,
            }
        ),
        json.dumps({"event_id": "x2", "type": "chat", "shop_id": "s1", "buyer_id": "b1", "ts": d + 10 * h}),
    ]
    return events, invalid, now_ms


def write_replay_file(path: Path, events: list[dict[str, Any]], invalid: list[str]) -> Path:
    lines = [json.dumps(e, ensure_ascii=False) for e in events[:8]]
    # Invalid events travel as {"key", "value"} records so they reach Kafka as they are.
    lines += [json.dumps({"key": "s1:b1", "value": raw}) for raw in invalid]
    lines.append("this line is not JSON at all")
    lines += [json.dumps(e, ensure_ascii=False) for e in events[8:]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# 28d expectations (metrics.md), by hand:
#  s1:a consultations b1 (yesterday), b2 (yesterday), b3 (day before), b5 (today) = 4; replied b1, b3.
#       first responses 12 s (b1), 20 s (b3, answered after midnight) → 16 s; waits 12, 20, 20 → 17.333 s.
#  s1:b consultation b2 from the transfer at 11:00:30, replied 11:00:45 → 15 s; its wait kept the
#       11:00:00 start → 45 s.
EXPECTED_28D = {
    "s1:a": {
        "consultations": 4,
        "replied_consultations": 2,
        "reply_ratio": 0.5,
        "first_response_avg_seconds": 16.0,
        "response_avg_seconds": 17.333,
    },
    "s1:b": {
        "consultations": 1,
        "replied_consultations": 1,
        "reply_ratio": 1.0,
        "first_response_avg_seconds": 15.0,
        "response_avg_seconds": 45.0,
    },
}
