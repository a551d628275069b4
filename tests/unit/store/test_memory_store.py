"""The in-memory PartitionStore keeps the same contract as Redis (tests/partition_store_contract.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from agents.store.memory import MemoryPartitionStore
from agents.store.protocols import PartitionStore
from tests.partition_store_contract import CLAUSES


@pytest.mark.parametrize("clause", CLAUSES, ids=[c.__name__ for c in CLAUSES])
def test_the_memory_store_keeps_the_contract(clause: Callable[[PartitionStore], Awaitable[None]]) -> None:
    asyncio.run(clause(MemoryPartitionStore()))
