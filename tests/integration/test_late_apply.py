"""An outbox applied long after its commit, on real Redis (db 13): its worker was killed between
commit and apply, and the partition's next owner drains it later (or an outage held it). Its
writes carry the old batch's clock; another partition's newer writes to the same agent must
keep theirs. The waiting set was the one key with an absolute expiry from that clock: a late
share cut it short, or deleted it with every newer wait in it (found in review)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
import redis

from agents.store import keys
from agents.store.connect import connect
from agents.store.redis_store import RedisStore
from streams.wire.records import Record
from tests.integration.harness import Stack, empty_db
from tests.integration.redis_processor import redis_partitions, redis_processor

DB = 13
TOPICS = ("c.messages", "c.orders")
NOW = time.time_ns() // 1_000_000
HOUR = 3_600_000
WAIT_LIMIT = 24 * HOUR  # the defaults'
SHOP, AGENT = "s1", "s1:a"


@pytest.fixture
def url(stack: Stack) -> Iterator[str]:
    with empty_db(stack, DB) as url:
        yield url


def buyer_waits(buyer: str, partition: int, ts: int) -> Record:
    event = {
        "type": "message",
        "event_id": f"m.{buyer}",
        "shop_id": SHOP,
        "buyer_id": buyer,
        "agent_id": AGENT,
        "sender": "buyer",
        "ts": ts,
    }
    return Record(TOPICS[0], partition, 0, f"{SHOP}:{buyer}".encode(), json.dumps(event).encode())


async def late_apply(url: str, hours_late: int) -> tuple[int, str | None]:
    """b1 waits on partition 0, committed `hours_late` ago by a worker killed before applying
    it; b2 starts waiting now on partition 1; then the next owner of partition 0 drains it."""
    then = NOW - hours_late * HOUR
    killed = redis_processor(url, then, TOPICS)

    async def killed_before_apply(*_: object) -> None:
        raise ConnectionError("killed between commit and apply")

    redis_partitions(killed)._apply = killed_before_apply  # type: ignore[method-assign,assignment]
    with pytest.raises(ConnectionError):
        await killed.process([buyer_waits("b1", 0, then - 60_000)])
    await redis_partitions(killed).client.aclose()
    for worker_job in ("wait", "drain"):
        worker = redis_processor(url, NOW, TOPICS)
        if worker_job == "wait":
            await worker.process([buyer_waits("b2", 1, NOW - 60_000)])
        else:
            assert await worker.store.drain([0]) == 1
        await redis_partitions(worker).client.aclose()
    store = RedisStore(connect(url))
    try:
        [(count, _, oldest)] = await store.waiting([(SHOP, AGENT)], NOW - WAIT_LIMIT)
    finally:
        await store.close()
    return count, oldest


@pytest.mark.parametrize("hours_late", [3, 26])
def test_an_outbox_applied_late_keeps_the_newer_waits_of_other_partitions(url: str, hours_late: int) -> None:
    count, oldest = asyncio.run(late_apply(url, hours_late))
    # 26 h late, b1's wait is past the 24 h limit: b2 alone waits. 3 h late, both do.
    assert (count, oldest) == ((1, "b2") if hours_late > 24 else (2, "b1"))
    # b2's batch ran at NOW: its set stays for the wait limit and the hour after, from then (an
    # absolute time: the suite may run this test long after NOW was taken).
    expires_at = redis.Redis.from_url(url).pexpiretime(keys.waiting_key(SHOP, AGENT))
    assert expires_at == NOW + WAIT_LIMIT + HOUR
