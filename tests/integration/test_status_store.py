"""The StatusStore contract (agent status, v3) on real Redis: the same clauses as the in-memory
twin (tests/status_store_contract.py), each on a flushed database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import redis

from agents.store.connect import connect
from agents.store.protocols import StatusStore
from agents.store.redis_store import RedisStore
from tests.integration.harness import Stack
from tests.status_store_contract import CLAUSES, PAIR, T0, change, write

# Pinned by test_batch_path.py and test_exactly_once.py too, which never run beside this
# module (tests run one at a time); the fixture deployments cycle through others (conftest.py).
STATUS_DB = 11


@pytest.fixture
def url(stack: Stack) -> str:
    url = f"{stack.redis_url.rsplit('/', 1)[0]}/{STATUS_DB}"
    redis.Redis.from_url(url).flushdb()
    return url


async def _run(url: str, clause: Callable[[StatusStore], Awaitable[None]]) -> None:
    store = RedisStore(connect(url), offset_ttl_ms=86_400_000)
    try:
        await clause(store.status)
    finally:
        await store.close()


@pytest.mark.parametrize("clause", CLAUSES, ids=lambda c: c.__name__)
def test_redis_status_store(url: str, clause: Callable[[StatusStore], Awaitable[None]]) -> None:
    asyncio.run(_run(url, clause))


def test_every_key_has_a_ttl_and_the_agent_is_indexed(url: str) -> None:
    async def apply(store: StatusStore) -> None:
        await store.apply_status([write(change("e1", 0, "online", 1))], T0)
        await store.raise_offsets("c.agents", {2: 1})

    asyncio.run(_run(url, apply))
    client = redis.Redis.from_url(url)
    found = sorted(key.decode() for key in client.keys("*"))
    # points, ids, offset, the agent index with its change log (counter and log), the shop index
    assert len(found) == 7, found
    assert all(client.pttl(key) > 0 for key in found)
    assert client.zscore(f"kp:agents:{{{len(PAIR[0])}.{PAIR[0]}}}", PAIR[1]) == T0
