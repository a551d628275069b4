"""Agent status (v3) where people see it: the floor's `agent_status` and window seconds, the
team's sums, `kefu_agent_status`, and the report's days and range."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from agents.core.policy import PolicyBook
from agents.core.projection import DAY_FIELDS, WIDTH
from agents.core.report_range import DayRange
from agents.core.status import ChangePoint
from agents.exposure.collector import OVERFLOW_AGENT, FloorCollector, FloorSnapshot, cap_agents
from agents.exposure.floor import FloorReader
from agents.exposure.report import ReportReader
from config.settings import Settings
from tests.fakes import FakeStore

DAY = 739_580  # 2025-11-25, which starts at 1764000000000 in Shanghai
MIDNIGHT = 1_764_000_000_000
MIN, H = 60_000, 3_600_000
NOW = MIDNIGHT + 10 * H
SHOP = "s1"


def store_with_status() -> FakeStore:
    store = FakeStore()
    for agent in ("s1:a", "s1:b", "s1:c"):
        store.vectors[(SHOP, agent)] = [0] * WIDTH
    store.status[(SHOP, "s1:a")] = [
        ChangePoint(MIDNIGHT - 30 * MIN, "online"),  # yesterday 23:30
        ChangePoint(NOW - 2 * MIN, "away"),
    ]
    store.status[(SHOP, "s1:b")] = [ChangePoint(NOW - H, "online"), ChangePoint(NOW - 10 * MIN, "offline")]
    return store  # s1:c has no status event


def test_the_floor_shows_each_agents_status_and_time_and_the_team_the_sums() -> None:
    store = store_with_status()
    floor = asyncio.run(FloorReader(store, PolicyBook(Settings()), store).floor(SHOP, NOW))
    rows = {row.agent: row for row in floor.agents}
    assert {agent: row.agent_status for agent, row in rows.items()} == {
        "s1:a": "away",
        "s1:b": "offline",
        "s1:c": "unknown",
    }
    a, b = rows["s1:a"].windows, rows["s1:b"].windows
    assert (a["5m"].online_seconds, a["5m"].away_seconds, a["5m"].logins) == (300.0, 120.0, 0)
    assert (a["today"].online_seconds, a["today"].away_seconds) == (36_000.0, 120.0)
    # Its login was yesterday at 23:30: in 28d (and its 30 minutes), not in today.
    assert (a["today"].logins, a["28d"].online_seconds, a["28d"].logins) == (0, 37_800.0, 1)
    assert rows["s1:c"].windows["28d"].online_seconds == 0.0
    assert (b["1h"].online_seconds, b["1h"].logins, b["5m"].online_seconds) == (3000.0, 1, 0.0)
    team = floor.totals.windows
    assert (team["1h"].online_seconds, team["1h"].away_seconds, team["1h"].logins) == (6600.0, 120.0, 1)


def test_the_agents_folded_into_other_keep_their_time_in_a_status() -> None:
    store = store_with_status()
    floor = asyncio.run(FloorReader(store, PolicyBook(Settings()), store).floor(SHOP, NOW, with_sums=True))
    capped = cap_agents(floor, max_agents=2)  # s1:a and `_other`
    [other] = [row for row in capped.agents if row.agent == OVERFLOW_AGENT]
    hour = other.windows["1h"]  # s1:b (3,000 s, a login) and s1:c (nothing); s1:a kept its own
    assert (hour.online_seconds, hour.away_seconds, hour.logins) == (3000.0, 0.0, 1)


def test_the_status_before_the_28d_window_is_read_too() -> None:
    store = store_with_status()
    store.status[(SHOP, "s1:a")] = [ChangePoint(MIDNIGHT - 40 * 24 * H, "online")]  # 40 days ago
    floor = asyncio.run(FloorReader(store, PolicyBook(Settings()), store).floor(SHOP, NOW))
    a = next(row for row in floor.agents if row.agent == "s1:a")
    assert (a.agent_status, a.windows["28d"].online_seconds, a.windows["28d"].logins) == (
        "online",
        27 * 86_400 + 36_000,
        0,
    )


def test_kefu_agent_status_is_1_for_the_current_status_and_0_for_the_other_three() -> None:
    store = store_with_status()
    floor = asyncio.run(FloorReader(store, PolicyBook(Settings()), store).floor(SHOP, NOW))
    collector = FloorCollector()
    collector.snapshot = FloorSnapshot(floors=[floor])
    registry = CollectorRegistry()
    registry.register(collector)

    def sample(agent: str, status: str) -> float | None:
        return registry.get_sample_value(
            "kefu_agent_status", {"shop": SHOP, "agent": agent, "status": status}
        )

    assert [sample("s1:a", s) for s in ("online", "away", "offline", "unknown")] == [0.0, 1.0, 0.0, 0.0]
    assert [sample("s1:c", s) for s in ("online", "away", "offline", "unknown")] == [0.0, 0.0, 0.0, 1.0]
    labels = {"shop": SHOP, "agent": "s1:b", "window": "1h"}
    assert registry.get_sample_value("kefu_online_seconds", labels) == 3000.0


class ReportBuckets(FakeStore):
    """The report's reads: empty day buckets, every agent seen."""

    async def day_vectors(
        self, pairs: Sequence[tuple[str, str]], days: Sequence[int]
    ) -> list[list[list[int]]]:
        return [[[0] * len(DAY_FIELDS) for _ in days] for _ in pairs]

    async def shops_since(self, since_ms: int) -> list[str]:
        return [SHOP]

    async def agents_since(self, shop: str, since_ms: int) -> list[str]:
        return sorted(agent for s, agent in self.status if s == shop)


def test_a_report_gives_each_day_its_part_and_the_range_and_team_the_sums() -> None:
    store = ReportBuckets()
    store.status[(SHOP, "s1:a")] = [
        ChangePoint(MIDNIGHT - 30 * MIN, "online"),  # across midnight: 30 min on the 24th
        ChangePoint(MIDNIGHT + 30 * MIN, "away"),
        ChangePoint(MIDNIGHT + H, "offline"),
        ChangePoint(NOW, "online"),  # now: counts nothing yet, but is a login
    ]
    store.status[(SHOP, "s1:b")] = [
        ChangePoint(MIDNIGHT - 2 * H, "online"),
        ChangePoint(MIDNIGHT - H, "offline"),
    ]
    reader = ReportReader(store, PolicyBook(Settings()), store)
    report = asyncio.run(reader.report(SHOP, DayRange(DAY - 1, DAY), NOW + MIN))
    agents = {row.agent: row.metrics for row in report.agents}
    assert (agents["s1:a"].online_seconds, agents["s1:a"].away_seconds, agents["s1:a"].logins) == (
        5460.0,
        1800.0,
        2,
    )
    assert (agents["s1:b"].online_seconds, agents["s1:b"].logins) == (3600.0, 1)
    team = report.totals.metrics
    assert (team.online_seconds, team.away_seconds, team.logins) == (9060.0, 1800.0, 3)
    yesterday, today = report.days
    assert {row.agent: row.metrics.online_seconds for row in yesterday.agents} == {
        "s1:a": 1800.0,
        "s1:b": 3600.0,
    }
    assert {row.agent: row.metrics.online_seconds for row in today.agents} == {"s1:a": 3660.0, "s1:b": 0.0}
    assert (today.totals.metrics.online_seconds, today.totals.metrics.logins) == (3660.0, 1)
    assert (yesterday.totals.metrics.online_seconds, yesterday.totals.metrics.logins) == (5400.0, 2)


class IndexedBuckets(ReportBuckets):
    """The agents index as the Redis store keeps it: each agent at its last touch (processing
    time), listed only from `since_ms` on."""

    def __init__(self) -> None:
        super().__init__()
        self.touched: dict[tuple[str, str], int] = {}

    async def agents_since(self, shop: str, since_ms: int) -> list[str]:
        return sorted(agent for (s, agent), at in self.touched.items() if s == shop and at >= since_ms)

    async def agents(self, shop: str, now_ms: int) -> list[str]:
        return await self.agents_since(shop, now_ms - 29 * 24 * H)


def test_an_agent_away_all_day_after_an_event_the_day_before_is_in_that_days_report() -> None:
    """docs/reports.md: a one-day report equals what the floor showed as `today` at that day's
    end. An agent whose only event (away at 20:00) came the day before was on the floor all day
    and missing from the report, and from its team row."""
    store = IndexedBuckets()
    store.status[(SHOP, "s1:x")] = [ChangePoint(MIDNIGHT + 20 * H, "away")]
    store.touched[(SHOP, "s1:x")] = MIDNIGHT + 20 * H + 1_000
    end_of_next_day = MIDNIGHT + 48 * H - MIN
    policies = PolicyBook(Settings())
    floor = asyncio.run(FloorReader(store, policies, store).floor(SHOP, end_of_next_day))
    shown = floor.agents[0].windows["today"].away_seconds
    reader = ReportReader(store, policies, store)
    one_day = asyncio.run(reader.report(SHOP, DayRange(DAY + 1, DAY + 1), end_of_next_day))
    assert [(row.agent, row.metrics.away_seconds) for row in one_day.agents] == [("s1:x", shown)]
    assert shown == 24 * 3600 - 60 and one_day.totals.metrics.away_seconds == shown
    two_days = asyncio.run(reader.report(SHOP, DayRange(DAY, DAY + 1), end_of_next_day))
    assert [row.metrics.away_seconds for row in two_days.days[1].agents] == [shown]
    day_after = asyncio.run(reader.report(SHOP, DayRange(DAY + 2, DAY + 2), end_of_next_day + 24 * H))
    previous = asyncio.run(reader.previous_team(day_after, end_of_next_day + 24 * H))
    assert previous is not None and previous.team.away_seconds == 24 * 3600  # the day before, whole


def test_an_agent_whose_status_points_expired_is_left_out() -> None:
    """Points live retention_days + 1 days after the agent's last status event: one touched
    before that has none, and is not read."""
    store = IndexedBuckets()
    store.touched[(SHOP, "s1:gone")] = MIDNIGHT - 95 * 24 * H
    store.status[(SHOP, "s1:gone")] = [ChangePoint(MIDNIGHT - 95 * 24 * H, "online")]  # as if kept
    reader = ReportReader(store, PolicyBook(Settings()), store)
    report = asyncio.run(reader.report(SHOP, DayRange(DAY, DAY), MIDNIGHT + 12 * H))
    assert report.agents == []
