"""The worker's long-lived parts (store, processor, floor reader, metrics) and what it does with them."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest

from agents.core import alerts
from agents.core.alerts import AlertEvent
from agents.core.clock import wall_clock_ms
from agents.core.policy import PolicyBook
from agents.exposure.collector import (
    OVERFLOW_AGENT,
    FloorCollector,
    FloorSnapshot,
    cap_agents,
    cap_shops,
    merge_histograms,
)
from agents.exposure.floor import FloorReader
from agents.exposure.floor_exposition import FloorText
from agents.exposure.metrics import WorkerMetrics
from agents.exposure.report import ReportReader
from agents.exposure.trend import TrendReader
from agents.processing.batch import OUTCOMES, BatchProcessor, DeadLetterSink
from agents.processing.status import StatusProcessor
from agents.store.batches import offset_ttl_ms
from agents.store.connect import connect
from agents.store.redis_store import RedisStore
from config.settings import Settings
from streams.contract.floor import ShopFloor
from streams.wire.decoding import EventDecoder, Reason
from streams.wire.partitioning import Partitioner
from streams.wire.records import KafkaRecord
from streams.wire.status_decoding import StatusDecoder

log = logging.getLogger(__name__)

AlertSink = Callable[[Sequence[AlertEvent]], Awaitable[None]]


@dataclass
class Runtime:
    settings: Settings
    registry: CollectorRegistry
    metrics: WorkerMetrics
    collector: FloorCollector
    store: RedisStore
    policies: PolicyBook
    reader: FloorReader
    processor: BatchProcessor
    alert_sink: AlertSink
    reports: ReportReader
    trends: TrendReader
    epoch: int | None = None  # this worker's leader epoch, while it leads
    deposed: bool = False  # a newer leader took over while this one still thought it led
    floor_text: FloorText = field(default_factory=FloorText)
    status: StatusProcessor | None = None  # kefu.agents (v3), made by `create`
    # The input topics this worker consumes: resumed from Redis on assignment, measured for lag.
    consumed_topics: set[str] = field(default_factory=set)

    @classmethod
    def create(cls, settings: Settings, dead_letters: DeadLetterSink, alert_sink: AlertSink) -> Runtime:
        registry = CollectorRegistry()
        metrics = WorkerMetrics.create(registry)
        topics = settings.kafka.topics
        metrics.start_at_zero(
            {
                metrics.events: [(t, o) for t in (topics.messages, topics.orders) for o in OUTCOMES],
                metrics.rejected: [(reason.value,) for reason in Reason],
                metrics.alerts: [(a, s) for a in alerts.ALERTS for s in ("firing", "resolved")],
            }
        )
        collector = FloorCollector()  # not in `registry`: `exposition` writes its text faster
        store = RedisStore(connect(settings.redis.url), offset_ttl_ms(settings))
        policies = PolicyBook(settings)
        processing = settings.processing
        decoder = EventDecoder(
            future_tolerance_ms=processing.future_tolerance_seconds * 1000,
            max_record_bytes=processing.max_record_bytes,
        )
        processor = BatchProcessor(
            store.batches,
            policies,
            decoder,
            dead_letters,
            metrics,
            input_topics=(topics.messages, topics.orders),
            partitioner=Partitioner(settings.kafka.partitions),
        )
        reader = FloorReader(store, policies, store)
        reports = ReportReader(store, policies, store)
        trends = TrendReader(store, reader)
        status = StatusProcessor(
            store.status,
            policies,
            StatusDecoder(decoder.future_tolerance_ms, decoder.max_record_bytes),
            dead_letters,
            metrics,
        )
        return cls(
            settings,
            registry,
            metrics,
            collector,
            store,
            policies,
            reader,
            processor,
            alert_sink,
            reports,
            trends,
            status=status,
        )

    def exposition(self) -> bytes:
        """The `/metrics` body: the process's counters, then the floor of the latest snapshot."""
        return generate_latest(self.registry) + self.floor_text.of(self.collector.snapshot)

    async def apply_until_done(self, records: Sequence[KafkaRecord]) -> None:
        """The batch handler: see BatchProcessor.process_until_done."""
        await self.processor.process_until_done(records)

    async def apply_any_until_done(self, records: Sequence[KafkaRecord]) -> None:
        """Records of any input topic (`rebuild` reads them all at once): each to its processor."""
        agents = self.settings.kafka.topics.agents
        status = [record for record in records if record.topic == agents]
        if status:
            await self.apply_status_until_done(status)
        await self.apply_until_done([record for record in records if record.topic != agents])

    async def apply_status_until_done(self, records: Sequence[KafkaRecord]) -> None:
        """The batch handler of kefu.agents: see StatusProcessor.process_until_done."""
        if self.status is None:
            raise RuntimeError("this runtime was built without agent status (Runtime.create makes it)")
        await self.status.process_until_done(records)

    async def lead(self, now_ms: int | None = None) -> None:
        """The leader's duties, once a second: export every shop's floor as gauges, say who
        leads, drop expired waits from the live queues, and publish alert transitions.

        Fenced by an epoch in Redis: a leader that froze while another took over finds a newer
        epoch there and stops, instead of exporting twice or repeating alert events.
        """
        if self.deposed:
            if await self.store.leader() is not None:
                return  # the newer leader is at work
            # It stopped saying so (LEADER_TTL_MS) while Faust still names this worker: lead again.
            self.epoch, self.deposed = None, False
        now_ms = wall_clock_ms() if now_ms is None else now_ms
        if self.epoch is None:
            self.epoch = await self.store.take_leadership()
            log.info("leading, epoch %d", self.epoch)
        snapshot, full_floors = await self.read_snapshot(now_ms)
        epoch, firing = await self.store.firing_alerts()
        if epoch != self.epoch:
            self._depose(epoch)
            return
        self.collector.snapshot = snapshot
        self.floor_text.published(snapshot)
        await self.store.mark_leader(self.identity, now_ms)
        await self.store.record_waiting({f.shop: f.totals.waiting_buyers for f in snapshot.floors}, now_ms)
        await self.prune_expired_waits(full_floors, now_ms)
        # Every agent alerts on its own: the `_other` fold bounds /metrics' labels only.
        await self.publish_alerts(full_floors, firing, now_ms)

    async def read_snapshot(self, now_ms: int) -> tuple[FloorSnapshot, list[ShopFloor]]:
        """Every exported shop's floor and first-response histograms for /metrics, agents past
        the cap folded into `_other`; and the same shops' floors with every agent, unfolded."""
        processing = self.settings.processing
        configured = self.policies.settings.shops  # live: block lists and agents reload
        shops, unexported = cap_shops(await self.reader.shops(now_ms), configured, processing.max_shops)
        floors: list[ShopFloor] = []
        full_floors: list[ShopFloor] = []
        histograms: dict[tuple[str, str], dict[str, int]] = {}
        for shop in shops:
            full = await self.reader.floor(shop, now_ms, with_sums=True)
            full_floors.append(full)
            shop_settings = configured.get(shop)
            floor = cap_agents(
                full, processing.max_agents_per_shop, shop_settings.agents if shop_settings else ()
            )
            floors.append(floor)
            agents = [row.agent for row in full.agents]
            exported = {row.agent for row in floor.agents}
            overflow = []
            for agent, counts in zip(
                agents, await self.store.histograms([(shop, a) for a in agents]), strict=True
            ):
                if counts and agent in exported:
                    histograms[(shop, agent)] = counts
                elif counts:
                    overflow.append(counts)
            if overflow:
                histograms[(shop, OVERFLOW_AGENT)] = merge_histograms(overflow)
        return FloorSnapshot(floors, histograms, unexported), full_floors

    async def prune_expired_waits(self, floors: list[ShopFloor], now_ms: int) -> None:
        for floor in floors:
            limit = now_ms - self.policies(floor.shop).wait_limit_ms
            await self.store.prune_waits([(floor.shop, row.agent) for row in floor.agents], limit)

    async def publish_alerts(self, floors: list[ShopFloor], before: alerts.Firing, now_ms: int) -> None:
        """One `firing`, later one `resolved` event per alert episode, both with its `alert_id`,
        for every agent of `floors` (uncapped: alert events carry no label cardinality).

        The firing set lives in Redis, so a new leader continues where the old one stopped;
        events are sent before the set is stored (a crash in between can repeat one, never
        lose one; the repeat has the same `alert_id`).
        """
        now = alerts.conditions(floors)
        events = alerts.transitions(before, now, now_ms)
        if not events or self.epoch is None:
            return
        await self.alert_sink(events)
        for event in events:
            self.metrics.alerts.labels(event.alert, event.state).inc()
        if not await self.store.store_firing_alerts(self.epoch, alerts.still_firing(before, now, now_ms)):
            self._depose(None)

    def _depose(self, newer: int | None) -> None:
        log.warning(
            "another worker leads now (epoch %s; this one had %s): leader duties stop here until "
            "this worker is elected again",
            newer if newer is not None else "newer",
            self.epoch,
        )
        self.deposed = True
        self.collector.snapshot = FloorSnapshot()

    def follow(self) -> None:
        """Not the leader (any more): export no floor, and take a new epoch if elected again."""
        self.collector.snapshot = FloorSnapshot()
        self.epoch, self.deposed = None, False

    async def update_lag(self, highwaters: dict[tuple[str, int], int]) -> None:
        """Records behind the log end for the partitions this worker owns (no duplicates)."""
        tps = sorted(highwaters)
        applied = await self.store.applied_offsets(tps)
        self.metrics.lag.clear()
        for (topic, partition), offset in zip(tps, applied, strict=True):
            self.metrics.lag.labels(topic, str(partition)).set(
                max(0, highwaters[(topic, partition)] - offset - 1)
            )

    @property
    def identity(self) -> str:
        """How `kefu-pulse check` names this worker when it leads."""
        return f"{socket.gethostname()}:{self.settings.web.port} (pid {os.getpid()})"

    async def close(self) -> None:
        await self.store.close()
