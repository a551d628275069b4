"""Alert conditions of metrics.md and their transitions, from floor snapshots.

`BuyerWaitingTooLong`: an agent's oldest wait exceeds the shop's threshold, now.
`FirstResponseSlow`: an agent's `5m` first-response average exceeds it.
An event is emitted only on a change of state: one `firing`, later one `resolved`.
The leader compares them once a second and, in between, at each wait's crossing
(`next_crossings`: when an oldest wait passes the threshold on the service clock).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agents.core.service_clock import ServiceClock
from streams.contract.floor import AgentRow, ShopFloor

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
        _add_conditions(out, floor, floor.agents)
    return out


def compared_conditions(
    floors: Iterable[ShopFloor], before: Firing
) -> dict[AlertKey, tuple[bool, float, float]]:
    """`conditions`, narrowed to the rows `transitions` and `still_firing` need against `before`:
    those with an alert firing now or in `before`. Both give the same events and set with it as
    with every row (the rest neither change state nor fire); the leader compares 10,000 agents
    a round, nearly all quiet, and made 20,000 keys of them."""
    watched: dict[str, set[str]] = {}
    for _, shop, agent in before:
        watched.setdefault(shop, set()).add(agent)
    out: dict[AlertKey, tuple[bool, float, float]] = {}
    for floor in floors:
        seen = watched.get(floor.shop, _NO_AGENTS)
        threshold = float(floor.alert_threshold_seconds)
        if floor.in_service_hours:
            rows = [row for row in floor.agents if row.agent in seen or _over(row, threshold)]
        else:  # closed: nothing fires
            rows = [row for row in floor.agents if row.agent in seen]
        _add_conditions(out, floor, rows)
    return out


_NO_AGENTS: frozenset[str] = frozenset()


def _over(row: AgentRow, threshold: float) -> bool:
    first = row.windows[FIRST_RESPONSE_WINDOW].first_response_avg_seconds
    return float(row.oldest_wait_seconds) > threshold or (first is not None and float(first) > threshold)


def _add_conditions(
    out: dict[AlertKey, tuple[bool, float, float]], floor: ShopFloor, rows: Iterable[AgentRow]
) -> None:
    threshold = float(floor.alert_threshold_seconds)
    open_now = floor.in_service_hours
    for row in rows:
        wait = float(row.oldest_wait_seconds)
        out[(WAITING, floor.shop, row.agent)] = (open_now and wait > threshold, wait, threshold)
        first = row.windows[FIRST_RESPONSE_WINDOW].first_response_avg_seconds
        value = float(first) if first is not None else 0.0
        out[(FIRST_RESPONSE, floor.shop, row.agent)] = (open_now and value > threshold, value, threshold)


def transitions(
    firing_before: Firing, now: Mapping[AlertKey, tuple[bool, float, float]], ts: int
) -> list[AlertEvent]:
    """Events for alerts that started or stopped firing; an agent that vanished resolves.
    In key order: those still shown first, then the vanished ones."""
    # Only the keys that change are sorted: the leader compares every agent twice a round, and
    # sorting 20,000 keys at 10,000 agents cost more than the comparison.
    changed = [key for key, (firing, _, _) in now.items() if bool(firing) != (key in firing_before)]
    events: list[AlertEvent] = []
    for key in sorted(changed):
        firing, value, threshold = now[key]
        if firing:
            events.append(_event(key, "firing", value, threshold, ts, started=ts))
        else:
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


def needed_wait_ms(threshold_seconds: float) -> int:
    """The shortest wait, in whole ms, that fires: `round(ms / 1000, 3) > threshold` (the floor's
    oldest wait is ms-exact), so one ms past the threshold."""
    return math.floor(threshold_seconds * 1000) + 1


def open_instant_after(clock: ServiceClock, from_ms: int, service_ms: int) -> int | None:
    """The first instant from `from_ms` on that is inside service hours and has `service_ms` of
    service time since `from_ms`; None if the shop does not open within a year (never, then)."""
    if clock.always_open:
        return from_ms + service_ms
    needed = max(0, service_ms)
    first = clock.calendar.day(from_ms)
    for day in range(first, first + 366):
        opens, closes = clock.hours_of(day)
        low = max(from_ms, opens)
        if closes <= low:
            continue
        if low + needed < closes:  # closing itself is outside service hours
            return low + needed
        needed -= closes - low
    return None


def next_crossings(
    floors: Iterable[ShopFloor], clocks: Callable[[str], ServiceClock], firing: Firing
) -> dict[str, int]:
    """Each shop's next `BuyerWaitingTooLong` crossing: the earliest instant when one of its agents
    not firing now has its oldest wait past the threshold, inside service hours. Measured from
    each floor's `as_of`, on the service clock (a wait grows only while the shop is open)."""
    out: dict[str, int] = {}
    for floor in floors:
        clock = clocks(floor.shop)
        needed = needed_wait_ms(floor.alert_threshold_seconds)
        for row in floor.agents:
            if not row.waiting_buyers or (WAITING, floor.shop, row.agent) in firing:
                continue
            waited = round(row.oldest_wait_seconds * 1000)
            crossing = open_instant_after(clock, floor.as_of, needed - waited)
            if crossing is not None and crossing < out.get(floor.shop, crossing + 1):
                out[floor.shop] = crossing
    return out


def wait_over(clock: ServiceClock, oldest_ms: int | None, now_ms: int, threshold_seconds: float) -> bool:
    """The `BuyerWaitingTooLong` condition for a wait that started at `oldest_ms` (None: no wait)."""
    if oldest_ms is None or not clock.is_open(now_ms):
        return False
    return clock.elapsed(oldest_ms, now_ms) >= needed_wait_ms(threshold_seconds)


def in_scope(firing: Firing, shops: Container[str]) -> tuple[dict[AlertKey, int], dict[AlertKey, int]]:
    """The firing set split in two: the alerts of `shops`, and the others (left as they are)."""
    inside: dict[AlertKey, int] = {}
    outside: dict[AlertKey, int] = {}
    for key, started in firing.items():
        (inside if key[1] in shops else outside)[key] = started
    return inside, outside
