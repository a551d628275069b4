"""The driven clock: simulated days of traffic through the real worker, and at every chosen
moment every read path compared with the reference.

The clock only moves forward. Records are applied in batches as they arrive, each batch at the
clock of its last arrival; before each batch, the days it can no longer change are frozen in
the expectation. At a moment: the rest of what arrived is applied, the leader runs its round
(gauges, waiting samples, alerts), then the floor, the trend, a report and the gauges of the
moment's shops are read and compared.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from config.settings import settings_from_yaml
from streams.contract.floor import ShopFloor
from streams.wire.records import Record
from tests.reference import DAY_MS
from tests.whole_path import checks
from tests.whole_path.compare import Finding, Findings, Where
from tests.whole_path.expected import ShopModel
from tests.whole_path.moments import Moment, moments_of_day
from tests.whole_path.reads import Sample, Worker
from tests.whole_path.shops import ShopPlan, default_shops, grid_shops, settings_yaml
from tests.whole_path.traffic import Delivery, TrafficGenerator

# Far enough ahead that nothing written expires on the wall clock during a run (PEXPIREAT), and
# a daylight-saving change for America/Los_Angeles (2031-03-09) inside the first 40 days.
START_MS = int(datetime(2031, 2, 24, tzinfo=UTC).timestamp() * 1000)
DEFAULT_SEED = 20251125
DEFAULT_DAYS = 40
DEFAULT_MOMENTS = 10
# How far apart the first and last arrival of one batch may be: from a record alone to minutes.
BATCH_SPANS_MS = (0, 1000, 60_000, 600_000, 1_800_000)


@dataclass(frozen=True)
class SimConfig:
    redis_url: str
    seed: int = DEFAULT_SEED
    days: int = DEFAULT_DAYS
    moments_per_day: int = DEFAULT_MOMENTS
    grid: bool = False  # a shop for every judge × rule × window

    @classmethod
    def from_environment(cls, redis_url: str) -> SimConfig:
        """KEFU_SIM_SEED, KEFU_SIM_DAYS, KEFU_SIM_MOMENTS, KEFU_SIM_GRID=1 (the longer runs)."""
        env = os.environ
        return cls(
            redis_url,
            int(env.get("KEFU_SIM_SEED", DEFAULT_SEED)),
            int(env.get("KEFU_SIM_DAYS", DEFAULT_DAYS)),
            int(env.get("KEFU_SIM_MOMENTS", DEFAULT_MOMENTS)),
            env.get("KEFU_SIM_GRID", "") not in ("", "0"),
        )


@dataclass
class Stats:
    records: int = 0
    batches: int = 0
    moments: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


class Simulation:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.plans: tuple[ShopPlan, ...] = grid_shops() if config.grid else default_shops()
        settings = settings_from_yaml(settings_yaml(self.plans))
        redis = msgspec.structs.replace(settings.redis, url=config.redis_url)
        self.worker = Worker.start(msgspec.structs.replace(settings, redis=redis), START_MS)
        self.models = {plan.shop: ShopModel(plan, START_MS) for plan in self.plans}
        self.traffic = TrafficGenerator(self.plans, self.rng)
        self.offsets: dict[tuple[str, int], int] = {}
        self.findings = Findings()
        self.alert_book = checks.AlertBook()
        self.samples: dict[str, dict[int, int]] = {plan.shop: {} for plan in self.plans}
        self.starts: dict[str, list[int]] = {plan.shop: [] for plan in self.plans}  # every event's ts, sorted
        self.stats = Stats()

    async def run(self) -> Findings:
        try:
            for day in range(self.config.days):
                day_start = START_MS + day * DAY_MS
                self.traffic.day(day_start)
                for moment in moments_of_day(
                    day_start, self.plans, self.traffic.recent_starts, self.rng, self.config.moments_per_day
                ):
                    await self.deliver(moment.at)
                    await self.check(moment)
            end = START_MS + self.config.days * DAY_MS
            for model in self.models.values():
                model.assert_matches_plain_reference(end)
        finally:
            await self.worker.close()
        return self.findings

    async def deliver(self, until: int) -> None:
        """Apply what arrived by `until`, in batches of what arrived close together."""
        batch: list[Delivery] = []
        span = self.rng.choice(BATCH_SPANS_MS)
        for delivery in self.traffic.due(until):
            if batch and (delivery.arrival - batch[0].arrival > span or len(batch) >= 200):
                await self._apply(batch, until)
                batch, span = [], self.rng.choice(BATCH_SPANS_MS)
            batch.append(delivery)
        if batch:
            await self._apply(batch, until)

    async def _apply(self, batch: list[Delivery], until: int) -> None:
        clock = min(until, batch[-1].arrival + self.rng.choice((0, 1, 500)))
        for model in self.models.values():
            model.freeze_before(clock)
        records: list[Record] = []
        for delivery in batch:
            record = delivery.record(0)
            key = (record.topic, record.partition)
            offset = self.offsets[key] = self.offsets.get(key, -1) + 1
            records.append(delivery.record(offset))
        report = await self.worker.process(records, clock)
        expected: Counter[tuple[str, str]] = Counter()
        for delivery in batch:
            event = delivery.event
            verdict = self.models[event.shop_id].apply(event, clock)
            expected[(delivery.topic, "applied" if verdict == "filtered" else verdict)] += 1
            self.stats.outcomes[verdict] += 1
            bisect.insort(self.starts[event.shop_id], event.ts)
        got = Counter({key: n for key, n in report.outcomes.items() if n})
        if got != expected:
            where = Where(self.config.seed, clock, "a batch applied")
            self.findings.add(Finding("events", where, "", "-", "outcomes", dict(expected), dict(got)))
        self.stats.records += len(batch)
        self.stats.batches += 1

    async def check(self, moment: Moment) -> None:
        now = moment.at
        self.stats.moments += 1
        alerts = await self.worker.lead(now)
        gauges = self.worker.gauge_samples()
        floors = []
        for plan in self.plans:
            model = self.models[plan.shop]
            expected = checks.expected_floor(model, now)
            floor = await self.worker.floor(plan.shop, now)
            agents = [row.agent for row in floor.agents]
            floors.append((expected, agents))
            self.samples[plan.shop][now // 60_000] = sum(len(r.waits) for r in expected.rows.values())
            if moment.shops is None or plan.shop in moment.shops:
                await self._check_shop(moment, model, expected, floor, gauges)
        where = Where(self.config.seed, now, moment.why)
        self.findings.extend(checks.check_alerts(where, self.alert_book.round(floors, now), alerts))

    async def _check_shop(
        self,
        moment: Moment,
        model: ShopModel,
        expected: checks.ExpectedFloor,
        floor: ShopFloor,
        gauges: dict[Sample, float],
    ) -> None:
        now, plan = moment.at, model.plan
        where = Where(self.config.seed, now, moment.why, plan.shop, plan.rules.zone)
        found = self.findings
        found.extend(checks.check_floor(where, expected, floor))
        agents = [row.agent for row in floor.agents]
        wanted_gauges = checks.expected_gauges(expected, agents, model.histograms())
        found.extend(checks.check_gauges(where, plan.shop, wanted_gauges, gauges))
        trend = await self.worker.trend(plan.shop, now)
        found.extend(checks.check_trend(where, model, floor, trend, self.samples[plan.shop]))
        found.extend(checks.check_trend_adds_up(where, floor, trend))
        found.extend(checks.check_equal_windows(where, model, self.starts[plan.shop], floor))
        today = model.today(now)
        last = today - self.rng.choice((0, 0, 1, 27, 28, 29, self.rng.randrange(60)))
        first = last - self.rng.choice((0, 0, 6, 27, 28, self.rng.randrange(45)))
        first = max(first, today - 92)  # within retention_days (93)
        report = await self.worker.report(plan.shop, first, last, now)
        found.extend(checks.check_report(where, model, report, first, last))
        if moment.end_of_day == plan.shop:
            one_day = await self.worker.report(plan.shop, today, today, now)
            found.extend(checks.check_day_report_is_today(where, floor, one_day))
            days = [await self.worker.report(plan.shop, d, d, now) for d in range(today - 27, today + 1)]
            found.extend(checks.check_days_add_up_to_28d(where, floor, days))


def run_simulation(config: SimConfig) -> tuple[Findings, Stats]:
    simulation = Simulation(config)
    findings = asyncio.run(simulation.run())
    return findings, simulation.stats
