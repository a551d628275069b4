"""A burst of commands on one client waits for connections instead of failing.

redis-py 6+ caps a server's pool at 100 connections and raised MaxConnectionsError past it:
notify, claiming a flood of 5,000 alerts on a loaded machine, died of it (fresh-clone runs).
"""

from __future__ import annotations

import asyncio

from agents.store.connect import POOL_CONNECTIONS, connect
from tests.integration.harness import Stack


def test_more_commands_at_once_than_the_pool_has_connections_all_complete(stack: Stack) -> None:
    url = f"{stack.redis_url.rsplit('/', 1)[0]}/0"
    burst = POOL_CONNECTIONS + 50

    async def run() -> list[object]:
        client = connect(url)
        try:
            # Each BLPOP holds its connection for 0.3 s: the burst needs more than the pool has.
            return await asyncio.gather(*(client.blpop([f"kp:test:pool:{n}"], 0.3) for n in range(burst)))
        finally:
            await client.aclose()

    assert asyncio.run(run()) == [None] * burst
