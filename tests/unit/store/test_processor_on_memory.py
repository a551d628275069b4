"""The processor's fence, retries and dead-letter ordering, on the in-memory store.

The same behaviours run against real Redis and a Redis Cluster in
tests/integration/test_store_contract.py; here each takes milliseconds, and a fault can be
put exactly where a test wants it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis.exceptions import AuthenticationError

from agents.core.policy import PolicyBook
from agents.exposure.metrics import WorkerMetrics
from agents.processing.batch import BatchProcessor
from agents.store.errors import StoreAccessError
from agents.store.memory import MemoryPartitionStore
from agents.store.protocols import CommitConflict, PartitionCommit, PartitionSnapshot, PartitionStore
from config.settings import Settings
from streams.wire.deadletter import DeadLetter
from streams.wire.decoding import EventDecoder
from streams.wire.records import Record
from tests.kafka_records import simulated

NOW = 1_764_000_000_000
TOPICS = ("c.messages", "c.orders")
PARTITIONS = 4
MALFORMED = Record(TOPICS[0], 0, 10_000, b"s1:tb_x", b"{not json")
RECORDS = [*simulated(1500, NOW, PARTITIONS, TOPICS), MALFORMED]


class Store(MemoryPartitionStore):
    """The memory store with a log of calls and faults on demand."""

    def __init__(self, log: list[str] | None = None) -> None:
        super().__init__()
        self.log = log if log is not None else []
        self.failing_commits: list[BaseException] = []

    async def load(
        self, buyers: Mapping[int, Sequence[str]], topics: Sequence[str]
    ) -> dict[int, PartitionSnapshot]:
        self.log.append("load")
        return await super().load(buyers, topics)

    async def commit(self, commits: Sequence[PartitionCommit]) -> set[int]:
        if self.failing_commits:
            self.log.append("commit failed")
            raise self.failing_commits.pop(0)
        self.log.append("commit")
        return await super().commit(commits)


def processor(store: PartitionStore, letters: list[DeadLetter] | None = None, **kw: Any) -> BatchProcessor:
    log = store.log if isinstance(store, Store) else []

    async def sink(batch: Sequence[DeadLetter]) -> None:
        log.append("dead letters")
        if letters is not None:
            letters.extend(batch)

    return BatchProcessor(
        store,
        PolicyBook(Settings()),
        EventDecoder(),
        sink,
        WorkerMetrics.create(CollectorRegistry()),
        clock=lambda: NOW,
        input_topics=TOPICS,
        **kw,
    )


def contents(store: MemoryPartitionStore) -> tuple[Any, ...]:
    return store.offsets, store.buyer_states, dict(store.counters), dict(store.waiting)


def batches(records: Sequence[Record], size: int) -> Iterable[Sequence[Record]]:
    return (records[i : i + size] for i in range(0, len(records), size))


@pytest.fixture(scope="module")
def reference() -> tuple[Any, ...]:
    """Every record applied once, in one batch, by one worker."""
    store = MemoryPartitionStore()
    asyncio.run(processor(store).process(RECORDS))
    return contents(store)


def test_the_reference_run_counts_something(reference: tuple[Any, ...]) -> None:
    offsets, states, counters, waiting = reference
    assert len(states) > 100 and sum(f.get("c", 0) for f in counters.values()) > 100 and waiting
    assert offsets[(TOPICS[0], 0)] == MALFORMED.offset  # a rejected record moves the offset too


def test_batch_sizes_change_nothing(reference: tuple[Any, ...]) -> None:
    store = MemoryPartitionStore()
    for batch in batches(RECORDS, 97):
        asyncio.run(processor(store).process(batch))
    assert contents(store) == reference


def test_records_already_applied_are_skipped_and_not_dead_lettered_again(reference: tuple[Any, ...]) -> None:
    store, letters = MemoryPartitionStore(), []
    worker = processor(store, letters)
    asyncio.run(worker.process(RECORDS))
    sent = list(letters)
    report = asyncio.run(worker.process(RECORDS))  # redelivered after a rebalance
    assert report.skipped_already_applied == len(RECORDS) and not report.outcomes
    assert MALFORMED.offset in {letter.offset for letter in sent} and letters == sent
    assert contents(store) == reference


class Gated:
    """One worker's view of a shared `store`: says when it has loaded, commits only after `opens`."""

    def __init__(
        self, store: MemoryPartitionStore, opens: asyncio.Event, loaded: asyncio.Event | None = None
    ) -> None:
        self.store, self.opens, self.loaded = store, opens, loaded

    async def load(
        self, buyers: Mapping[int, Sequence[str]], topics: Sequence[str]
    ) -> dict[int, PartitionSnapshot]:
        snapshots = await self.store.load(buyers, topics)
        if self.loaded is not None:
            self.loaded.set()
        return snapshots

    async def catch_up(self, snapshots: Iterable[PartitionSnapshot]) -> None:
        await self.store.catch_up(snapshots)

    async def drain(self, partitions: Iterable[int]) -> int:
        return await self.store.drain(partitions)

    async def commit(self, commits: Sequence[PartitionCommit]) -> set[int]:
        await self.opens.wait()
        return await self.store.commit(commits)


def test_two_workers_racing_for_the_same_records_apply_them_once(reference: tuple[Any, ...]) -> None:
    """Both load the same offsets; A commits first, B's fence has moved: B recomputes, skips all."""
    store = MemoryPartitionStore()

    async def race() -> tuple[Any, Any]:
        b_loaded, a_done = asyncio.Event(), asyncio.Event()
        a = processor(Gated(store, opens=b_loaded))
        b = processor(Gated(store, opens=a_done, loaded=b_loaded))

        async def run_a() -> Any:
            report = await a.process(RECORDS)
            a_done.set()
            return report

        return tuple(await asyncio.gather(run_a(), b.process(RECORDS)))

    report_a, report_b = asyncio.run(race())
    assert report_b.attempts == 2 and report_b.skipped_already_applied == len(RECORDS)
    assert sum(report_a.outcomes.values()) == len(RECORDS)
    assert contents(store) == reference


def test_a_fence_that_keeps_moving_gives_up_with_a_conflict() -> None:
    class AlwaysMoved(MemoryPartitionStore):
        async def commit(self, commits: Sequence[PartitionCommit]) -> set[int]:
            return {c.partition for c in commits}

    worker = processor(AlwaysMoved(), max_conflict_retries=3)
    with pytest.raises(CommitConflict):
        asyncio.run(worker.process(RECORDS[:50]))
    assert worker.metrics.conflicts._value.get() == 3


def test_dead_letters_are_sent_before_the_commit_that_moves_past_them() -> None:
    store = Store()
    asyncio.run(processor(store).process(RECORDS))
    assert store.log == ["load", "dead letters", "commit"]


def test_a_commit_that_fails_after_the_dead_letters_repeats_them_and_loses_nothing(
    reference: tuple[Any, ...],
) -> None:
    store, letters = Store(), []
    store.failing_commits = [ConnectionError("Redis went away")]
    worker = processor(store, letters)
    asyncio.run(worker.process_until_done(RECORDS))
    assert store.log == ["load", "dead letters", "commit failed", "load", "dead letters", "commit"]
    once = len(letters) // 2
    assert once > 0 and letters[:once] == letters[once:]  # at least once, in the same order
    assert worker.metrics.redis_errors._value.get() == 1
    assert contents(store) == reference


def test_a_dead_letter_sink_that_fails_commits_nothing() -> None:
    store = MemoryPartitionStore()

    async def broken(_: Sequence[DeadLetter]) -> None:
        raise ConnectionError("Kafka went away")

    worker = processor(store)
    worker.dead_letters = broken
    with pytest.raises(ConnectionError):
        asyncio.run(worker.process(RECORDS))
    assert store.offsets == {} and store.buyer_states == {}


def test_a_refused_login_stops_at_once_instead_of_retrying() -> None:
    store = Store()
    store.failing_commits = [AuthenticationError("WRONGPASS invalid username-password pair")]
    worker = processor(store)
    with pytest.raises(StoreAccessError, match="refused the login"):
        asyncio.run(worker.process_until_done(RECORDS))
    assert store.log.count("commit failed") == 1 and worker.metrics.redis_errors._value.get() == 0
