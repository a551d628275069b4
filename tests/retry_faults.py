"""The processor's retry edges (issue 25), shared by the memory-store and real-Redis tests:
a commit whose reply is lost, a commit that never reaches the store, and a clock that moves
on between a batch's attempts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum

from prometheus_client import CollectorRegistry
from redis.exceptions import TimeoutError as RedisTimeoutError

from agents.core.policy import PolicyBook
from agents.exposure.metrics import WorkerMetrics
from agents.processing.batch import BatchProcessor
from agents.store.protocols import PartitionCommit, PartitionSnapshot, PartitionStore
from config.settings import Settings
from streams.wire.deadletter import DeadLetter
from streams.wire.decoding import EventDecoder
from streams.wire.records import Record

RETRY_GAP_MS = 10_000  # the clock step between a failed attempt and its retry


class Fault(Enum):
    LOST_REPLY = "the commit lands, then the client times out waiting for the reply"
    NOT_SENT = "the client times out before the commit reaches the store"


class SteppedClock:
    """The processor's clock: it moves only when a test (or a fault) steps it."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def step(self, ms: int) -> None:
        self.now_ms += ms


class FaultyCommits:
    """`inner` with faults at the commit: each commit takes the next of `faults` (none left: it
    works), and every fault steps `clock` by RETRY_GAP_MS, the time until the retry."""

    def __init__(self, inner: PartitionStore, clock: SteppedClock, faults: Iterable[Fault] = ()) -> None:
        self.inner, self.clock, self.faults = inner, clock, list(faults)
        self.landed_unanswered = 0

    async def load(
        self, buyers: Mapping[int, Sequence[str]], topics: Sequence[str]
    ) -> dict[int, PartitionSnapshot]:
        return await self.inner.load(buyers, topics)

    async def catch_up(self, snapshots: Iterable[PartitionSnapshot]) -> None:
        await self.inner.catch_up(snapshots)

    async def drain(self, partitions: Iterable[int]) -> int:
        return await self.inner.drain(partitions)

    async def landed(self, partition: int, commit_id: str) -> bool:
        return await self.inner.landed(partition, commit_id)

    async def commit(self, commits: Sequence[PartitionCommit]) -> set[int]:
        if not self.faults:
            return await self.inner.commit(commits)
        fault = self.faults.pop(0)
        self.clock.step(RETRY_GAP_MS)
        if fault is Fault.LOST_REPLY:
            moved = await self.inner.commit(commits)
            assert not moved, "a lost reply test needs a commit that lands"
            self.landed_unanswered += 1
        raise RedisTimeoutError("Timeout reading from socket")


def processor(
    store: PartitionStore, clock: SteppedClock, topics: Sequence[str], letters: list[DeadLetter]
) -> BatchProcessor:
    async def sink(batch: Sequence[DeadLetter]) -> None:
        letters.extend(batch)

    return BatchProcessor(
        store,
        PolicyBook(Settings()),
        EventDecoder(),  # future_tolerance: 300 s
        sink,
        WorkerMetrics.create(CollectorRegistry()),
        clock=clock,
        input_topics=topics,
    )


def counted(worker: BatchProcessor) -> dict[tuple[str, ...], float]:
    """Every non-zero sample of kefu_events_total and kefu_events_rejected_total, keyed by its
    name and label values in label-name order: (name, outcome, topic) and (name, reason)."""
    out: dict[tuple[str, ...], float] = {}
    for counter in (worker.metrics.events, worker.metrics.rejected):
        for family in counter.collect():
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.value:
                    out[(sample.name, *(v for _, v in sorted(sample.labels.items())))] = sample.value
    return out


def message(topic: str, partition: int, offset: int, buyer: str, ts: int, sender: str = "buyer") -> Record:
    event = {
        "event_id": f"{buyer}-{offset}",
        "type": "message",
        "shop_id": "s1",
        "buyer_id": buyer,
        "agent_id": "s1:a",
        "sender": sender,
        "ts": ts,
    }
    return Record(topic, partition, offset, f"s1:{buyer}".encode(), json.dumps(event).encode())
