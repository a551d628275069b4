"""When a shop's daily digest is due: its own clock, DST days, restarts and a second process."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.errors import KefuError
from streams.notify.ledger import ClaimResult
from streams.notify.schedule import (
    DigestPlan,
    DigestScheduler,
    DigestTimeError,
    DueDigest,
    local_instant_ms,
    next_digest_ms,
    parse_at,
)

MINUTE = 60_000
HOUR = 60 * MINUTE
SHANGHAI, NEW_YORK = "Asia/Shanghai", "America/New_York"


def utc_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


def wall(ms: int, zone: str) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=ZoneInfo(zone)).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("now", "zone", "at", "expected"),
    [
        # Shanghai (UTC+8, no DST): 09:00 local is 01:00 UTC.
        (utc_ms(2026, 11, 2, 0, 30), SHANGHAI, "09:00", utc_ms(2026, 11, 2, 1)),
        (utc_ms(2026, 11, 2, 1), SHANGHAI, "09:00", utc_ms(2026, 11, 3, 1)),  # strictly after now
        (utc_ms(2026, 11, 2, 0, 59), SHANGHAI, "09:00", utc_ms(2026, 11, 2, 1)),
        (utc_ms(2026, 11, 1, 16, 5), SHANGHAI, "00:00", utc_ms(2026, 11, 2, 16)),
        # New York, standard time (UTC-5) the day before spring forward, daylight time (UTC-4) on it.
        (utc_ms(2026, 3, 7, 12), NEW_YORK, "09:00", utc_ms(2026, 3, 7, 14)),
        (utc_ms(2026, 3, 7, 15), NEW_YORK, "09:00", utc_ms(2026, 3, 8, 13)),
        # 02:30 does not exist on 2026-03-08 (02:00 -> 03:00): the first instant after the gap.
        (utc_ms(2026, 3, 7, 15), NEW_YORK, "02:30", utc_ms(2026, 3, 8, 7)),
        (utc_ms(2026, 3, 7, 15), NEW_YORK, "02:00", utc_ms(2026, 3, 8, 7)),
        (utc_ms(2026, 3, 8, 7), NEW_YORK, "02:30", utc_ms(2026, 3, 9, 6, 30)),
        # 01:30 happens twice on 2026-11-01 (02:00 EDT -> 01:00 EST): only the first goes.
        (utc_ms(2026, 10, 31, 12), NEW_YORK, "01:30", utc_ms(2026, 11, 1, 5, 30)),
        (utc_ms(2026, 11, 1, 5, 30), NEW_YORK, "01:30", utc_ms(2026, 11, 2, 6, 30)),
        (utc_ms(2026, 10, 31, 15), NEW_YORK, "09:00", utc_ms(2026, 11, 1, 14)),
    ],
)
def test_the_next_digest_is_the_shops_own_local_time(now: int, zone: str, at: str, expected: int) -> None:
    assert next_digest_ms(now, zone, at) == expected


ZONES = st.sampled_from([SHANGHAI, NEW_YORK, "Europe/London", "Australia/Lord_Howe", "America/Santiago"])
TIMES = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 1, 30, 59]))


@settings(max_examples=300, deadline=None)
@given(now=st.integers(utc_ms(2024, 1, 1), utc_ms(2030, 1, 1)), zone=ZONES, at=TIMES)
def test_the_next_digest_is_the_first_reading_of_its_time_after_now(now: int, zone: str, at: str) -> None:
    fire = next_digest_ms(now, zone, at)
    target = datetime.combine(wall(fire, zone).date(), parse_at(at))
    assert now < fire <= now + 26 * HOUR
    if wall(fire, zone) != target:  # a skipped time: the clock jumps over it at `fire`
        assert wall(fire - 1000, zone) < target < wall(fire, zone)
    # The day before's digest time is not after now: `fire` is the first one after it.
    day_before = wall(fire, zone).date() - timedelta(days=1)
    assert local_instant_ms(day_before, parse_at(at), ZoneInfo(zone)) <= now


@pytest.mark.parametrize("at", ["9:00", "24:00", "09:60", "", "09:00:00", "noon"])
def test_a_time_that_is_not_hh_mm_is_refused_in_a_sentence(at: str) -> None:
    with pytest.raises(DigestTimeError, match="HH:MM") as refused:
        next_digest_ms(0, SHANGHAI, at)
    assert isinstance(refused.value, KefuError)


def test_parse_at_reads_hours_and_minutes() -> None:
    assert parse_at("23:59") == time(23, 59)


class Claims:
    """The claim store's contract in memory: the first claim of (shop, day) wins."""

    def __init__(self) -> None:
        self.taken: set[tuple[str, int]] = set()

    async def __call__(self, shop: str, day: int) -> ClaimResult:
        if (shop, day) in self.taken:
            return "sent"
        self.taken.add((shop, day))
        return "claimed"


def plan(shop: str, zone: str, at: str = "09:00") -> DigestPlan:
    return DigestPlan(shop=shop, zone=zone, at=at, name=shop, floor_url=None)


def run_minutes(scheduler: DigestScheduler, start: int, end: int) -> list[DueDigest]:
    """Asks the scheduler once a minute from `start` to `end`, as the service does; what it won."""

    async def walk() -> list[DueDigest]:
        sent = []
        for now in range(start, end, MINUTE):
            for digest in scheduler.pending(now):
                if await scheduler.claim(digest) == "claimed":
                    sent.append(digest)
        return sent

    return asyncio.run(walk())


def test_each_shop_gets_one_digest_a_day_at_its_own_hour_across_a_dst_change() -> None:
    start, end = utc_ms(2026, 3, 6, 12), utc_ms(2026, 3, 10, 12)
    scheduler = DigestScheduler([plan("cn", SHANGHAI), plan("us", NEW_YORK)], Claims(), start)
    sent = run_minutes(scheduler, start, end)
    # Shanghai: 09:00 local is 01:00 UTC every day.
    assert [d.fire_ms for d in sent if d.shop == "cn"] == [utc_ms(2026, 3, day, 1) for day in (7, 8, 9, 10)]
    # New York: 14:00 UTC under EST, 13:00 UTC from Sunday 2026-03-08 under EDT: 09:00 local each day.
    assert [d.fire_ms for d in sent if d.shop == "us"] == [
        utc_ms(2026, 3, 6, 14),
        utc_ms(2026, 3, 7, 14),
        utc_ms(2026, 3, 8, 13),
        utc_ms(2026, 3, 9, 13),
    ]
    # Each digest reports the shop's local yesterday.
    assert [d.day for d in sent if d.shop == "us"] == [
        datetime(2026, 3, day).toordinal() for day in (5, 6, 7, 8)
    ]


def test_a_shop_without_a_plan_is_never_due() -> None:
    scheduler = DigestScheduler([plan("cn", SHANGHAI)], Claims(), utc_ms(2026, 3, 6))
    sent = run_minutes(scheduler, utc_ms(2026, 3, 6), utc_ms(2026, 3, 8))
    assert {d.shop for d in sent} == {"cn"}
    assert scheduler.next_ms("us") is None


def test_a_restart_or_a_second_process_never_sends_the_same_day_twice() -> None:
    claims = Claims()
    fire = utc_ms(2026, 11, 2, 1)
    first = DigestScheduler([plan("cn", SHANGHAI)], claims, fire - HOUR)
    assert [d.fire_ms for d in run_minutes(first, fire - HOUR, fire + MINUTE)] == [fire]
    # Restarted ten minutes later: the day is still due for it, but the claim says it went.
    restarted = DigestScheduler([plan("cn", SHANGHAI)], claims, fire + 10 * MINUTE)
    assert [d.fire_ms for d in restarted.pending(fire + 10 * MINUTE)] == [fire]
    assert run_minutes(restarted, fire + 10 * MINUTE, fire + 20 * HOUR) == []
    # Two processes asked at the same minute: one wins.
    one, other = (DigestScheduler([plan("cn", SHANGHAI)], claims, fire + 20 * HOUR) for _ in range(2))
    at = fire + 24 * HOUR
    won = [asyncio.run(s.claim(d)) for s in (one, other) for d in s.pending(at)]
    assert won == ["claimed", "sent"]


def test_a_digest_another_process_holds_stays_due_until_it_is_sent_or_lapses() -> None:
    """`busy`: another process holds the claim (it waits out quiet hours, or died holding it).
    The digest stays due here, asked again each minute; sent by the holder, it is settled."""
    answers: list[ClaimResult] = ["busy", "busy", "sent"]

    async def held(shop: str, day: int) -> ClaimResult:
        return answers.pop(0)

    fire = utc_ms(2026, 11, 2, 1)
    scheduler = DigestScheduler([plan("cn", SHANGHAI)], held, fire)
    assert run_minutes(scheduler, fire, fire + 3 * MINUTE) == []
    assert answers == [] and scheduler.next_ms("cn") == fire + 24 * HOUR


@pytest.mark.parametrize(("late", "sent"), [(30 * MINUTE, True), (119 * MINUTE, True), (3 * HOUR, False)])
def test_a_digest_missed_while_down_goes_late_within_the_catch_up_window(late: int, sent: bool) -> None:
    fire = utc_ms(2026, 11, 2, 1)
    scheduler = DigestScheduler([plan("cn", SHANGHAI)], Claims(), fire + late)
    won = run_minutes(scheduler, fire + late, fire + late + MINUTE)
    assert [d.fire_ms for d in won] == ([fire] if sent else [])
    assert scheduler.next_ms("cn") == fire + 24 * HOUR  # either way, tomorrow's is next


def test_a_claim_that_fails_leaves_the_digest_due_for_the_next_minute() -> None:
    fire = utc_ms(2026, 11, 2, 1)
    claims = Claims()
    calls = 0

    async def flaky(shop: str, day: int) -> ClaimResult:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("redis is restarting")
        return await claims(shop, day)

    scheduler = DigestScheduler([plan("cn", SHANGHAI)], flaky, fire)
    (digest,) = scheduler.pending(fire)
    with pytest.raises(OSError):
        asyncio.run(scheduler.claim(digest))
    assert scheduler.pending(fire + MINUTE) == [digest]
    assert asyncio.run(scheduler.claim(digest)) == "claimed"
    assert scheduler.pending(fire + 2 * MINUTE) == []


def test_a_bad_digest_time_is_refused_at_start_up() -> None:
    with pytest.raises(DigestTimeError):
        DigestScheduler([plan("cn", SHANGHAI, at="9h")], Claims(), 0)
