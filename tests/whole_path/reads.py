"""The worker as the simulation drives it: its own Runtime (processor, readers, leader round,
collector) on real Redis, with the processor's clock and every read's `now` the driven clock.

Every reader takes `now` as an argument (FloorReader.floor, TrendReader.trend,
ReportReader.report, Runtime.lead) and the processor takes a `clock`, so no wall time enters
the simulated path. What stays on wall time: Redis expiry (PEXPIREAT at event time + TTL), so
the simulation lives in the future, where nothing it writes expires during the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
from prometheus_client import CollectorRegistry

from agents.core.alerts import AlertEvent
from agents.core.report_range import DayRange
from agents.processing.batch import BatchReport
from agents.worker.runtime import Runtime
from config.settings import Settings
from streams.contract.floor import ShopFloor, ShopTrend
from streams.contract.report import Report
from streams.wire.deadletter import DeadLetter
from streams.wire.records import Record

Sample = tuple[str, frozenset[tuple[str, str]]]  # (sample name, labels)


@dataclass
class Worker:
    runtime: Runtime
    now_ms: int
    alerts: list[AlertEvent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    @classmethod
    def start(cls, settings: Settings, now_ms: int) -> Worker:
        async def keep_letters(letters: Sequence[DeadLetter]) -> None:
            worker.dead_letters.extend(letters)

        async def keep_alerts(events: Sequence[AlertEvent]) -> None:
            worker.alerts.extend(events)

        # As the worker runs: each batch's outboxes applied while the next is folded.
        worker = cls(Runtime.create(settings, keep_letters, keep_alerts, apply_behind=True), now_ms)
        worker.runtime.processor.clock = lambda: worker.now_ms
        return worker

    async def process(self, records: list[Record], clock_ms: int) -> BatchReport:
        self.now_ms = clock_ms
        return await self.runtime.processor.process(records)

    async def lead(self, now_ms: int) -> list[AlertEvent]:
        """One leader round at `now_ms`; the alert events it published."""
        self.alerts.clear()
        await self.runtime.store.settle()  # every read below is of what has landed
        await self.runtime.lead(now_ms)
        return list(self.alerts)

    async def floor(self, shop: str, now_ms: int) -> ShopFloor:
        await self.runtime.store.settle()
        return await self.runtime.reader.floor(shop, now_ms, with_sums=True)

    async def trend(self, shop: str, now_ms: int) -> ShopTrend:
        await self.runtime.store.settle()
        return await self.runtime.trends.trend(shop, now_ms)

    async def report(self, shop: str, first: int, last: int, now_ms: int) -> Report:
        await self.runtime.store.settle()
        return await self.runtime.reports.report(shop, DayRange(first, last), now_ms, by_day=True)

    def gauge_samples(self) -> dict[Sample, float]:
        """What /metrics would show of the floor: the leader's collector, in a registry of its own."""
        registry = CollectorRegistry()
        registry.register(self.runtime.collector)
        return {
            (sample.name, frozenset(sample.labels.items())): float(sample.value)
            for family in registry.collect()
            for sample in family.samples
        }

    async def close(self) -> None:
        await self.runtime.store.settle()
        await self.runtime.close()


def as_dict(struct: msgspec.Struct) -> dict[str, object]:
    return msgspec.structs.asdict(struct)
