"""The floor's trends: the last hour minute by minute, and each agent's hour against the one
before. Pure: which buckets to read, and what the numbers say."""

from __future__ import annotations

from typing import Literal

from agents.core.projection import Counter

TREND_POINTS = 60  # one a minute, the last hour
SECONDS_PER_POINT = 60
# The counters the trends read, and their fields in the second and minute buckets.
TREND_COUNTERS = (
    Counter.CONSULTATIONS,
    Counter.REPLIED,
    Counter.FIRST_RESPONSE_MS,
    Counter.INQUIRIES,
    Counter.PAID,
)
TREND_FIELDS = tuple(counter.field for counter in TREND_COUNTERS)
# Within this much, an hour is "the same" as the one before: a tenth of a second is noise.
SAME_WITHIN_SECONDS = 0.5
SAME_WITHIN_SHARE = 0.05

Direction = Literal["better", "worse", "same"]


def second_bucket_minutes(now_s: int) -> list[int]:
    """The minutes whose second buckets hold the last hour `(now - 3600 s, now]`."""
    last = now_s // 60
    return list(range((now_s - TREND_POINTS * SECONDS_PER_POINT + 1) // 60, last + 1))


def hour_before_minutes(now_s: int) -> list[int]:
    """Whole minutes inside the hour before the last, `(now - 7200 s, now - 3600 s]`."""
    first = (now_s - 2 * 3600) // 60 + 1
    last = (now_s - 3600 + 1) // 60 - 1
    return list(range(first, last + 1))


def average_seconds(total_ms: int, count: int) -> float | None:
    return round(total_ms / count / 1000, 3) if count else None


def ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def direction(last_hour: float | None, hour_before: float | None) -> Direction | None:
    """First response, where lower is better; None when either hour had no reply."""
    if last_hour is None or hour_before is None:
        return None
    change = last_hour - hour_before
    if abs(change) <= max(SAME_WITHIN_SECONDS, SAME_WITHIN_SHARE * hour_before):
        return "same"
    return "better" if change < 0 else "worse"
