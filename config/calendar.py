"""Business days: the shop's natural day in its own time zone (`defaults.timezone`, a shop's
`timezone`), and the lengths of an hour and a day in event time.

Here rather than in `agents/core` because every layer counts in them: the core buckets by
business day, the simulator starts its history at a local midnight, and the input topics' retention
is a number of days. `agents/core/calendar.py` re-exports them for the core.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000

MAX_CACHED_HOURS = 100_000  # ~11 years of hours: a bound on memory, never reached in practice


class BusinessCalendar:
    """Maps event times to business days (ordinal of the local date) and back.

    UTC offsets change at most on hour boundaries in every real zone, so the offset is
    cached per UTC hour: the hot path is one dict lookup and one integer division.
    """

    __slots__ = ("_day_starts", "_offsets", "zone")

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._offsets: dict[int, int] = {}
        self._day_starts: dict[int, int] = {}  # a few dozen days are ever asked for

    def _offset_ms(self, ts_ms: int) -> int:
        hour = ts_ms // MS_PER_HOUR
        offset = self._offsets.get(hour)
        if offset is None:
            moment = datetime.fromtimestamp(hour * 3600, tz=UTC).astimezone(self.zone)
            delta = moment.utcoffset() or timedelta(0)
            offset = int(delta.total_seconds() * 1000)
            if len(self._offsets) >= MAX_CACHED_HOURS:
                self._offsets.clear()
            self._offsets[hour] = offset
        return offset

    def day(self, ts_ms: int) -> int:
        """The business day (proleptic Gregorian ordinal of the local date) of `ts_ms`."""
        return (ts_ms + self._offset_ms(ts_ms)) // MS_PER_DAY + _EPOCH_ORDINAL

    def day_start_ms(self, day: int) -> int:
        """Event time of local midnight that starts business day `day`."""
        start = self._day_starts.get(day)
        if start is None:
            local = datetime.combine(date.fromordinal(day), datetime.min.time(), tzinfo=self.zone)
            start = self._day_starts[day] = int(local.timestamp() * 1000)
        return start


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@lru_cache(maxsize=64)
def calendar_for(zone_name: str) -> BusinessCalendar:
    return BusinessCalendar(ZoneInfo(zone_name))
