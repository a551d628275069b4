"""The date-range report (metrics.md "Reports"), read from the day buckets of one shop.

A day bucket holds the cohort counters of everything that started on that business day, so a
range of whole days is the sum of its day buckets: the `today` window is one of them and `28d`
is 28, which is why a one-day report equals what the floor showed as `today` at that day's end.
Ratios and averages come from the summed counters, the team's from the agents' sums.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from agents.core.policy import PolicyBook, ShopPolicy
from agents.core.projection import (
    DAY_HISTOGRAM_FIELDS,
    FIELD_NAMES,
    FIRST_RESPONSE_BUCKETS,
    SHOP_LEVEL,
    WIDTH,
    Vector,
)
from agents.core.report_range import DayRange, day_text, parse_granularity, report_range
from agents.exposure.floor import team_values, window_values
from agents.store.protocols import ReportStore
from streams.floor_model import TeamWindowValues
from streams.report_model import Report, ReportDay, ReportRequestError, ReportRow, ReportTotals

Counters = Mapping[str, int]  # one day bucket: field name -> count
BUCKET_LABELS = (*(str(bound) for bound in FIRST_RESPONSE_BUCKETS), "+Inf")


class UnknownReportShop(ReportRequestError):
    pass


def _vector(buckets: Sequence[Counters]) -> Vector:
    return [sum(day.get(name, 0) for day in buckets) for name in FIELD_NAMES]


def _add(total: Vector, vector: Vector) -> None:
    for index in range(WIDTH):
        total[index] += vector[index]


def _totals(
    agent_days: Sequence[Sequence[Counters]], shop_days: Sequence[Counters], targets: tuple[int, ...]
) -> ReportTotals:
    team = [0] * WIDTH
    for days in agent_days:
        _add(team, _vector(days))
    buckets = {label: 0 for label in BUCKET_LABELS}
    for days in agent_days:
        for day in days:
            for label, name in zip(BUCKET_LABELS, DAY_HISTOGRAM_FIELDS, strict=True):
                buckets[label] += day.get(name, 0)
    return ReportTotals(
        metrics=team_values(team, _vector(shop_days), targets), first_response_buckets=buckets
    )


def _rows(
    agents: Sequence[str], agent_days: Sequence[Sequence[Counters]], policy: ShopPolicy
) -> list[ReportRow]:
    targets = policy.response_targets_seconds
    return [
        ReportRow(
            agent=agent, name=policy.agent_names.get(agent), metrics=window_values(_vector(days), targets)
        )
        for agent, days in zip(agents, agent_days, strict=True)
    ]


def assemble_report(
    policy: ShopPolicy,
    days: DayRange,
    as_of: int,
    agents: Sequence[str],
    counters: Sequence[Sequence[Counters]],
    shop_counters: Sequence[Counters],
) -> Report:
    """The report from each agent's day buckets (`counters[a][d]`, d over `days`) and the
    shop level's (`shop_counters[d]`)."""
    targets = policy.response_targets_seconds
    per_day = [
        ReportDay(
            day=day_text(day),
            agents=_rows(agents, [[c[index]] for c in counters], policy),
            totals=_totals([[c[index]] for c in counters], [shop_counters[index]], targets),
        )
        for index, day in enumerate(days.days)
    ]
    return Report(
        shop=policy.shop_id,
        name=policy.name,
        from_=day_text(days.first),
        to=day_text(days.last),
        as_of=as_of,
        timezone=policy.calendar.zone.key,
        response_targets_seconds=list(targets),
        agents=_rows(agents, counters, policy),
        totals=_totals(counters, shop_counters, targets),
        days=per_day,
    )


def _counted(days: Sequence[Counters]) -> bool:
    return any(value for day in days for value in day.values())


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

    async def report(self, shop: str, days: DayRange, now_ms: int) -> Report:
        """Every agent configured for the shop or counted in the range, and the team."""
        policy = self.policies(shop)
        since_ms = policy.calendar.day_start_ms(days.first)
        await self.require_shop(shop, since_ms)
        configured = self.policies.settings.shops.get(shop)
        named = set(configured.agents) if configured else set()
        seen = set(await self.store.agents_since(shop, since_ms)) - {SHOP_LEVEL}
        candidates = sorted(named | seen)
        counters = await self.store.day_counters(
            [(shop, a) for a in [*candidates, SHOP_LEVEL]], list(days.days)
        )
        shop_counters = counters.pop()
        kept = [(a, c) for a, c in zip(candidates, counters, strict=True) if a in named or _counted(c)]
        return assemble_report(
            policy, days, now_ms, [a for a, _ in kept], [c for _, c in kept], shop_counters
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
        return await self.report(shop, days, now_ms), by_day

    async def previous_team(self, report: Report, now_ms: int) -> TeamWindowValues | None:
        """The team over the period of the same length just before the report's, if still kept."""
        policy = self.policies(report.shop)
        span = DayRange(
            date.fromisoformat(report.from_).toordinal(), date.fromisoformat(report.to).toordinal()
        ).previous()
        if not span.within(policy.calendar.day(now_ms), policy.retention_days):
            return None
        return await self.team(report.shop, span)

    async def team(self, shop: str, days: DayRange) -> TeamWindowValues:
        """The team's values alone (the page's comparison with the previous period)."""
        policy = self.policies(shop)
        since_ms = policy.calendar.day_start_ms(days.first)
        agents = sorted(set(await self.store.agents_since(shop, since_ms)) - {SHOP_LEVEL})
        counters = await self.store.day_counters([(shop, a) for a in [*agents, SHOP_LEVEL]], list(days.days))
        shop_counters = counters.pop()
        return _totals(counters, shop_counters, policy.response_targets_seconds).metrics
