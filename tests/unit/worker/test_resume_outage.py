"""A Redis outage while partitions arrive is waited out, like every other outage.

The seek that resumes each partition from Redis used to raise the outage out of Faust's
recovery, which stops the worker. These drive the installed seek with a store that fails
on demand and a fake consumer, and never sleep for real.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import TopicPartition as TP
from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError

from agents.store.errors import StoreAccessError
from agents.worker import resume

PARTITIONS = [TP("in", 0), TP("in", 1)]
APPLIED = [9, 41]  # Redis's last applied offsets: the worker resumes at 10 and 42


class Consumer:
    """The consumer calls the seek policy makes; Kafka's committed offsets are far ahead."""

    def __init__(self) -> None:
        self.seeks: list[tuple[Any, int]] = []

    async def seek_to_committed(self) -> dict[Any, int]:
        return {tp: 500 for tp in PARTITIONS}

    def assignment(self) -> set[Any]:
        return set(PARTITIONS)

    async def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))


class Store:
    """Answers once `failures` is used up; each failure is the next exception in it."""

    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.batches = self
        self.calls = 0
        self.forgotten = False  # the buyer-state cache emptied (CachedPartitionStore.forget)

    async def applied_offsets(self, partitions: list[tuple[str, int]]) -> list[int]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return list(APPLIED)

    async def drain(self, partitions: set[int]) -> int:
        return 0

    def forget(self) -> None:
        self.forgotten = True


class Clock:
    """time.monotonic for the seek, moved on by each backoff sleep instead of waiting."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(resume.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(resume.asyncio, "sleep", fake.sleep)
    return fake


def install(store: Store, request_timeout_s: float = 90.0) -> tuple[Consumer, Counter]:
    consumer = Consumer()
    app = SimpleNamespace(consumer=consumer, conf=SimpleNamespace(broker_request_timeout=request_timeout_s))
    redis_errors = Counter("redis_errors", "Redis errors.", registry=CollectorRegistry())
    resume.resume_from_redis(app, store, {"in"}, redis_errors)  # type: ignore[arg-type]
    return consumer, redis_errors


def outage(n: int) -> list[BaseException]:
    return [RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")] * n


def test_an_outage_during_the_seek_is_waited_out_and_resumes_from_redis(clock: Clock) -> None:
    store = Store(outage(4))
    consumer, redis_errors = install(store)
    positions = asyncio.run(consumer.seek_to_committed())
    assert positions == {TP("in", 0): 10, TP("in", 1): 42}
    assert consumer.seeks == [(TP("in", 0), 10), (TP("in", 1), 42)]
    assert store.calls == 5 and redis_errors._value.get() == 4
    assert clock.slept == [0.1, 0.2, 0.4, 0.8]  # backoff, as the batch loop's
    assert not store.forgotten  # drain dropped the cached states of these partitions


def test_a_refused_login_during_the_seek_stops_the_worker(clock: Clock) -> None:
    store = Store([AuthenticationError("WRONGPASS invalid username-password pair")])
    consumer, redis_errors = install(store)
    with pytest.raises(StoreAccessError, match="refused the login"):
        asyncio.run(consumer.seek_to_committed())
    assert store.calls == 1 and redis_errors._value.get() == 0 and consumer.seeks == []


def test_an_outage_outlasting_fausts_seek_timeout_reads_from_the_beginning_not_from_kafka(
    clock: Clock,
) -> None:
    """Faust abandons the recovery once `broker_request_timeout` passes; Kafka's committed
    offsets can be ahead of Redis, so the safe position is the beginning of retention."""
    store = Store(outage(10_000))
    consumer, redis_errors = install(store, request_timeout_s=20.0)
    asyncio.run(consumer.seek_to_committed())
    assert consumer.seeks == [(TP("in", 0), 0), (TP("in", 1), 0)]
    assert sum(clock.slept) < 20.0 and redis_errors._value.get() == store.calls > 3
    assert store.forgotten  # no drain ran: nothing kept of these partitions is trusted
