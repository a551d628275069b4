"""The date-range report (metrics.md "Reports"), read from the day buckets of one shop.

A day bucket holds the cohort counters of everything that started on that business day, so a
range of whole days is the sum of its day buckets: the `today` window is one of them and `28d`
is 28, which is why a one-day report equals what the floor showed as `today` at that day's end.
Ratios and averages come from the summed counters, the team's from the agents' sums.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from agents.core.policy import PolicyBook, ShopPolicy
from agents.core.projection import DAY_FIELDS, FIRST_RESPONSE_BUCKETS, SHOP_LEVEL, WIDTH
from agents.core.report_range import DayRange, day_text, oldest_kept_day, parse_granularity, report_range
from agents.core.status import StatusTime, day_span, status_times
from agents.core.values import team_values, window_values
from agents.exposure.status_values import total, with_status
from agents.store.protocols import NoStatusHistory, ReportStore, StatusHistory
from config.calendar import MS_PER_DAY
from config.settings import Settings
from streams.contract.report import (
    PreviousPeriod,
    Report,
    ReportDay,
    ReportRequestError,
    ReportRow,
    ReportTotals,
)

DayVector = Sequence[int]  # one day bucket, DAY_FIELDS (projection.py)
DayStatus = Sequence[StatusTime]  # one agent's status figures, one per day of the range
INDEX_SKEW_MS = 3_600_000  # a margin past the future tolerance: an agent listed too many shows zeros
BUCKET_LABELS = (*(str(bound) for bound in FIRST_RESPONSE_BUCKETS), "+Inf")


class UnknownReportShop(ReportRequestError):
    pass


def index_since_ms(settings: Settings, day_start_ms: int) -> int:
    """Where to look in a shop's agents index for the agents of a day starting at `day_start_ms`:
    the index scores by processing time, and an event of the day may have been processed as far
    ahead of its stamp as the future tolerance lets through (processing.future_tolerance_seconds,
    which has no upper bound), with INDEX_SKEW_MS to spare."""
    return day_start_ms - settings.processing.future_tolerance_seconds * 1000 - INDEX_SKEW_MS


def _sum(vectors: Sequence[DayVector]) -> list[int]:
    if not vectors:
        return [0] * len(DAY_FIELDS)
    return [sum(column) for column in zip(*vectors, strict=True)]


def _totals(
    agent_vectors: Sequence[DayVector],
    shop_vector: DayVector,
    targets: tuple[int, ...],
    status: Sequence[StatusTime] = (),
) -> ReportTotals:
    """The team: the agents' sums (ratios from those, never averaged), and the shop's orders."""
    team = _sum(agent_vectors)
    return ReportTotals(
        metrics=with_status(
            team_values(team[:WIDTH], list(shop_vector[:WIDTH]), targets), total(list(status))
        ),
        first_response_buckets=dict(zip(BUCKET_LABELS, team[WIDTH:], strict=True)),
    )


def _rows(
    agents: Sequence[str], vectors: Sequence[DayVector], status: Sequence[StatusTime], policy: ShopPolicy
) -> list[ReportRow]:
    targets, names = policy.response_targets_seconds, policy.agent_names
    return [
        ReportRow(
            agent=agent,
            name=names.get(agent),
            metrics=with_status(window_values(list(vector[:WIDTH]), targets), time),
        )
        for agent, vector, time in zip(agents, vectors, status, strict=True)
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
    status: Sequence[DayStatus] | None = None,
) -> Report:
    """The report from each agent's day buckets (`vectors[a][d]`, d over `days`) and the shop
    level's (`shop_vectors[d]`), and each agent's status figures per day (`status[a][d]`; none:
    no status events). Each day always has its team row (the page charts it); its agent rows
    only with `agents_by_day`."""
    targets = policy.response_targets_seconds
    if status is None:
        status = [[StatusTime()] * len(days.days) for _ in agents]
    per_day = []
    for index, day in enumerate(days.days):
        on_day = [agent_days[index] for agent_days in vectors]
        status_on_day = [agent_days[index] for agent_days in status]
        rows = _rows(agents, on_day, status_on_day, policy) if agents_by_day else []
        totals = _totals(on_day, shop_vectors[index], targets, status_on_day)
        per_day.append(ReportDay(day=day_text(day), agents=rows, totals=totals))
    ranges = [_sum(agent_days) for agent_days in vectors]
    status_ranges = [total(list(agent_days)) for agent_days in status]
    return Report(
        shop=policy.shop_id,
        name=policy.name,
        from_=day_text(days.first),
        to=day_text(days.last),
        as_of=as_of,
        timezone=policy.calendar.zone.key,
        response_targets_seconds=list(targets),
        agents=_rows(agents, ranges, status_ranges, policy),
        totals=_totals(ranges, _sum(shop_vectors), targets, status_ranges),
        days=per_day,
    )


def _counted(days: Sequence[DayVector], status: DayStatus = ()) -> bool:
    return any(any(day) for day in days) or any(time != StatusTime() for time in status)


def status_since_ms(policy: ShopPolicy, now_ms: int) -> int:
    """Where to look in a shop's agents index for every agent that still has status points: a
    status write touches the index and keeps the agent's points retention_days + 1 days from
    then (agents/processing/status.py), so an agent touched before this has none left. One
    whose last point came before a range can still be online or away all through it."""
    return now_ms - (policy.retention_days + 1) * MS_PER_DAY - INDEX_SKEW_MS


async def _status_only(
    history: StatusHistory,
    store: ReportStore,
    shop: str,
    listed: Sequence[str],
    policy: ShopPolicy,
    days: DayRange,
    now_ms: int,
) -> list[tuple[str, list[list[int]], list[StatusTime]]]:
    """The agents not in `listed` with status time in `days`: their last status event came
    before the range (an agent away all day, or whose login feed stopped), and nothing else of
    theirs is in it. Each with zero counters for every day."""
    others = sorted(
        set(await store.agents_since(shop, status_since_ms(policy, now_ms))) - {SHOP_LEVEL, *listed}
    )
    if not others:
        return []
    status = await _status_by_day(history, [(shop, agent) for agent in others], policy, days, now_ms)
    zeros = [[0] * len(DAY_FIELDS) for _ in days.days]
    return [(agent, zeros, times) for agent, times in zip(others, status, strict=True) if _counted((), times)]


async def _status_by_day(
    history: StatusHistory, pairs: Sequence[tuple[str, str]], policy: ShopPolicy, days: DayRange, now_ms: int
) -> list[list[StatusTime]]:
    """Each agent's status figures on each day of `days`, up to now (wall clock)."""
    spans = [day_span(day, policy.calendar) for day in days.days]
    points = await history.status_points(pairs, spans[0][0])
    return [status_times(agent_points, spans, now_ms) for agent_points in points]


class ReportTooLarge(ReportRequestError):
    pass


@dataclass(frozen=True, slots=True)
class ReportParts:
    """A report as read from the store, before its arithmetic: assembling it takes no I/O, so
    the web assembles and renders it off the event loop."""

    policy: ShopPolicy
    days: DayRange
    as_of: int
    agents: Sequence[str]
    vectors: Sequence[Sequence[DayVector]]
    shop_vectors: Sequence[DayVector]
    by_day: bool
    status: Sequence[DayStatus] | None = None  # per agent, per day (v3 agent status)

    def assemble(self) -> Report:
        return assemble_report(
            self.policy,
            self.days,
            self.as_of,
            self.agents,
            self.vectors,
            self.shop_vectors,
            agents_by_day=self.by_day,
            status=self.status,
        )


@dataclass(frozen=True, slots=True)
class PreviousParts:
    """The team over the period a report compares with, as read (`assemble` sums it)."""

    days: DayRange
    targets: tuple[int, ...]
    vectors: Sequence[Sequence[DayVector]]
    shop_vectors: Sequence[DayVector]
    status: Sequence[DayStatus] = ()  # per agent, per day (v3 agent status)

    def assemble(self) -> PreviousPeriod:
        ranges = [_sum(agent_days) for agent_days in self.vectors]
        status = [total(list(agent_days)) for agent_days in self.status]
        team = _totals(ranges, _sum(self.shop_vectors), self.targets, status).metrics
        return PreviousPeriod(from_=day_text(self.days.first), to=day_text(self.days.last), team=team)


def check_size(shop: str, agents: int, days: DayRange, max_cells: int | None) -> None:
    """Refuse a read of more than `max_cells` agent-days, naming the limit and the way round it."""
    cells = agents * len(days)
    if max_cells is None or cells <= max_cells:
        return
    command = (
        f"kefu-pulse report --shop {shlex.quote(shop)} --from {day_text(days.first)} "
        f"--to {day_text(days.last)} --by day --format csv --output report.csv"
    )
    raise ReportTooLarge(
        f"this report is {agents:,} agents × {len(days):,} days = {cells:,} agent-days, more than "
        f"the {max_cells:,} the web serves (web.max_report_cells): ask for fewer days, or write it "
        f"from the command line: {command}"
    )


class ReportReader:
    def __init__(self, store: ReportStore, policies: PolicyBook, status: StatusHistory | None = None) -> None:
        self.store = store
        self.policies = policies
        # v3 agent status; without it (a v2 reader) no online time and no logins.
        self.status: StatusHistory = status if status is not None else NoStatusHistory()

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
        return (await self.parts(shop, days, now_ms, by_day=by_day)).assemble()

    async def parts(
        self, shop: str, days: DayRange, now_ms: int, *, by_day: bool = True, max_cells: int | None = None
    ) -> ReportParts:
        """What `report` reads; with `max_cells`, refused (ReportTooLarge) before the day buckets
        are read when more agents × days would be, and after the status reads when the agents
        with status time alone take the rows past it."""
        policy = self.policies(shop)
        # The indexes score by processing time, and an event may be up to minutes ahead of it.
        since_ms = index_since_ms(self.policies.settings, policy.calendar.day_start_ms(days.first))
        today = policy.calendar.day(now_ms)
        await self.require_shop(
            shop, policy.calendar.day_start_ms(oldest_kept_day(today, policy.retention_days))
        )
        configured = self.policies.settings.shops.get(shop)
        named = set(configured.agents) if configured else set()
        seen = set(await self.store.agents_since(shop, since_ms)) - {SHOP_LEVEL}
        candidates = sorted(named | seen)
        check_size(shop, len(candidates), days, max_cells)
        pairs = [(shop, agent) for agent in [*candidates, SHOP_LEVEL]]
        vectors = await self.store.day_vectors(pairs, list(days.days))
        shop_vectors = vectors.pop()
        status = await _status_by_day(self.status, pairs[:-1], policy, days, now_ms)
        kept = [
            (a, v, t)
            for a, v, t in zip(candidates, vectors, status, strict=True)
            if a in named or _counted(v, t)
        ]
        kept += await _status_only(self.status, self.store, shop, candidates, policy, days, now_ms)
        kept.sort(key=lambda row: row[0])
        check_size(shop, len(kept), days, max_cells)
        return ReportParts(
            policy,
            days,
            now_ms,
            [a for a, _, _ in kept],
            [v for _, v, _ in kept],
            shop_vectors,
            by_day,
            [t for _, _, t in kept],
        )

    async def request(
        self, shop: str, first: str | None, last: str | None, by: str | None, now_ms: int
    ) -> tuple[Report, bool]:
        """A person's request (`--from`/`from=` …) as the report and whether it goes day by day.

        Raises RangeError or UnknownReportShop with the sentence to show."""
        parts = await self.request_parts(shop, first, last, by, now_ms)
        return parts.assemble(), parts.by_day

    async def request_parts(
        self,
        shop: str,
        first: str | None,
        last: str | None,
        by: str | None,
        now_ms: int,
        max_cells: int | None = None,
    ) -> ReportParts:
        """`request`, read but not assembled; also ReportTooLarge past `max_cells`."""
        by_day = parse_granularity(by)
        policy = self.policies(shop)
        today = policy.calendar.day(now_ms)
        days = report_range(first, last, today, policy.retention_days, policy.calendar.zone.key)
        return await self.parts(shop, days, now_ms, by_day=by_day, max_cells=max_cells)

    async def previous_team(self, report: Report, now_ms: int) -> PreviousPeriod | None:
        """The team over the period the report compares with (`DayRange.previous`), if still kept."""
        first, last = date.fromisoformat(report.from_), date.fromisoformat(report.to)
        parts = await self.previous_parts(report.shop, DayRange(first.toordinal(), last.toordinal()), now_ms)
        return None if parts is None else parts.assemble()

    async def previous_parts(
        self, shop: str, days: DayRange, now_ms: int, max_cells: int | None = None
    ) -> PreviousParts | None:
        """What `previous_team` reads for a report over `days`; None when that period is no
        longer kept, or (past `max_cells`) too large to compare with."""
        policy = self.policies(shop)
        span = days.previous()
        if not span.within(policy.calendar.day(now_ms), policy.retention_days):
            return None
        since_ms = index_since_ms(self.policies.settings, policy.calendar.day_start_ms(span.first))
        agents = sorted(set(await self.store.agents_since(shop, since_ms)) - {SHOP_LEVEL})
        if max_cells is not None and len(agents) * len(span) > max_cells:
            return None
        pairs = [(shop, agent) for agent in [*agents, SHOP_LEVEL]]
        vectors = await self.store.day_vectors(pairs, list(span.days))
        shop_vectors = vectors.pop()
        status = await _status_by_day(self.status, pairs[:-1], policy, span, now_ms)
        others = await _status_only(self.status, self.store, shop, agents, policy, span, now_ms)
        if max_cells is not None and (len(agents) + len(others)) * len(span) > max_cells:
            return None
        for _, zeros, times in others:
            vectors.append(zeros)
            status.append(times)
        return PreviousParts(span, policy.response_targets_seconds, vectors, shop_vectors, status)
