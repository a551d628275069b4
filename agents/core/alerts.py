"""Alert conditions of metrics.md and their transitions, from floor snapshots.

`BuyerWaitingTooLong`: an agent's oldest wait exceeds the shop's threshold, now.
`FirstResponseSlow`: an agent's `5m` first-response average exceeds it.
An event is emitted only on a change of state: one `firing`, later one `resolved`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from streams.contract.floor import ShopFloor

WAITING = "BuyerWaitingTooLong"
FIRST_RESPONSE = "FirstResponseSlow"
ALERTS = (WAITING, FIRST_RESPONSE)
FIRST_RESPONSE_WINDOW = "5m"  # metrics.md judges the first response over the last five minutes

AlertKey = tuple[str, str, str]  # (alert, shop, agent)
Firing = Mapping[AlertKey, int]  # the alerts firing now -> when each episode started (ms)


def alert_id(key: AlertKey, started_ms: int) -> str:
    """One episode's id (metrics.md): its firing and resolved events share it."""
    alert, shop, agent = key
    return f"{alert}/{shop}/{agent}/{started_ms}"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    alert: str
    state: Literal["firing", "resolved"]
    shop_id: str
    agent_id: str
    value: float
    threshold: float
    ts: int
    alert_id: str

    def as_json(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "state": self.state,
            "shop_id": self.shop_id,
            "agent_id": self.agent_id,
            "value": self.value,
            "threshold": self.threshold,
            "ts": self.ts,
            "alert_id": self.alert_id,
        }


def conditions(floors: Iterable[ShopFloor]) -> dict[AlertKey, tuple[bool, float, float]]:
    """Every (alert, shop, agent) the floors show, with (firing, value, threshold).

    Outside the shop's service hours nothing fires (metrics.md v2): an episode resolves at
    closing time and a wait still past the threshold fires again at opening."""
    out: dict[AlertKey, tuple[bool, float, float]] = {}
    for floor in floors:
        threshold = float(floor.alert_threshold_seconds)
        open_now = floor.in_service_hours
        for row in floor.agents:
            wait = float(row.oldest_wait_seconds)
            out[(WAITING, floor.shop, row.agent)] = (open_now and wait > threshold, wait, threshold)
            first = row.windows[FIRST_RESPONSE_WINDOW].first_response_avg_seconds
            value = float(first) if first is not None else 0.0
            out[(FIRST_RESPONSE, floor.shop, row.agent)] = (open_now and value > threshold, value, threshold)
    return out


def transitions(
    firing_before: Firing, now: Mapping[AlertKey, tuple[bool, float, float]], ts: int
) -> list[AlertEvent]:
    """Events for alerts that started or stopped firing; an agent that vanished resolves."""
    events: list[AlertEvent] = []
    for key, (firing, value, threshold) in sorted(now.items()):
        if firing and key not in firing_before:
            events.append(_event(key, "firing", value, threshold, ts, started=ts))
        elif not firing and key in firing_before:
            events.append(_event(key, "resolved", value, threshold, ts, started=firing_before[key]))
    for key in sorted(firing_before.keys() - now.keys()):
        events.append(_event(key, "resolved", 0.0, 0.0, ts, started=firing_before[key]))
    return events


def _event(
    key: AlertKey, state: Literal["firing", "resolved"], value: float, threshold: float, ts: int, started: int
) -> AlertEvent:
    alert, shop, agent = key
    return AlertEvent(alert, state, shop, agent, value, threshold, ts, alert_id(key, started))


def still_firing(
    firing_before: Firing, now: Mapping[AlertKey, tuple[bool, float, float]], ts: int
) -> dict[AlertKey, int]:
    """The firing set after `now`: each episode keeps its start, a new one starts at `ts`."""
    return {key: firing_before.get(key, ts) for key, (firing, _, _) in now.items() if firing}
