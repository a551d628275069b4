"""The floor's trends: which buckets hold the last hour and the hour before, and the arrows."""

from __future__ import annotations

import pytest

from agents.core.trend import direction, hour_before_minutes, second_bucket_minutes


@pytest.mark.parametrize("now_s", [1_764_000_000, 1_764_000_059, 1_764_000_060, 1_764_003_599])
def test_second_buckets_cover_exactly_the_last_hour(now_s: int) -> None:
    minutes = second_bucket_minutes(now_s)
    oldest, newest = now_s - 3599, now_s  # the `1h` window, to the second
    assert minutes[0] == oldest // 60 and minutes[-1] == newest // 60
    assert minutes == list(range(minutes[0], minutes[-1] + 1))
    assert len(minutes) in (60, 61)


@pytest.mark.parametrize("now_s", [1_764_000_000, 1_764_000_059, 1_764_000_061, 1_764_003_599])
def test_the_hour_before_is_whole_minutes_between_two_and_one_hour_ago(now_s: int) -> None:
    minutes = hour_before_minutes(now_s)
    assert minutes[0] * 60 > now_s - 7200
    assert (minutes[0] - 1) * 60 <= now_s - 7200
    assert minutes[-1] * 60 + 59 <= now_s - 3600
    assert (minutes[-1] + 1) * 60 + 59 > now_s - 3600
    assert len(minutes) in (59, 60)


@pytest.mark.parametrize(
    ("last_hour", "hour_before", "expected"),
    [
        (5.0, 20.0, "better"),
        (20.0, 5.0, "worse"),
        (10.4, 10.0, "same"),  # within half a second
        (10.6, 10.0, "worse"),
        (95.0, 100.0, "same"),  # within 5 %
        (94.0, 100.0, "better"),
        (None, 10.0, None),
        (10.0, None, None),
    ],
)
def test_direction_of_first_response_lower_is_better(
    last_hour: float | None, hour_before: float | None, expected: str | None
) -> None:
    assert direction(last_hour, hour_before) == expected
