"""A response-metrics scenario with hand-computed expectations from metrics.md.

Placed on yesterday and the day before (shop time), so it is valid at any time of day;
one buyer waits since `now - 30 s` to exercise the live queue.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from config.calendar import calendar_for
from tests.integration.harness import chat_message

CAL = calendar_for("Asia/Shanghai")
SHOP_YAML = (
    "shops:\n  s1:\n    name: 旗舰店\n    block: ['ad_*']\n"
    "    agents:\n      's1:a': {name: 小美}\n      's1:b': {name: 阿强}\n"
)


def build(now_ms: int | None = None) -> tuple[list[dict[str, Any]], list[str], int]:
    """(events, invalid raw lines, now)."""
    now_ms = now_ms or time.time_ns() // 1_000_000
    today = CAL.day(now_ms)
    d = CAL.day_start_ms(today - 1)  # yesterday 00:00
    d0 = CAL.day_start_ms(today - 2)  # the day before
    s = 1000
    h = 3600 * s
    events = [
        chat_message("e1", "b1", "buyer", d + 10 * h, agent="s1:a"),
        chat_message("e2", "b1", "agent", d + 10 * h + 1 * s, agent="s1:a", auto_reply=True),
        chat_message("e3", "b1", "buyer", d + 10 * h + 5 * s, agent="s1:a"),
        chat_message("e4", "b1", "buyer", d + 10 * h + 7 * s, agent="s1:a"),
        chat_message("e5", "b1", "agent", d + 10 * h + 12 * s, agent="s1:a"),
        chat_message("e5", "b1", "agent", d + 10 * h + 12 * s, agent="s1:a"),  # duplicate delivery
        chat_message("e7", "b1", "buyer", d + 10 * h + 60 * s, agent="s1:a"),
        chat_message("e8", "b1", "agent", d + 10 * h + 80 * s, agent="s1:a"),  # an emoji is a reply too
        chat_message("e9", "b2", "buyer", d + 11 * h, agent="s1:a"),
        {
            "event_id": "e10",
            "type": "transfer",
            "shop_id": "s1",
            "buyer_id": "b2",
            "from_agent": "s1:a",
            "to_agent": "s1:b",
            "ts": d + 11 * h + 30 * s,
        },
        chat_message("e11", "b2", "agent", d + 11 * h + 45 * s, agent="s1:b"),
        chat_message("e12", "ad_spam_1", "buyer", d + 12 * h, agent="s1:a"),
        chat_message("e13", "ad_spam_1", "agent", d + 12 * h + 5 * s, agent="s1:a"),
        chat_message("e14", "b3", "buyer", d0 + 24 * h - 10 * s, agent="s1:a"),
        chat_message(
            "e15", "b3", "agent", d + 10 * s, agent="s1:a"
        ),  # just after midnight: answers yesterday
        chat_message("e16", "b5", "buyer", now_ms - 30 * s, agent="s1:a"),  # waiting now
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
