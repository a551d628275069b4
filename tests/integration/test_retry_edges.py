"""The retry edges on real Redis: the worker's own BatchProcessor and
RedisPartitionStore, with a store wrapper that makes a commit land and then time out (a lost
reply) or time out before it is sent, and a clock stepped 10 s between attempts.

Redis db 13 (flushed before each test)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from agents.core.policy import PolicyBook
from agents.exposure.floor import FloorReader
from agents.store.connect import connect
from agents.store.redis_store import RedisStore
from config.settings import Settings
from streams.wire.deadletter import DeadLetter
from streams.wire.records import Record
from tests.integration.harness import Stack
from tests.kafka_records import simulated
from tests.retry_faults import Fault, FaultyCommits, SteppedClock, counted, message, processor

DB = 13
TOPICS = ("c.messages", "c.orders")
MESSAGES = TOPICS[0]
NOW = time.time_ns() // 1_000_000
RECORDS = [*simulated(3000, NOW, 6, TOPICS), Record(MESSAGES, 0, 50_000, b"s1:tb_x", b"{not json")]


@pytest.fixture
def url(stack: Stack) -> Iterator[str]:
    url = f"{stack.redis_url.rsplit('/', 1)[0]}/{DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    yield url


async def run(url: str, records: list[Record], faults: list[Fault]) -> dict[str, Any]:
    """`records` as one batch through process_until_done on Redis; what it counted and left."""
    clock, letters = SteppedClock(NOW), list[DeadLetter]()
    store = RedisStore(connect(url))
    faulty = FaultyCommits(store.batches, clock, faults)
    worker = processor(faulty, clock, TOPICS, letters)
    try:
        report = await worker.process_until_done(records)
        reader = FloorReader(store, PolicyBook(Settings()))
        floors = {shop: await reader.floor(shop, NOW) for shop in await reader.shops(NOW)}
    finally:
        await store.client.aclose()
    assert not faulty.faults, "every fault was met"
    return {
        "report": (report.outcomes, report.rejected, report.skipped_already_applied),
        "counted": counted(worker),
        "redis_errors": worker.metrics.redis_errors._value.get(),
        "letters": [(letter.offset, letter.reason) for letter in letters],
        "floors": {shop: (f.agents, f.totals) for shop, f in floors.items()},
    }


def flushed(url: str) -> None:
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def test_a_commit_whose_reply_is_lost_is_counted_exactly_once(url: str) -> None:
    reference = asyncio.run(run(url, RECORDS, []))
    flushed(url)
    assert reference["counted"][("kefu_events_total", "applied", MESSAGES)] > 2000
    assert reference["counted"][("kefu_events_rejected_total", "invalid_json")] >= 1
    lost = asyncio.run(run(url, RECORDS, [Fault.LOST_REPLY]))
    assert lost["redis_errors"] == 1
    assert lost["counted"] == reference["counted"]
    assert lost["report"] == reference["report"]
    assert lost["letters"] == reference["letters"], "what landed is not dead-lettered again"
    assert lost["floors"] == reference["floors"]


def test_two_lost_replies_in_a_row_count_the_landed_commit_once(url: str) -> None:
    reference = asyncio.run(run(url, RECORDS, []))
    flushed(url)
    lost = asyncio.run(run(url, RECORDS, [Fault.LOST_REPLY, Fault.LOST_REPLY]))
    assert lost["redis_errors"] == 2 and lost["counted"] == reference["counted"]
    assert lost["floors"] == reference["floors"]


def test_a_retry_after_a_clock_step_of_10_s_keeps_every_verdict(url: str) -> None:
    """A `future_ts` record 305 s ahead, dead-lettered by the first attempt whose commit never
    reached Redis; the retry runs 10 s later, when the record would be within tolerance."""
    future = message(MESSAGES, 0, 0, "tb_future", NOW + 305_000)
    batch = [future, *(message(MESSAGES, 0, i, f"tb_{i}", NOW - 60_000 + i) for i in range(1, 40))]
    retried = asyncio.run(run(url, batch, [Fault.NOT_SENT]))
    assert retried["redis_errors"] == 1
    assert retried["counted"] == {
        ("kefu_events_total", "applied", MESSAGES): 39,
        ("kefu_events_total", "rejected", MESSAGES): 1,
        ("kefu_events_rejected_total", "future_ts"): 1,
    }
    assert set(retried["letters"]) == {(0, "future_ts")}
    _, totals = retried["floors"]["s1"]
    assert totals.windows["28d"].consultations == 39, "the rejected record was applied as well"
