"""Alert conditions of metrics.md and their transitions, from floor snapshots.

`BuyerWaitingTooLong`: an agent's oldest wait exceeds the shop's threshold, now.
`FirstResponseSlow`: an agent's `5m` first-response average exceeds it.
An event is emitted only on a change of state: one `firing`, later one `resolved`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from streams.floor_model import ShopFloor

WAITING = "BuyerWaitingTooLong"
FIRST_RESPONSE = "FirstResponseSlow"
FIRST_RESPONSE_WINDOW = "5m"  # metrics.md judges the first response over the last five minutes

AlertKey = tuple[str, str, str]  # (alert, shop, agent)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    alert: str
    state: Literal["firing", "resolved"]
    shop_id: str
    agent_id: str
    value: float
    threshold: float
    ts: int

    def as_json(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "state": self.state,
            "shop_id": self.shop_id,
            "agent_id": self.agent_id,
            "value": self.value,
            "threshold": self.threshold,
            "ts": self.ts,
        }


def conditions(floors: Iterable[ShopFloor]) -> dict[AlertKey, tuple[bool, float, float]]:
    """Every (alert, shop, agent) the floors show, with (firing, value, threshold)."""
    out: dict[AlertKey, tuple[bool, float, float]] = {}
    for floor in floors:
        threshold = float(floor.alert_threshold_seconds)
        for row in floor.agents:
            wait = float(row.oldest_wait_seconds)
            out[(WAITING, floor.shop, row.agent)] = (wait > threshold, wait, threshold)
            first = row.windows[FIRST_RESPONSE_WINDOW].first_response_avg_seconds
            value = float(first) if first is not None else 0.0
            out[(FIRST_RESPONSE, floor.shop, row.agent)] = (value > threshold, value, threshold)
    return out


def transitions(
    firing_before: set[AlertKey], now: Mapping[AlertKey, tuple[bool, float, float]], ts: int
) -> list[AlertEvent]:
    """Events for alerts that started or stopped firing; an agent that vanished resolves."""
    events: list[AlertEvent] = []
    for key, (firing, value, threshold) in sorted(now.items()):
        if firing and key not in firing_before:
            events.append(AlertEvent(key[0], "firing", key[1], key[2], value, threshold, ts))
        elif not firing and key in firing_before:
            events.append(AlertEvent(key[0], "resolved", key[1], key[2], value, threshold, ts))
    for key in sorted(firing_before - now.keys()):
        events.append(AlertEvent(key[0], "resolved", key[1], key[2], 0.0, 0.0, ts))
    return events
