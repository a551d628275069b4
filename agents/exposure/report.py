"""The date-range report (metrics.md "Reports"), read from the day buckets of one shop.

A day bucket holds the cohort counters of everything that started on that business day, so a
range of whole days is the sum of its day buckets: the `today` window is one of them and `28d`
is 28, which is why a one-day report equals what the floor showed as `today` at that day's end.
Ratios and averages come from the summed counters, the team's from the agents' sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from agents.core.policy import PolicyBook, ShopPolicy
from agents.core.projection import DAY_FIELDS, FIRST_RESPONSE_BUCKETS, SHOP_LEVEL, WIDTH
from agents.core.report_range import DayRange, day_text, oldest_kept_day, parse_granularity, report_range
from agents.exposure.floor import team_values, window_values
from agents.store.protocols import ReportStore
from streams.floor_model import TeamWindowValues
from streams.report_model import (
    PreviousPeriod,
    Report,
    ReportDay,
    ReportRequestError,
    ReportRow,
    ReportTotals,
)

DayVector = Sequence[int]  # one day bucket, DAY_FIELDS (projection.py)
INDEX_SKEW_MS = 3_600_000  # more than any future tolerance: an agent listed too many shows zeros
BUCKET_LABELS = (*(str(bound) for bound in FIRST_RESPONSE_BUCKETS), "+Inf")


class UnknownReportShop(ReportRequestError):
    pass


def _sum(vectors: Sequence[DayVector]) -> list[int]:
    if not vectors:
        return [0] * len(DAY_FIELDS)
    return [sum(column) for column in zip(*vectors, strict=True)]


def _totals(
    agent_vectors: Sequence[DayVector], shop_vector: DayVector, targets: tuple[int, ...]
) -> ReportTotals:
    """The team: the agents' sums (ratios from those, never averaged), and the shop's orders."""
    team = _sum(agent_vectors)
    return ReportTotals(
        metrics=team_values(team[:WIDTH], list(shop_vector[:WIDTH]), targets),
        first_response_buckets=dict(zip(BUCKET_LABELS, team[WIDTH:], strict=True)),
    )


def _rows(agents: Sequence[str], vectors: Sequence[DayVector], policy: ShopPolicy) -> list[ReportRow]:
    targets, names = policy.response_targets_seconds, policy.agent_names
    return [
        ReportRow(agent=agent, name=names.get(agent), metrics=window_values(list(vector[:WIDTH]), targets))
        for agent, vector in zip(agents, vectors, strict=True)
    ]


def assemble_report(
    policy: ShopPolicy,
    days: DayRange,
    as_of: int,
    agents: Sequence[str],
    vectors: Sequence[Sequence[DayVector]],
    shop_vectors: Sequence[DayVector],
    *,
    agents_by_day: bool = True,
) -> Report:
    """The report from each agent's day buckets (`vectors[a][d]`, d over `days`) and the shop
    level's (`shop_vectors[d]`). Each day always has its team row (the page charts it); its
    agent rows only with `agents_by_day`."""
    targets = policy.response_targets_seconds
    per_day = []
    for index, day in enumerate(days.days):
        on_day = [agent_days[index] for agent_days in vectors]
        rows = _rows(agents, on_day, policy) if agents_by_day else []
        per_day.append(
            ReportDay(day=day_text(day), agents=rows, totals=_totals(on_day, shop_vectors[index], targets))
        )
    ranges = [_sum(agent_days) for agent_days in vectors]
    return Report(
        shop=policy.shop_id,
        name=policy.name,
        from_=day_text(days.first),
        to=day_text(days.last),
        as_of=as_of,
        timezone=policy.calendar.zone.key,
        response_targets_seconds=list(targets),
        agents=_rows(agents, ranges, policy),
        totals=_totals(ranges, _sum(shop_vectors), targets),
        days=per_day,
    )


def _counted(days: Sequence[DayVector]) -> bool:
    return any(any(day) for day in days)


class ReportReader:
    def __init__(self, store: ReportStore, policies: PolicyBook) -> None:
        self.store = store
        self.policies = policies

    def today(self, shop: str, now_ms: int) -> int:
        return self.policies(shop).calendar.day(now_ms)

    async def require_shop(self, shop: str, since_ms: int) -> None:
        known = set(await self.store.shops_since(since_ms)) | set(self.policies.settings.shops)
        if shop not in known:
            listed = ", ".join(sorted(known)) or "none yet"
            raise UnknownReportShop(f"unknown shop {shop!r}; known shops: {listed}")

    async def report(self, shop: str, days: DayRange, now_ms: int, *, by_day: bool = True) -> Report:
        """Every agent configured for the shop or counted in the range, and the team; each day's
        agent rows only `by_day`."""
        policy = self.policies(shop)
        # The indexes score by processing time, and an event may be up to minutes ahead of it.
        since_ms = policy.calendar.day_start_ms(days.first) - INDEX_SKEW_MS
        today = policy.calendar.day(now_ms)
        await self.require_shop(
            shop, policy.calendar.day_start_ms(oldest_kept_day(today, policy.retention_days))
        )
        configured = self.policies.settings.shops.get(shop)
        named = set(configured.agents) if configured else set()
        seen = set(await self.store.agents_since(shop, since_ms)) - {SHOP_LEVEL}
        candidates = sorted(named | seen)
        pairs = [(shop, agent) for agent in [*candidates, SHOP_LEVEL]]
        vectors = await self.store.day_vectors(pairs, list(days.days))
        shop_vectors = vectors.pop()
        kept = [(a, v) for a, v in zip(candidates, vectors, strict=True) if a in named or _counted(v)]
        agents, agent_vectors = [a for a, _ in kept], [v for _, v in kept]
        return assemble_report(
            policy, days, now_ms, agents, agent_vectors, shop_vectors, agents_by_day=by_day
        )

    async def request(
        self, shop: str, first: str | None, last: str | None, by: str | None, now_ms: int
    ) -> tuple[Report, bool]:
        """A person's request (`--from`/`from=` …) as the report and whether it goes day by day.

        Raises RangeError or UnknownReportShop with the sentence to show."""
        by_day = parse_granularity(by)
        policy = self.policies(shop)
        today = policy.calendar.day(now_ms)
        days = report_range(first, last, today, policy.retention_days, policy.calendar.zone.key)
        return await self.report(shop, days, now_ms, by_day=by_day), by_day

    async def previous_team(self, report: Report, now_ms: int) -> PreviousPeriod | None:
        """The team over the period the report compares with (`DayRange.previous`), if still kept."""
        policy = self.policies(report.shop)
        span = DayRange(
            date.fromisoformat(report.from_).toordinal(), date.fromisoformat(report.to).toordinal()
        ).previous()
        if not span.within(policy.calendar.day(now_ms), policy.retention_days):
            return None
        team = await self.team(report.shop, span)
        return PreviousPeriod(from_=day_text(span.first), to=day_text(span.last), team=team)

    async def team(self, shop: str, days: DayRange) -> TeamWindowValues:
        """The team's values alone (the page's comparison with the previous period)."""
        policy = self.policies(shop)
        since_ms = policy.calendar.day_start_ms(days.first) - INDEX_SKEW_MS
        agents = sorted(set(await self.store.agents_since(shop, since_ms)) - {SHOP_LEVEL})
        pairs = [(shop, agent) for agent in [*agents, SHOP_LEVEL]]
        vectors = await self.store.day_vectors(pairs, list(days.days))
        shop_vectors = vectors.pop()
        ranges = [_sum(agent_days) for agent_days in vectors]
        return _totals(ranges, _sum(shop_vectors), policy.response_targets_seconds).metrics
