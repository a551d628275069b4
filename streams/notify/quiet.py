"""Quiet hours of a channel: when a notice waits instead of waking a group chat.

A channel's `quiet_hours` is `HH:MM-HH:MM` in the shop's local time (it may wrap midnight:
`23:00-08:00`), or `outside_service_hours`: quiet whenever the shop is closed. Notices due in
quiet hours are held, not dropped, and go out when the quiet hours end; a firing notice whose
alert resolved meanwhile is dropped together with its resolution (outbox.py does that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from config.errors import KefuError

OUTSIDE_SERVICE_HOURS = "outside_service_hours"
MINUTES_PER_DAY = 24 * 60
_CLOCK = re.compile(r"^([01][0-9]|2[0-4]):([0-5][0-9])$")


class BadQuietHours(KefuError, ValueError):
    """A `quiet_hours` value that is neither `HH:MM-HH:MM` nor `outside_service_hours`."""


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Quiet from minute `start` of the local day up to minute `end` (wrapping midnight when
    `end <= start`), in `zone`."""

    start: int
    end: int
    zone: ZoneInfo

    def until_ms(self, now_ms: int) -> int | None:
        """When the quiet hours around `now_ms` end (ms), or None when it is not quiet now."""
        local = datetime.fromtimestamp(now_ms / 1000, self.zone)
        minute = local.hour * 60 + local.minute
        if not self._covers(minute):
            return None
        end_day = local.date() if minute < self.end else local.date() + timedelta(days=1)
        hours, minutes = divmod(self.end % MINUTES_PER_DAY, 60)
        end = datetime.combine(end_day, time(hours, minutes), self.zone)
        return int(end.timestamp() * 1000)

    def _covers(self, minute: int) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end


def _minutes(text: str, spec: str) -> int:
    match = _CLOCK.match(text.strip())
    minutes = int(match.group(1)) * 60 + int(match.group(2)) if match else -1
    if not 0 <= minutes <= MINUTES_PER_DAY:
        raise BadQuietHours(f"quiet_hours: expected HH:MM-HH:MM or {OUTSIDE_SERVICE_HOURS}, got {spec!r}")
    return minutes


def _span(spec: str) -> tuple[int, int]:
    first, dash, second = spec.partition("-")
    if not dash:
        raise BadQuietHours(f"quiet_hours: expected HH:MM-HH:MM or {OUTSIDE_SERVICE_HOURS}, got {spec!r}")
    return _minutes(first, spec), _minutes(second, spec)


def quiet_hours(spec: str | None, zone: ZoneInfo, service_hours: str | None) -> QuietHours | None:
    """The channel's quiet hours, or None when it is never quiet (no `quiet_hours`, or
    `outside_service_hours` for a shop open all day)."""
    if spec is None:
        return None
    if spec == OUTSIDE_SERVICE_HOURS:
        if service_hours is None:
            return None
        opening, closing = _span(service_hours)
        start, end = closing % MINUTES_PER_DAY, opening
    else:
        start, end = _span(spec)
        start, end = start % MINUTES_PER_DAY, end % MINUTES_PER_DAY
    return None if start == end else QuietHours(start, end, zone)
