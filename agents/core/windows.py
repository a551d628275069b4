"""Rolling windows over cohort buckets.

A cohort (consultation or wait) lands in three buckets by its start: its business day,
its minute and its second. `today` and `28d` sum day buckets; `5m` and `1h` sum the
whole minutes inside the window plus the seconds of the two partial minutes at its
edges, so every window is exact to the second without reading 3,600 buckets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from config.calendar import MS_PER_DAY, BusinessCalendar

WINDOWS: tuple[str, ...] = ("5m", "1h", "today", "28d")
ROLLING_SECONDS = {"5m": 300, "1h": 3600}
WINDOW_DAYS = 28
# What only the windows need (indexes, offsets, markers, idle buyers) outlives the longest by a day.
SLIDING_TTL_MS = (WINDOW_DAYS + 1) * MS_PER_DAY
# Second buckets live a little longer than the longest rolling window; minute buckets an hour
# more, for the floor's "this hour against the hour before" (agents/exposure/trend.py).
FINE_RETENTION_MS = (3600 + 300) * 1000
MINUTE_RETENTION_MS = (2 * 3600 + 300) * 1000

BucketKind = Literal["d", "m", "s"]


@dataclass(frozen=True, slots=True)
class BucketRead:
    """Sum one bucket into the windows in `mask` (bit i = WINDOWS[i]).

    For a second bucket only seconds `lo..hi` of its minute count; -1 means all fields.
    """

    kind: BucketKind
    ident: int
    mask: int
    lo: int = -1
    hi: int = -1


def _rolling_reads(now_ms: int, seconds: int, bit: int) -> list[BucketRead]:
    hi = now_ms // 1000
    lo = hi - seconds + 1
    first_minute, last_minute = lo // 60, hi // 60
    if first_minute == last_minute:
        return [BucketRead("s", first_minute, bit, lo % 60, hi % 60)]
    reads: list[BucketRead] = []
    if lo % 60 == 0:
        reads.append(BucketRead("m", first_minute, bit))
    else:
        reads.append(BucketRead("s", first_minute, bit, lo % 60, 59))
    reads.extend(BucketRead("m", minute, bit) for minute in range(first_minute + 1, last_minute))
    if hi % 60 == 59:
        reads.append(BucketRead("m", last_minute, bit))
    else:
        reads.append(BucketRead("s", last_minute, bit, 0, hi % 60))
    return reads


def window_reads(now_ms: int, calendar: BusinessCalendar) -> list[BucketRead]:
    """Every bucket read needed for all windows at `now_ms`, merged where they overlap."""
    merged: dict[tuple[str, int, int, int], int] = {}
    for index, name in enumerate(WINDOWS):
        bit = 1 << index
        if name in ROLLING_SECONDS:
            reads = _rolling_reads(now_ms, ROLLING_SECONDS[name], bit)
        else:
            today = calendar.day(now_ms)
            days = 1 if name == "today" else WINDOW_DAYS
            reads = [BucketRead("d", day, bit) for day in range(today - days + 1, today + 1)]
        for read in reads:
            key = (read.kind, read.ident, read.lo, read.hi)
            merged[key] = merged.get(key, 0) | read.mask
    return [BucketRead(kind, ident, mask, lo, hi) for (kind, ident, lo, hi), mask in merged.items()]  # type: ignore[arg-type]


def whole_minutes(now_ms: int) -> dict[str, tuple[int, int]]:
    """Per rolling window, the first and last of the whole minutes `window_reads` sums for it
    at `now_ms` (consecutive); a window with none is left out."""
    ranges: dict[str, tuple[int, int]] = {}
    for name, seconds in ROLLING_SECONDS.items():
        minutes = [read.ident for read in _rolling_reads(now_ms, seconds, 1) if read.kind == "m"]
        if minutes:
            ranges[name] = (minutes[0], minutes[-1])
    return ranges


def cohort_buckets(
    start_ms: int, calendar: BusinessCalendar, now_ms: int
) -> tuple[int, int | None, int | None]:
    """(day, minute or None when too old for the trends, second within the minute or None when
    too old for the rolling windows)."""
    second = start_ms // 1000
    minute = second // 60 if start_ms >= now_ms - MINUTE_RETENTION_MS else None
    in_seconds = second % 60 if start_ms >= now_ms - FINE_RETENTION_MS else None
    return calendar.day(start_ms), minute, in_seconds
