"""Which days a report covers: defaults, every edge of the retention, and the errors people make."""

from __future__ import annotations

from datetime import date

import pytest

from agents.core.report_range import (
    DayRange,
    RangeError,
    day_text,
    oldest_kept_day,
    parse_granularity,
    report_range,
    restored_from_day,
)

TODAY = date(2026, 12, 2).toordinal()
ZONE = "Asia/Shanghai"


def span(first: str | None, last: str | None, retention: int = 93) -> tuple[str, str]:
    days = report_range(first, last, TODAY, retention, ZONE)
    return day_text(days.first), day_text(days.last)


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (None, None, ("2026-12-01", "2026-12-01")),  # yesterday
        ("2026-11-01", None, ("2026-11-01", "2026-12-01")),
        (None, "2026-11-20", ("2026-11-20", "2026-11-20")),
        (None, "2026-12-02", ("2026-12-02", "2026-12-02")),  # `--to` alone is that one day
        ("2026-12-02", None, ("2026-12-02", "2026-12-02")),  # today alone: the floor's `today`
        ("2026-11-01", "2026-11-30", ("2026-11-01", "2026-11-30")),
        ("2026-09-01", "2026-12-02", ("2026-09-01", "2026-12-02")),  # the oldest day kept, to today
    ],
)
def test_defaults_and_valid_ranges(first: str | None, last: str | None, expected: tuple[str, str]) -> None:
    assert span(first, last) == expected


def test_retention_counts_today_as_one_of_its_days() -> None:
    assert oldest_kept_day(TODAY, 93) == TODAY - 92
    assert day_text(TODAY - 92) == "2026-09-01"
    with pytest.raises(
        RangeError, match=r"from 2026-08-31 is outside the retention: .*93 business days.*2026-09-01"
    ):
        span("2026-08-31", "2026-09-01")
    assert span("2026-11-04", None, retention=29) == ("2026-11-04", "2026-12-01")
    with pytest.raises(RangeError, match="outside the retention"):
        span("2026-11-03", None, retention=29)


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        ("2026-13-01", None, "from '2026-13-01' is not a date"),
        ("2026-02-30", None, "from '2026-02-30' is not a date"),
        ("yesterday", None, "from 'yesterday' is not a date: expected YYYY-MM-DD"),
        ("2026-1-05", None, "is not a date"),
        (None, "20261201", "to '20261201' is not a date"),
        ("2026-11-02", "2026-11-01", "from 2026-11-02 is after to 2026-11-01"),
        (
            "2026-12-01",
            "2026-12-03",
            r"to 2026-12-03 is in the future: today is 2026-12-02 \(Asia/Shanghai\)",
        ),
        ("2026-12-03", None, "from 2026-12-03 is in the future"),
    ],
)
def test_bad_requests_say_what_is_wrong(first: str | None, last: str | None, message: str) -> None:
    with pytest.raises(RangeError, match=message):
        span(first, last)


def test_by_accepts_day_only() -> None:
    assert parse_granularity(None) is False
    assert parse_granularity("") is False
    assert parse_granularity("day") is True
    for wrong in ("week", "Day", "days"):
        with pytest.raises(RangeError, match="the only choice is 'day'"):
            parse_granularity(wrong)


def _span(first: str, last: str) -> DayRange:
    return DayRange(date.fromisoformat(first).toordinal(), date.fromisoformat(last).toordinal())


@pytest.mark.parametrize(
    ("asked", "compared"),
    [
        # A 月报 compares calendar months, whatever their lengths.
        (("2026-11-01", "2026-11-30"), ("2026-10-01", "2026-10-31")),
        (("2026-03-01", "2026-03-31"), ("2026-02-01", "2026-02-28")),
        (("2024-03-01", "2024-03-31"), ("2024-02-01", "2024-02-29")),
        (("2026-02-01", "2026-02-28"), ("2026-01-01", "2026-01-31")),
        (("2026-01-01", "2026-01-31"), ("2025-12-01", "2025-12-31")),
        (("2026-10-01", "2026-12-31"), ("2026-07-01", "2026-09-30")),  # a quarter
        # A 日报 the day before, a 周报 the week before (Monday–Sunday), across a month's edge.
        (("2026-12-01", "2026-12-01"), ("2026-11-30", "2026-11-30")),
        (("2026-11-30", "2026-12-06"), ("2026-11-23", "2026-11-29")),
        # Anything else: as many days just before, even when it starts on the 1st.
        (("2026-11-01", "2026-11-29"), ("2026-10-03", "2026-10-31")),
        (("2026-02-02", "2026-03-01"), ("2026-01-05", "2026-02-01")),
    ],
)
def test_the_compared_period_follows_the_calendar(asked: tuple[str, str], compared: tuple[str, str]) -> None:
    previous = _span(*asked).previous()
    assert (day_text(previous.first), day_text(previous.last)) == compared


def test_a_one_day_report_compares_with_the_day_before() -> None:
    one = DayRange(TODAY - 1, TODAY - 1)
    assert one.previous() == DayRange(TODAY - 2, TODAY - 2)
    assert DayRange(TODAY - 92, TODAY).within(TODAY, 93)
    assert not DayRange(TODAY - 93, TODAY).within(TODAY, 93)
    assert not DayRange(TODAY, TODAY + 1).within(TODAY, 93)


@pytest.mark.parametrize(
    ("firsts", "expected"),
    [
        ([(TODAY - 40, False)], TODAY - 40),  # the topics hold everything: that day is whole
        ([(TODAY - 40, True)], TODAY - 39 + 7),  # part of it deleted, and the look-back before it
        ([(TODAY - 40, False), (TODAY - 30, False)], TODAY - 40),  # nothing was ever deleted
        ([(TODAY - 40, False), (TODAY - 38, True), (TODAY - 45, True)], TODAY - 37 + 7),  # the latest cut
        ([(TODAY - 200, False)], TODAY - 92),  # older than the retention keeps
        ([(TODAY, True)], TODAY + 8),  # nothing whole yet
    ],
)
def test_rebuild_says_how_far_back_history_is_whole(firsts: list[tuple[int, bool]], expected: int) -> None:
    assert restored_from_day(firsts, TODAY, 93, 7) == expected
