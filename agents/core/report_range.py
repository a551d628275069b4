"""Which business days a report covers, and the errors a person can make asking for them.

Pure: the caller passes today (the shop's business day now) and the retention, so every edge
is testable without a clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from streams.contract.report import ReportRequestError

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RANGE_GRANULARITIES = ("day",)  # `--by` / `by=`


class RangeError(ReportRequestError):
    """A report request that cannot be answered, in one sentence a person can act on."""


def day_text(day: int) -> str:
    return date.fromordinal(day).isoformat()


def parse_day(text: str, what: str) -> int:
    """`YYYY-MM-DD` as a business day (proleptic ordinal); `what` names the parameter."""
    if not _ISO_DAY.match(text):
        raise RangeError(f"{what} {text!r} is not a date: expected YYYY-MM-DD")
    try:
        return date.fromisoformat(text).toordinal()
    except ValueError as exc:
        raise RangeError(f"{what} {text!r} is not a date: {exc}") from exc


@dataclass(frozen=True, slots=True)
class DayRange:
    """Business days `first..last`, both included."""

    first: int
    last: int

    @property
    def days(self) -> range:
        return range(self.first, self.last + 1)

    def __len__(self) -> int:
        return self.last - self.first + 1

    def previous(self) -> DayRange:
        """The period a report compares with. Whole calendar months (a 月报, a quarter) compare
        with as many calendar months just before: November with October 1–31, March with all of
        February. Any other range (a 日报, a 周报, an arbitrary span) compares with the same
        number of days just before it: the day before, the week before."""
        months = self.whole_months()
        if months:
            first = date.fromordinal(self.first)
            month_index = first.year * 12 + first.month - 1 - months
            start = date(month_index // 12, month_index % 12 + 1, 1)
            return DayRange(start.toordinal(), self.first - 1)
        return DayRange(self.first - len(self), self.first - 1)

    def whole_months(self) -> int:
        """How many calendar months the range is, when it is exactly whole months; else 0."""
        first, last = date.fromordinal(self.first), date.fromordinal(self.last)
        if first.day != 1 or (last + timedelta(days=1)).day != 1:
            return 0
        return (last.year - first.year) * 12 + last.month - first.month + 1

    def within(self, today: int, retention_days: int) -> bool:
        return self.first >= oldest_kept_day(today, retention_days) and self.last <= today


def oldest_kept_day(today: int, retention_days: int) -> int:
    """The oldest business day whose buckets are still kept (today counts as one)."""
    return today - retention_days + 1


def report_range(first: str | None, last: str | None, today: int, retention_days: int, zone: str) -> DayRange:
    """The days asked for: both default to yesterday; errors say what is wrong and what is allowed."""
    yesterday = today - 1
    first_day = parse_day(first, "from") if first is not None else None
    last_day = parse_day(last, "to") if last is not None else None
    if first_day is not None and first_day > today:
        raise RangeError(f"from {day_text(first_day)} is in the future: today is {day_text(today)} ({zone})")
    if first_day is None:
        first_day = yesterday if last_day is None else last_day  # `--to` alone: that one day
    if last_day is None:
        last_day = max(yesterday, first_day)
    if first_day > last_day:
        raise RangeError(f"from {day_text(first_day)} is after to {day_text(last_day)}")
    if last_day > today:
        raise RangeError(f"to {day_text(last_day)} is in the future: today is {day_text(today)} ({zone})")
    oldest = oldest_kept_day(today, retention_days)
    if first_day < oldest:
        raise RangeError(
            f"from {day_text(first_day)} is outside the retention: reports go back "
            f"{retention_days} business days (retention_days), to {day_text(oldest)}"
        )
    return DayRange(first_day, last_day)


def parse_granularity(by: str | None) -> bool:
    """True for a report day by day; None is the whole range at once."""
    if by is None or by == "":
        return False
    if by not in RANGE_GRANULARITIES:
        raise RangeError(f"by {by!r} is not supported: the only choice is 'day'")
    return True


def restored_from_day(
    firsts: list[tuple[int, bool]], today: int, retention_days: int, after_sale_days: int
) -> int:
    """The first whole business day a rebuild restored, from each input partition's first day
    and whether Kafka had deleted records before it. A partition Kafka never truncated holds all
    it ever had; a truncated one is whole from the day after its first record, once the
    after-sale look-back before that is there too (older payments decide what is after-sale).
    Never before what the retention keeps."""
    cut = [day + 1 + after_sale_days for day, truncated in firsts if truncated]
    first = max(cut) if cut else min(day for day, _ in firsts)
    return max(first, oldest_kept_day(today, retention_days))
