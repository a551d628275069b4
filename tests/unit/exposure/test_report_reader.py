"""The report from day buckets: the team from sums, who is listed, and what each day carries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date

import pytest

from agents.core.policy import PolicyBook
from agents.core.report_range import DayRange, RangeError
from agents.exposure.report import ReportReader, UnknownReportShop
from config.calendar import calendar_for
from config.settings import settings_from_yaml
from tests.report_samples import as_vector

FIRST = date(2026, 11, 1).toordinal()
NOW = calendar_for("Asia/Shanghai").day_start_ms(FIRST + 5)  # a few days after the range
CONFIG = "shops:\n  s1:\n    agents: {'s1:A': {name: 小美}, 's1:Idle': {name: 休假}}\n"


class DayBuckets:
    """A ReportStore over a dict: (shop, agent, day) -> counters."""

    def __init__(self, buckets: dict[tuple[str, str, int], dict[str, int]], seen: Sequence[str]) -> None:
        self.buckets, self.seen = buckets, list(seen)

    async def day_vectors(
        self, pairs: Sequence[tuple[str, str]], days: Sequence[int]
    ) -> list[list[list[int]]]:
        return [[as_vector(self.buckets.get((s, a, d), {})) for d in days] for s, a in pairs]

    async def shops_since(self, since_ms: int) -> list[str]:
        return ["s1", "s2"]

    async def agents_since(self, shop: str, since_ms: int) -> list[str]:
        return self.seen


def reader(buckets: dict[tuple[str, str, int], dict[str, int]], seen: Sequence[str]) -> ReportReader:
    return ReportReader(DayBuckets(buckets, seen), PolicyBook(settings_from_yaml(CONFIG)))


BUCKETS = {
    # A: 1 of 1 inquiries paid on day 1; B: 0 of 3 on day 2. Mean of ratios 0.5, from sums 0.25.
    ("s1", "s1:A", FIRST): {
        "c": 2,
        "r": 1,
        "fs": 4_000,
        "i": 1,
        "o": 1,
        "p": 1,
        "y": 10_000,
        "w0": 1,
        "h2": 1,
    },
    ("s1", "s1:B", FIRST + 1): {"c": 4, "r": 3, "fs": 60_000, "i": 3, "w1": 3, "h5": 2, "h9": 1},
    ("s1", "", FIRST + 1): {"n": 3, "sn": 2, "sy": 5_000},
    ("s1", "s1:Gone", FIRST): {},  # seen in the index, nothing counted in the range
}


def report(by_day: bool = True) -> object:
    days = DayRange(FIRST, FIRST + 1)
    return asyncio.run(reader(BUCKETS, ["s1:A", "s1:B", "s1:Gone"]).report("s1", days, NOW, by_day=by_day))


def test_the_team_is_computed_from_sums_never_from_the_agents_ratios() -> None:
    team = report().totals.metrics  # type: ignore[attr-defined]
    assert (team.inquiries, team.paid_inquiries, team.consult_pay_ratio) == (4, 1, 0.25)
    assert team.reply_ratio == 4 / 6  # agents: 0.5 and 0.75, their mean 0.625
    assert team.first_response_avg_seconds == 16.0  # (4 + 60) / 4, not the mean of 4 and 20
    assert team.replied_within_ratio == {"15": 1 / 6, "180": 3 / 6}
    assert (team.orders, team.silent_orders, team.silent_share, team.silent_sales_yuan) == (3, 2, 2 / 3, 50.0)
    assert team.attributed_sales_yuan == 100.0


def test_configured_and_counted_agents_are_listed_others_are_not() -> None:
    rows = {row.agent: row for row in report().agents}  # type: ignore[attr-defined]
    assert list(rows) == ["s1:A", "s1:B", "s1:Idle"]  # by id; s1:Gone counted nothing
    assert rows["s1:Idle"].name == "休假" and rows["s1:Idle"].metrics.consultations == 0
    assert rows["s1:Idle"].metrics.reply_ratio is None
    assert rows["s1:A"].metrics.consult_pay_ratio == 1.0 and rows["s1:B"].metrics.consult_pay_ratio == 0.0


def test_each_day_has_its_team_and_first_responses_and_its_agents_only_by_day() -> None:
    whole = report()
    first, second = whole.days  # type: ignore[attr-defined]
    assert (first.day, second.day) == ("2026-11-01", "2026-11-02")
    assert first.totals.metrics.consultations == 2 and second.totals.metrics.consultations == 4
    assert first.totals.first_response_buckets["6"] == 1
    assert (
        second.totals.first_response_buckets["30"] == 2 and second.totals.first_response_buckets["+Inf"] == 1
    )
    assert whole.totals.first_response_buckets == {  # type: ignore[attr-defined]
        "1": 0, "3": 0, "6": 1, "10": 0, "15": 0, "30": 2, "60": 0, "120": 0, "300": 0, "+Inf": 1,
    }  # fmt: skip
    assert [row.agent for row in first.agents] == ["s1:A", "s1:B", "s1:Idle"]
    assert all(not day.agents for day in report(by_day=False).days)  # type: ignore[attr-defined]


def test_a_shop_nobody_knows_is_refused_with_the_known_ones() -> None:
    with pytest.raises(UnknownReportShop, match="unknown shop 'nope'; known shops: s1, s2"):
        asyncio.run(reader({}, []).report("nope", DayRange(FIRST, FIRST), NOW))


def test_a_request_outside_the_retention_is_refused_before_any_read() -> None:
    with pytest.raises(RangeError, match="outside the retention"):
        asyncio.run(reader({}, []).request("s1", "2026-07-01", "2026-07-02", None, NOW))


class ScoredIndex(DayBuckets):
    """The agents index as Redis keeps it: each agent scored by when its last event was processed."""

    def __init__(self, buckets: dict[tuple[str, str, int], dict[str, int]], scores: dict[str, int]) -> None:
        super().__init__(buckets, [])
        self.scores = scores

    async def agents_since(self, shop: str, since_ms: int) -> list[str]:
        return sorted(agent for agent, score in self.scores.items() if score >= since_ms)


def test_an_agent_whose_events_came_ahead_by_the_future_tolerance_is_listed() -> None:
    """processing.future_tolerance_seconds has no upper bound: at 2 h, an event stamped on the
    range's first day may be processed 1.5 h before that day starts, and its agent never again.
    The report must still list the agent (the floor's 28d window does)."""
    settings = settings_from_yaml(CONFIG + "processing: {future_tolerance_seconds: 7200}\n")
    day_start = calendar_for("Asia/Shanghai").day_start_ms(FIRST)
    buckets = {("s1", "s1:Early", FIRST): {"c": 1, "r": 1, "fs": 1_000, "w0": 1, "h1": 1}}
    index = ScoredIndex(buckets, {"s1:Early": day_start - 5_400_000})
    rows = asyncio.run(
        ReportReader(index, PolicyBook(settings)).report("s1", DayRange(FIRST, FIRST), NOW)
    ).agents
    assert "s1:Early" in [row.agent for row in rows]
