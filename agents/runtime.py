"""The worker's long-lived parts: Redis client, store, processor, floor reader, metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError

from agents.core import alerts
from agents.core.alerts import AlertEvent
from agents.core.calendar import MS_PER_HOUR
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
from agents.exposure.metrics import WorkerMetrics
from agents.processing import BatchProcessor, DeadLetterSink, wall_clock_ms
from agents.store.batches import CommitConflict
from agents.store.connect import RedisClient, connect
from agents.store.redis_store import RedisStore
from config.settings import Settings
from streams.decoding import EventDecoder
from streams.records import KafkaRecord

log = logging.getLogger(__name__)

AlertSink = Callable[[Sequence[AlertEvent]], Awaitable[None]]


@dataclass
class Runtime:
    settings: Settings
    registry: CollectorRegistry
    metrics: WorkerMetrics
    collector: FloorCollector
    redis: RedisClient
    store: RedisStore
    policies: PolicyBook
    reader: FloorReader
    processor: BatchProcessor

    alert_sink: AlertSink

    @classmethod
    def create(cls, settings: Settings, dead_letters: DeadLetterSink, alert_sink: AlertSink) -> Runtime:
        registry = CollectorRegistry()
        metrics = WorkerMetrics.create(registry)
        collector = FloorCollector()
        registry.register(collector)
        client = connect(settings.redis.url)
        store = RedisStore(client)
        policies = PolicyBook(settings)
        processing = settings.processing
        decoder = EventDecoder(future_tolerance_ms=processing.future_tolerance_seconds * 1000)
        topics = settings.kafka.topics
        processor = BatchProcessor(
            store,
            policies,
            decoder,
            dead_letters,
            metrics,
            wait_limit_hours=processing.wait_limit_hours,
            input_topics=(topics.messages, topics.orders),
        )
        reader = FloorReader(store, policies, processing.wait_limit_hours)
        return cls(
            settings, registry, metrics, collector, client, store, policies, reader, processor, alert_sink
        )

    async def apply_until_done(
        self, records: Sequence[KafkaRecord], stopping: asyncio.Event | None = None
    ) -> None:
        """Apply a batch, retrying with backoff on Redis faults: never skip, never raise.

        The stream acks the batch when this returns, so returning early would let Kafka
        commit records that Redis does not hold.
        """
        delay = 0.1
        while True:
            try:
                await self.processor.process(records)
                return
            except (RedisError, OSError, CommitConflict) as exc:
                self.metrics.redis_errors.inc()
                log.warning(
                    "applying a batch of %d records failed (%s); retrying in %.1fs", len(records), exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def refresh_snapshot(self, now_ms: int | None = None) -> None:
        """Leader duty, once a second: recompute every shop's floor for the gauges."""
        now_ms = wall_clock_ms() if now_ms is None else now_ms
        processing = self.settings.processing
        configured = self.policies.settings.shops  # live: block lists and agents reload
        shops, unexported = cap_shops(await self.reader.shops(now_ms), configured, processing.max_shops)
        floors = []
        histograms: dict[tuple[str, str], dict[str, int]] = {}
        for shop in shops:
            full = await self.reader.floor(shop, now_ms, with_sums=True)
            shop_settings = configured.get(shop)
            floor = cap_agents(
                full, processing.max_agents_per_shop, shop_settings.agents if shop_settings else ()
            )
            floors.append(floor)
            # Every agent, the ones folded into `_other` too: their waits need pruning and
            # their histograms add up into `_other`'s.
            agents = [row["agent"] for row in full["agents"]]
            exported = {row["agent"] for row in floor["agents"]}
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
            limit = now_ms - int(processing.wait_limit_hours * MS_PER_HOUR)
            await self.store.prune_waits([(shop, a) for a in agents], limit)
        self.collector.snapshot = FloorSnapshot(floors, histograms, unexported)
        await self.publish_alerts(floors, now_ms)

    async def publish_alerts(self, floors: list[dict[str, Any]], now_ms: int) -> None:
        """Leader duty: one `firing`, later one `resolved` event per alert and agent.

        The firing set lives in Redis, so a new leader continues where the old one stopped;
        events are sent before the set is stored (a crash in between can repeat one, never
        lose one).
        """
        before = await self.store.firing_alerts()
        now = alerts.conditions(floors)
        events = alerts.transitions(before, now, now_ms)
        if not events:
            return
        await self.alert_sink(events)
        for event in events:
            self.metrics.alerts.labels(event.alert, event.state).inc()
        await self.store.store_firing_alerts({key for key, (firing, _, _) in now.items() if firing})

    async def update_lag(self, highwaters: dict[tuple[str, int], int]) -> None:
        """Records behind the log end for the partitions this worker owns (no duplicates)."""
        tps = sorted(highwaters)
        applied = await self.store.applied_offsets(tps)
        self.metrics.lag.clear()
        for (topic, partition), offset in zip(tps, applied, strict=True):
            self.metrics.lag.labels(topic, str(partition)).set(
                max(0, highwaters[(topic, partition)] - offset - 1)
            )

    def clear_snapshot(self) -> None:
        self.collector.snapshot = FloorSnapshot()

    async def close(self) -> None:
        await self.redis.aclose()
