"""The leader's kept floors at scale: 1,000 agents in 100 shops, each with 28 days, an hour of
minutes and seconds, waits, histograms and the day and minute logs, written as a worker writes
them (bench/leader_round.py's state). Between rounds a share of the agents is churned through
the outbox (cohorts now and, for a few, 20 minutes back; waits started and ended); the rounds
run a second apart and then across a minute boundary, where the windows' whole minutes move.
Every shop's kept floor must equal a fresh full read at every round, every agent of it.

The other leader-round tests compare a handful of agents step by step; this one compares the
minute log and the kept sums across a thousand. Redis db 13 (flushed first), as they do.
"""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from agents.exposure.floor import FloorCache
from bench.leader_round import CHURN_SHARE, Churn, new_runtime, write_state
from tests.integration.harness import Stack

DB = 13
SHOPS, PER_SHOP = 100, 10
SECONDS = (0, 1, 2, 3, 61, 62)  # after the state is written; 61 crosses a minute boundary
LATE_SHARE, LATE_MS = 0.05, 20 * 60_000  # agents a round also gets a cohort 20 minutes back


async def rounds(stack: Stack) -> tuple[int, list[str]]:
    """(agents compared per round, each round's differences between the kept and fresh floors)."""
    client = aioredis.Redis.from_url(stack.redis_url.rsplit("/", 1)[0] + f"/{DB}")
    await client.flushdb()
    now = time.time_ns() // 1_000_000  # near the wall clock: Redis expires the keys by it
    runtime = new_runtime(client, [])
    await write_state(client, runtime, SHOPS, PER_SHOP, now)
    reader, cache = runtime.reader, FloorCache()
    churn = Churn(client, runtime, SHOPS, PER_SHOP)
    shops = [f"s{s:04d}" for s in range(SHOPS)]
    differences: list[str] = []
    compared = 0
    for second in SECONDS:
        at = now + second * 1000
        if second:
            await churn.write(CHURN_SHARE, at - 1)
            await churn.write(LATE_SHARE, at - LATE_MS)  # late events into a whole minute
        compared = 0
        for kept, _ in await reader.leader_floors(shops, at, cache):
            fresh = await reader.floor(kept.shop, at, with_sums=True)
            compared += len(fresh.agents)
            if kept != fresh:
                differences.append(f"second {second}: {kept.shop} differs")
    await client.flushdb()
    await client.aclose()
    return compared, differences


def test_kept_floors_of_a_thousand_agents_equal_a_fresh_read(stack: Stack) -> None:
    compared, differences = asyncio.run(rounds(stack))
    assert compared == SHOPS * PER_SHOP
    assert differences == []
