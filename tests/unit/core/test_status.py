"""Agent status (metrics.md "Agent status (v3)") on hand-computed cases: wall-clock time in a
status per window, logins, the status now, and `unknown` before any event."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.core.status import (
    ChangePoint,
    StatusTime,
    day_span,
    kept_from_ms,
    status_at,
    status_time,
    status_times,
    window_spans,
    window_times,
)
from agents.core.statuses import STATUSES
from config.calendar import calendar_for

SHANGHAI = calendar_for("Asia/Shanghai")
DAY = 739_580  # 2025-11-25, which starts at 1764000000000 in Shanghai
MIDNIGHT = 1_764_000_000_000
S, MIN, H = 1000, 60_000, 3_600_000


def points(*pairs: tuple[int, str]) -> list[ChangePoint]:
    return [ChangePoint(ts, status) for ts, status in pairs]


def test_the_day_the_tests_count_on() -> None:
    assert day_span(DAY, SHANGHAI) == (MIDNIGHT, MIDNIGHT + 24 * H)


def test_before_any_event_the_status_is_unknown_and_nothing_counts() -> None:
    assert status_at([], MIDNIGHT) == "unknown"
    assert status_time([], MIDNIGHT - H, MIDNIGHT, MIDNIGHT) == StatusTime()
    # The first event starts the first interval: before it, unknown is neither online nor away.
    history = points((MIDNIGHT + 10 * MIN, "online"))
    assert status_at(history, MIDNIGHT + 5 * MIN) == "unknown"
    assert status_time(history, MIDNIGHT, MIDNIGHT + H, MIDNIGHT + 30 * MIN) == StatusTime(20 * MIN, 0, 1)


def test_an_interval_across_midnight_counts_on_each_day_its_own_part() -> None:
    # Online 23:50 on the 25th, away 00:05 on the 26th, offline 00:20.
    history = points((MIDNIGHT + 24 * H - 10 * MIN, "online"), (MIDNIGHT + 24 * H + 5 * MIN, "away"))
    history += points((MIDNIGHT + 24 * H + 20 * MIN, "offline"))
    now = MIDNIGHT + 30 * H
    assert status_time(history, *day_span(DAY, SHANGHAI), now) == StatusTime(600 * S, 0, 1)
    assert status_time(history, *day_span(DAY + 1, SHANGHAI), now) == StatusTime(1200 * S, 900 * S, 0)
    assert status_at(history, now) == "offline"


def test_the_5m_edge_cuts_an_interval_and_a_login_before_it_is_not_in_it() -> None:
    now = MIDNIGHT + 10 * H
    history = points((now - 400 * S, "online"), (now - 100 * S, "away"))
    times = window_times(history, now, SHANGHAI)
    assert times["5m"] == StatusTime(300 * S, 100 * S, 0)  # [now-300 s, now): 200 s online + 100 s away
    assert times["1h"] == StatusTime(400 * S, 100 * S, 1)
    assert times["today"] == StatusTime(400 * S, 100 * S, 1)


def test_an_open_interval_counts_up_to_now_and_no_further() -> None:
    now = MIDNIGHT + 12 * H + 30 * S
    history = points((MIDNIGHT + 12 * H, "online"))
    times = window_times(history, now, SHANGHAI)
    assert times["5m"].online_ms == times["today"].online_ms == times["28d"].online_ms == 30 * S
    # The same history a minute later: the open interval has grown with the clock.
    assert window_times(history, now + MIN, SHANGHAI)["today"].online_ms == 90 * S


def test_a_late_event_sorted_in_changes_history_not_the_status_now() -> None:
    before = points((MIDNIGHT + H, "online"), (MIDNIGHT + 3 * H, "offline"))
    # `away` at 02:00 arrived after `offline` at 03:00 was applied; the store keeps time order.
    after = points((MIDNIGHT + H, "online"), (MIDNIGHT + 2 * H, "away"), (MIDNIGHT + 3 * H, "offline"))
    now = MIDNIGHT + 5 * H
    today = day_span(DAY, SHANGHAI)
    assert status_time(before, *today, now) == StatusTime(2 * H, 0, 1)
    assert status_time(after, *today, now) == StatusTime(2 * H, H, 1)
    assert status_at(before, now) == status_at(after, now) == "offline"


@pytest.mark.parametrize(
    ("sequence", "logins"),
    [
        (["online"], 1),  # from unknown
        (["away"], 1),  # away is logged in too
        (["offline"], 0),
        (["online", "away", "online"], 1),  # moving between online and away is no login
        (["online", "offline", "away", "offline", "online"], 3),
        (["online", "online"], 1),  # a repeated status is no change
        (["offline", "offline", "online"], 1),
    ],
)
def test_logins_are_changes_from_offline_or_unknown_into_online_or_away(
    sequence: list[str], logins: int
) -> None:
    history = points(*((MIDNIGHT + i * MIN, status) for i, status in enumerate(sequence)))
    assert status_time(history, MIDNIGHT, MIDNIGHT + H, MIDNIGHT + H).logins == logins


def test_a_login_counts_in_the_window_it_happens_in() -> None:
    history = points(
        (MIDNIGHT - 10 * MIN, "online"), (MIDNIGHT + 10 * MIN, "offline"), (MIDNIGHT + H, "online")
    )
    now = MIDNIGHT + 2 * H
    assert status_time(history, *day_span(DAY - 1, SHANGHAI), now) == StatusTime(10 * MIN, 0, 1)
    assert status_time(history, *day_span(DAY, SHANGHAI), now) == StatusTime(10 * MIN + H, 0, 1)


def test_equal_times_keep_their_order_and_the_later_one_is_the_status() -> None:
    history = points((MIDNIGHT, "offline"), (MIDNIGHT, "online"))
    assert status_at(history, MIDNIGHT) == "online"
    assert status_time(history, MIDNIGHT, MIDNIGHT + H, MIDNIGHT + MIN) == StatusTime(MIN, 0, 1)


def test_points_ahead_of_now_do_not_count_yet() -> None:
    history = points((MIDNIGHT, "online"), (MIDNIGHT + 2 * MIN, "offline"))
    now = MIDNIGHT + MIN
    assert status_at(history, now) == "online"
    assert status_time(history, MIDNIGHT, MIDNIGHT + H, now) == StatusTime(MIN, 0, 1)


def test_window_spans_are_those_of_the_cohort_windows() -> None:
    now = MIDNIGHT + 10 * H + 123
    assert window_spans(now, SHANGHAI) == {
        "5m": (now - 300 * S, now),
        "1h": (now - H, now),
        "today": (MIDNIGHT, MIDNIGHT + 24 * H),
        "28d": (MIDNIGHT - 27 * 24 * H, MIDNIGHT + 24 * H),
    }


def test_history_is_kept_for_retention_days_business_days_today_included() -> None:
    assert kept_from_ms(MIDNIGHT + 10 * H, SHANGHAI, 93) == MIDNIGHT - 92 * 24 * H


# Times on a coarse grid around MIDNIGHT, so that ties, edges and empty spans come often.
_times = st.integers(-6, 6).map(lambda step: MIDNIGHT + step * 10 * MIN)
_history = st.lists(st.tuples(_times, st.sampled_from(STATUSES)), max_size=8).map(
    lambda pairs: points(*sorted(pairs, key=lambda pair: pair[0]))
)
_spans = st.lists(st.tuples(_times, _times).map(lambda span: (min(span), max(span))), max_size=5)


@settings(max_examples=400, deadline=None)
@given(history=_history, spans=_spans, now=_times)
def test_all_spans_in_one_pass_equal_each_span_alone(
    history: list[ChangePoint], spans: list[tuple[int, int]], now: int
) -> None:
    """The leader's one pass (status_times, compiled) against the reference, span by span:
    points before, inside, across and after each span, ties, and points ahead of now."""
    assert status_times(history, spans, now) == [status_time(history, *span, now) for span in spans]
