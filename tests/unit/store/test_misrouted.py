"""Records on a partition murmur2 of their key would not choose (a producer on another
partitioner) are applied, counted as `misrouted`, and logged once per topic with the fix."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from agents.core.policy import PolicyBook
from agents.exposure.metrics import WorkerMetrics
from agents.processing.batch import BatchProcessor
from agents.store.memory import MemoryPartitionStore
from config.settings import Settings
from streams.wire import partitioning
from streams.wire.deadletter import DeadLetter
from streams.wire.decoding import EventDecoder
from streams.wire.partitioning import Partitioner, home_partition
from streams.wire.records import Record
from tests.kafka_records import simulated

NOW = 1_764_000_000_000
TOPICS = ("c.messages", "c.orders")
RECORDS = simulated(600, NOW, 4, TOPICS)  # partitioned by murmur2 for 4 partitions


async def _no_letters(_: Sequence[DeadLetter]) -> None:
    return None


def processor(store: MemoryPartitionStore, partitions: int | None) -> BatchProcessor:
    return BatchProcessor(
        store,
        PolicyBook(Settings()),
        EventDecoder(),
        _no_letters,
        WorkerMetrics.create(CollectorRegistry()),
        clock=lambda: NOW,
        input_topics=TOPICS,
        partitioner=Partitioner(partitions) if partitions else None,
    )


def outcome(worker: BatchProcessor, topic: str, name: str) -> float:
    return worker.metrics.events.labels(topic, name)._value.get()


def test_records_on_their_murmur2_partition_are_not_misrouted() -> None:
    worker = processor(MemoryPartitionStore(), 4)
    asyncio.run(worker.process(RECORDS))
    assert outcome(worker, TOPICS[0], "misrouted") == 0 and outcome(worker, TOPICS[0], "applied") > 100


def test_a_crc32_style_producer_is_counted_applied_anyway_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The same records one partition over: as if another partitioner had chosen.
    shifted = [Record(r.topic, (r.partition + 1) % 4, r.offset, r.key, r.value) for r in RECORDS]
    store, reference = MemoryPartitionStore(), MemoryPartitionStore()
    worker = processor(store, 4)
    with caplog.at_level(logging.WARNING, logger="agents.processing.batch"):
        asyncio.run(worker.process(shifted[:300]))
        asyncio.run(worker.process(shifted[300:]))
    asyncio.run(processor(reference, None).process(shifted))
    assert outcome(worker, TOPICS[0], "misrouted") > 100 and outcome(worker, TOPICS[0], "applied") == 0
    assert store.counters == reference.counters  # applied all the same
    warnings = [r.getMessage() for r in caplog.records if "murmur2" in r.getMessage()]
    assert len(warnings) == len({r.topic for r in shifted}) == 2  # once per topic, not per record
    assert "partitioner=murmur2_random" in warnings[0]


def test_after_partitions_are_added_older_records_count_as_misrouted() -> None:
    worker = processor(MemoryPartitionStore(), 8)  # kafka.partitions raised to 8; records from 4
    asyncio.run(worker.process(RECORDS))
    moved = sum(1 for r in RECORDS if home_partition(r.key, 8) != r.partition and b"{" in r.value[:1])
    assert moved > 0
    total = outcome(worker, TOPICS[0], "misrouted") + outcome(worker, TOPICS[1], "misrouted")
    assert 0 < total <= moved


def test_the_partitioner_matches_kafkas_default_and_bounds_its_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(partitioning, "MAX_CACHED_KEYS", 10)
    partitioner = Partitioner(6)
    for record in simulated(200, NOW, 6, TOPICS):
        assert partitioner.home(record.key) == record.partition
        assert len(partitioner._homes) <= 10
