"""The StatusStore contract on the in-memory twin (the same clauses run on Redis in
tests/integration/test_status_store.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from redis.crc import key_slot

from agents.store import keys
from agents.store.memory import MemoryStatusStore
from agents.store.protocols import StatusStore
from tests.status_store_contract import CLAUSES


@pytest.mark.parametrize("clause", CLAUSES, ids=lambda c: c.__name__)
def test_memory_status_store(clause: Callable[[StatusStore], Awaitable[None]]) -> None:
    asyncio.run(clause(MemoryStatusStore()))


@pytest.mark.parametrize(("shop", "agent"), [("s1", "s1:a"), ("x{y}", "a}b"), ("s{", "{")])
def test_an_agents_status_keys_share_one_slot_for_any_ids(shop: str, agent: str) -> None:
    """apply_status.lua writes both keys in one call: on a Redis Cluster they must share a slot,
    and the agent's other keys' slot (whatever braces the ids hold)."""
    slots = {
        key_slot(key.encode())
        for key in (
            keys.status_points_key(shop, agent),
            keys.status_ids_key(shop, agent),
            keys.waiting_key(shop, agent),
        )
    }
    assert len(slots) == 1
