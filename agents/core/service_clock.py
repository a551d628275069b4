"""The service clock (metrics.md v2): response latencies count only time inside service hours.

A shop open `08:00-23:00` in its own time zone measures a buyer who wrote at 07:59:00 and
was answered at 08:00:10 as a 10 s wait. Without service hours the clock is the wall clock,
and `elapsed` is one subtraction: the hot path of every shop that sets none.
"""

from __future__ import annotations

from datetime import date, datetime, time

from config.calendar import BusinessCalendar

MINUTES_PER_DAY = 24 * 60


class ServiceClock:
    __slots__ = ("_always_open", "_hours", "calendar", "closing_minute", "opening_minute")

    def __init__(
        self, calendar: BusinessCalendar, opening_minute: int = 0, closing_minute: int = 1440
    ) -> None:
        self.calendar = calendar
        self.opening_minute = opening_minute
        self.closing_minute = closing_minute
        self._always_open = opening_minute == 0 and closing_minute == MINUTES_PER_DAY
        self._hours: dict[int, tuple[int, int]] = {}  # business day -> (opens, closes) in event time

    @property
    def always_open(self) -> bool:
        return self._always_open

    def hours_of(self, day: int) -> tuple[int, int]:
        """When business day `day` opens and closes, in event time (local wall clock, DST-aware)."""
        hours = self._hours.get(day)
        if hours is None:
            hours = self._hours[day] = (
                self._moment(day, self.opening_minute),
                self._moment(day, self.closing_minute),
            )
            if len(self._hours) > 4096:  # a bound on memory: a few dozen days are ever asked for
                self._hours = {day: hours}
        return hours

    def _moment(self, day: int, minute: int) -> int:
        if minute == MINUTES_PER_DAY:
            return self.calendar.day_start_ms(day + 1)
        local = datetime.combine(
            date.fromordinal(day), time(minute // 60, minute % 60), tzinfo=self.calendar.zone
        )
        return int(local.timestamp() * 1000)

    def elapsed(self, start_ms: int, end_ms: int) -> int:
        """Milliseconds of `[start_ms, end_ms]` inside service hours; 0 when end is not after start."""
        if end_ms <= start_ms:
            return 0
        if self._always_open:
            return end_ms - start_ms
        total = 0
        for day in range(self.calendar.day(start_ms), self.calendar.day(end_ms) + 1):
            opens, closes = self.hours_of(day)
            low, high = max(start_ms, opens), min(end_ms, closes)
            if high > low:
                total += high - low
        return total

    def is_open(self, at_ms: int) -> bool:
        """Inside service hours at `at_ms` (opening included, closing excluded)."""
        if self._always_open:
            return True
        opens, closes = self.hours_of(self.calendar.day(at_ms))
        return opens <= at_ms < closes
