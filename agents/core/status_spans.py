"""Online time, away time and logins over several spans at once, compiled by mypyc: the leader
makes the row of every agent with status points anew each second (its online time moves), four
windows a row, and at 10,000 agents `status_time` per window was 140 ms of a round. The same
arithmetic as status.py's `status_time`, its reference (tests/unit/core/test_status.py holds
them equal, and test_compiled_core.py the compiled build and this source)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from agents.core.statuses import AWAY, LOGGED_IN

SpanFigures = tuple[int, int, int]  # online ms (away included), away ms, logins


class Point(Protocol):
    """A status change point (status.py's ChangePoint, which this module cannot import: status.py
    imports it)."""

    @property
    def ts(self) -> int: ...

    @property
    def status(self) -> str: ...


def span_figures(points: Sequence[Point], spans: Sequence[tuple[int, int]], now_ms: int) -> list[SpanFigures]:
    """Each `[start, end)` span's figures up to `now_ms`, in one pass over `points` (time order)."""
    count = len(spans)
    starts = [start for start, _ in spans]
    ends = [min(end, now_ms) for _, end in spans]
    online = [0] * count
    away = [0] * count
    logins = [0] * count
    was_logged_in = False  # before the first point the status is unknown
    last = len(points) - 1
    for index in range(len(points)):
        point = points[index]
        ts = point.ts
        if ts > now_ms:  # points after now do not count yet
            break
        status = point.status
        logged_in = status in LOGGED_IN
        if logged_in:
            following = points[index + 1].ts if index < last else now_ms
            is_away = status == AWAY
            for at in range(count):
                start, end = starts[at], ends[at]
                if not was_logged_in and start <= ts < end:
                    logins[at] += 1
                overlap = min(following, end) - max(ts, start)
                if overlap > 0:
                    online[at] += overlap
                    if is_away:
                        away[at] += overlap
        was_logged_in = logged_in
    return [(online[at], away[at], logins[at]) for at in range(count)]
