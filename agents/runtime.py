"""The worker's long-lived parts: Redis client, store, processor, floor reader, metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError

from agents.core.calendar import MS_PER_HOUR
from agents.core.policy import PolicyBook
from agents.exposure.collector import FloorCollector, FloorSnapshot, cap_agents
from agents.exposure.floor import FloorReader
from agents.exposure.metrics import WorkerMetrics
from agents.processing import BatchProcessor, DeadLetterSink, Record, wall_clock_ms
from agents.store.redis_store import CommitConflict, RedisStore
from config.settings import Settings
from streams.decoding import EventDecoder

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    registry: CollectorRegistry
    metrics: WorkerMetrics
    collector: FloorCollector
    redis: aioredis.Redis
    store: RedisStore
    policies: PolicyBook
    reader: FloorReader
    processor: BatchProcessor

    @classmethod
    def create(cls, settings: Settings, dead_letters: DeadLetterSink) -> Runtime:
        registry = CollectorRegistry()
        metrics = WorkerMetrics.create(registry)
        collector = FloorCollector()
        registry.register(collector)
        client = aioredis.Redis.from_url(
            settings.redis.url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=15
        )
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
        return cls(settings, registry, metrics, collector, client, store, policies, reader, processor)

    async def apply_until_done(
        self, records: Sequence[Record], stopping: asyncio.Event | None = None
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
        cap = self.settings.processing.max_agents_per_shop
        floors = []
        histograms = {}
        for shop in await self.reader.shops(now_ms):
            floor = cap_agents(await self.reader.floor(shop, now_ms), cap)
            floors.append(floor)
            agents = [row["agent"] for row in floor["agents"] if row["agent"] != "_other"]
            for agent, counts in zip(
                agents, await self.store.histograms([(shop, a) for a in agents]), strict=True
            ):
                if counts:
                    histograms[(shop, agent)] = counts
            limit = now_ms - int(self.settings.processing.wait_limit_hours * MS_PER_HOUR)
            await self.store.prune_waits([(shop, a) for a in agents], limit)
        self.collector.snapshot = FloorSnapshot(floors, histograms)

    def clear_snapshot(self) -> None:
        self.collector.snapshot = FloorSnapshot()

    async def close(self) -> None:
        await self.redis.aclose()
