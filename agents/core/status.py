"""Agent status (metrics.md "Agent status (v3)"): time in a status, from an agent's change points.

An agent's history is its change points, in time order: each one starts an interval in its
status that lasts until the next point, or until now for the last. Before the first point the
status is `unknown`, which is neither online nor away. A window counts the part of each
interval that overlaps it, up to now, on the wall clock (service hours do not apply). Late
points are simply points: the intervals are recomputed from whatever the store holds, so the
order in which events were applied never matters.

Windows here are half-open, `[start, end)`, and cut at now: `[start, min(end, now))`. A login
is a point into `online` or `away` whose previous status was `offline` or `unknown`, counted
in the window its time falls in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from agents.core.status_spans import span_figures
from agents.core.statuses import AWAY, LOGGED_IN, UNKNOWN
from agents.core.windows import ROLLING_SECONDS, WINDOW_DAYS, WINDOWS
from config.calendar import BusinessCalendar


@dataclass(frozen=True, slots=True)
class ChangePoint:
    """One status event as stored: from `ts` on, the agent is in `status`."""

    ts: int
    status: str


class StatusTime(msgspec.Struct, frozen=True, gc=False):
    """A window's status figures; they add up over agents and over days. A frozen Struct: made
    four times per row of an agent with status points, each second (a frozen dataclass's
    `__init__` cost 0.8 us)."""

    online_ms: int = 0  # online or away
    away_ms: int = 0
    logins: int = 0

    def __add__(self, other: StatusTime) -> StatusTime:
        return StatusTime(
            self.online_ms + other.online_ms, self.away_ms + other.away_ms, self.logins + other.logins
        )

    @property
    def online_seconds(self) -> float:
        return self.online_ms / 1000

    @property
    def away_seconds(self) -> float:
        return self.away_ms / 1000


NO_STATUS_TIME = StatusTime()  # frozen: one shared by every window without status points


def status_time(points: Sequence[ChangePoint], start_ms: int, end_ms: int, now_ms: int) -> StatusTime:
    """The figures of window `[start_ms, end_ms)` up to `now_ms`; `points` in time order (ties in
    the order they were produced). Points after now do not count yet."""
    if not points:  # most agents of a v2 feed: the leader asks four times per row it makes
        return NO_STATUS_TIME
    end = min(end_ms, now_ms)
    online = away = logins = 0
    previous = UNKNOWN
    for index, point in enumerate(points):
        if point.ts > now_ms:
            break
        logged_in = point.status in LOGGED_IN
        if logged_in and previous not in LOGGED_IN and start_ms <= point.ts < end:
            logins += 1
        following = points[index + 1].ts if index + 1 < len(points) else now_ms
        overlap = min(following, end) - max(point.ts, start_ms)
        if overlap > 0 and logged_in:
            online += overlap
            if point.status == AWAY:
                away += overlap
        previous = point.status
    return StatusTime(online, away, logins)


def status_times(
    points: Sequence[ChangePoint], spans: Sequence[tuple[int, int]], now_ms: int
) -> list[StatusTime]:
    """`status_time` of each span, in one pass over the points (status_spans.py)."""
    if not points:
        return [NO_STATUS_TIME] * len(spans)
    return [StatusTime(*figures) for figures in span_figures(points, spans, now_ms)]


def status_at(points: Sequence[ChangePoint], now_ms: int) -> str:
    """The status now: the latest point at or before now (`unknown` before any)."""
    current = UNKNOWN
    for point in points:
        if point.ts > now_ms:
            break
        current = point.status
    return current


def day_span(day: int, calendar: BusinessCalendar) -> tuple[int, int]:
    """Business day `day` as `[start, end)` in event time (23 or 25 hours across a DST change)."""
    return calendar.day_start_ms(day), calendar.day_start_ms(day + 1)


def window_spans(now_ms: int, calendar: BusinessCalendar) -> dict[str, tuple[int, int]]:
    """The floor's windows (core/windows.py) as `[start, end)`: `5m` and `1h` the last 300 and
    3,600 seconds before now, `today` the business day, `28d` the last 28 business days."""
    today = calendar.day(now_ms)
    spans: dict[str, tuple[int, int]] = {}
    for name in WINDOWS:
        if name in ROLLING_SECONDS:
            spans[name] = (now_ms - ROLLING_SECONDS[name] * 1000, now_ms)
        else:
            days = 1 if name == "today" else WINDOW_DAYS
            spans[name] = (calendar.day_start_ms(today - days + 1), calendar.day_start_ms(today + 1))
    return spans


def earliest_start(spans: dict[str, tuple[int, int]]) -> int:
    """Where a read for these windows must start: it also needs the last point before it."""
    return min(start for start, _ in spans.values())


def window_times(
    points: Sequence[ChangePoint], now_ms: int, calendar: BusinessCalendar
) -> dict[str, StatusTime]:
    spans = window_spans(now_ms, calendar)
    return dict(zip(spans, status_times(points, list(spans.values()), now_ms), strict=True))


def kept_from_ms(now_ms: int, calendar: BusinessCalendar, retention_days: int) -> int:
    """The start of the oldest business day kept (retention_days, today included): points before
    it are dropped, except the last of them, which gives the status at that moment."""
    return calendar.day_start_ms(calendar.day(now_ms) - retention_days + 1)
