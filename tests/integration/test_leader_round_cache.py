"""The leader's round keeps the closed days of unchanged agents (floor.py FloorCache): its
floors must equal a fresh full read at every step of simulated time, across a minute and a
business day boundary, a late event into an old cohort, and an agent going idle.

Writes go through the worker's own outbox path (outbox.from_writes, apply_agent.lua), so the
markers move exactly as they do in production. Redis db 13 (flushed first)."""

from __future__ import annotations

import asyncio
from typing import cast

from agents.core.clock import wall_clock_ms
from agents.core.policy import PolicyBook
from agents.core.projection import FIELD_NAMES
from agents.exposure.floor import FloorCache, FloorReader
from agents.store import keys, outbox
from agents.store.connect import connect
from agents.store.protocols import AgentStatusWrite, StatusChange
from agents.store.redis_store import RedisStore
from agents.store.scripts import run_scripts
from agents.store.writes import WriteSet
from config.calendar import MS_PER_DAY, MS_PER_HOUR
from config.settings import settings_from_yaml
from tests.integration.harness import Stack

SHOP = "s1"
AGENTS = ("s1:a", "s1:b", "s1:c")
DB = 13
SETTINGS = settings_from_yaml("shops:\n  s1:\n    alert_threshold_seconds: 10\n")


class World:
    """The worker's side: cohorts and waits applied through the outbox, one position a commit."""

    def __init__(self, store: RedisStore, policies: PolicyBook) -> None:
        self.store, self.policies, self.position = store, policies, 0

    async def cohort(self, agent: str, start_ms: int, now_ms: int, **fields: int) -> None:
        """A cohort of `agent` that started at `start_ms`, written at `now_ms` as writes.py does."""
        writes = WriteSet()
        self.count(writes, agent, start_ms, now_ms, **fields)
        await self._apply(writes)

    def count(self, writes: WriteSet, agent: str, start_ms: int, now_ms: int, **fields: int) -> None:
        """The cohort's counters into `writes` (cohort applies them)."""
        policy = self.policies(SHOP)
        day = policy.calendar.day(start_ms)
        expiry = policy.calendar.day_start_ms(day + policy.retention_days) + MS_PER_HOUR
        minute, second = start_ms // 60_000, start_ms // 1000 % 60
        for name, amount in fields.items():
            assert name in FIELD_NAMES
            writes.increment(keys.bucket_key(SHOP, agent, "d", day), name, amount, expiry)
            if start_ms >= now_ms - 3_900_000:
                writes.increment(keys.bucket_key(SHOP, agent, "m", minute), name, amount, now_ms + 7_500_000)
                key = keys.bucket_key(SHOP, agent, "s", minute)
                writes.increment(key, f"{name}:{second}", amount, now_ms + 3_900_000)
        writes.agents_seen[SHOP][agent] = now_ms

    async def wait(self, agent: str, buyer: str, start_ms: int | None, now_ms: int) -> None:
        writes = WriteSet()
        key = keys.waiting_key(SHOP, agent)
        writes.expire_at_ms[key] = now_ms + MS_PER_DAY
        if start_ms is None:
            writes.waits_remove[key].add(buyer)
        else:
            writes.waits_add[key][buyer] = start_ms
        writes.agents_seen[SHOP][agent] = now_ms
        await self._apply(writes)

    def entry(self, writes: WriteSet) -> outbox.Outbox:
        """`writes` as the worker's next outbox entry (partition 0)."""
        self.position += 1
        entry = outbox.from_writes(0, self.position, writes)
        assert entry is not None
        return entry

    async def _apply(self, writes: WriteSet) -> None:
        await run_scripts(self.store.client, outbox.apply_calls([self.entry(writes)]))


async def rounds(stack: Stack, ignore_changes: bool = False) -> list[str]:
    """Each step's differences between the cached round and a fresh full read ([] when equal)."""
    client = connect(stack.redis_url.rsplit("/", 1)[0] + f"/{DB}")
    await client.flushdb()
    store, policies = RedisStore(client), PolicyBook(SETTINGS)
    reader, world, cache = FloorReader(store, policies, store), World(store, policies), FloorCache()
    calendar = policies(SHOP).calendar  # near the wall clock: Redis expires the keys by it
    day_start = calendar.day_start_ms(calendar.day(wall_clock_ms()))
    now = day_start + MS_PER_DAY - 90_500  # 1.5 minutes before the business day ends
    for days_ago in range(1, 30, 3):
        for agent in AGENTS:
            await world.cohort(agent, now - days_ago * MS_PER_DAY, now, c=days_ago, r=1, fs=1_000)
    await world.cohort("s1:a", now - 200_000, now, c=1, r=1, fs=4_000)
    await world.cohort("s1:b", now - 3_590_000, now, c=2, i=1)  # leaves the 1h window in 10 s
    await world.wait("s1:c", "tb_1", now - 5_000, now)
    differences: list[str] = []
    steps = {
        0: "first round",
        1: "a second later",
        12: "s1:b's cohort left the 1h window",
        30: "a late event into an old cohort",
        31: "the round after it",
        61: "a minute boundary",
        95: "the next business day",
        96: "a second into it",
        400: "s1:a idle past 5m",
    }
    for second, what in steps.items():
        at = now + second * 1000
        if second == 30:
            token = cache.shops[SHOP].agents["s1:a"].token
            day_log = f"{keys.agent_tag(SHOP, 's1:a')}:dv"
            logged = cast(dict[bytes, bytes], await client.hgetall(day_log))
            await world.cohort("s1:a", now - 10 * MS_PER_DAY, at, c=5, r=5, y=990)
            await world.wait("s1:c", "tb_1", None, at)
            if ignore_changes:  # s1:a's markers and day log as before the event: a write the cache would miss
                partition, _, position = token.partition("=")
                await client.hset(keys.applied_key(keys.agent_tag(SHOP, "s1:a")), partition, position)
                await client.delete(day_log)
                for field, value in logged.items():
                    await client.hset(day_log, field, value)
        [(cached, histograms)] = await reader.leader_floors([SHOP], at, cache)
        fresh = await reader.floor(SHOP, at, with_sums=True)
        fresh_histograms = await store.histograms([(SHOP, row.agent) for row in fresh.agents])
        if cached != fresh:
            differences.append(f"{what}: floors differ")
        expected = {row.agent: counts for row, counts in zip(fresh.agents, fresh_histograms, strict=True)}
        if histograms != expected:
            differences.append(f"{what}: histograms differ")
    await client.flushdb()
    await client.aclose()
    return differences


def test_a_cached_round_equals_a_fresh_read_at_every_step(stack: Stack) -> None:
    assert asyncio.run(rounds(stack)) == []


def test_the_comparison_sees_a_cache_that_misses_a_change(stack: Stack) -> None:
    """The same steps, with s1:a's markers and day log put back after the late event (as if
    nothing had touched its old days): the kept closed days are stale, and the comparison says so."""
    assert "a late event into an old cohort: floors differ" in asyncio.run(rounds(stack, ignore_changes=True))


async def expiring_keys(stack: Stack) -> tuple[list[str], list[str]]:
    """An agent's histogram and status points whose keys expire with no write (their TTLs slide
    only with their own writes): each round's differences from a fresh read, before the expiry
    and after it. Near the wall clock: Redis expires by it."""
    client = connect(stack.redis_url.rsplit("/", 1)[0] + f"/{DB}")
    await client.flushdb()
    store, policies = RedisStore(client), PolicyBook(SETTINGS)
    reader, world, cache = FloorReader(store, policies, store), World(store, policies), FloorCache()
    now = wall_clock_ms()
    await world.cohort("s1:a", now - 60_000, now, c=1, r=1, fs=4_000)
    change = StatusChange("st-1", now - 30_000, "online", 0, 0)
    await store.status.apply_status(
        [AgentStatusWrite(SHOP, "s1:a", [change], now - MS_PER_DAY, MS_PER_DAY)], now
    )
    await client.hset(keys.histogram_key(SHOP, "s1:a"), mapping={"3": 2, "sum": 8_000})
    for key in (keys.histogram_key(SHOP, "s1:a"), keys.status_points_key(SHOP, "s1:a")):  # about to expire
        await client.pexpire(key, 3_000)

    async def differences(at: int) -> list[str]:
        [(cached, histograms)] = await reader.leader_floors([SHOP], at, cache)
        fresh = await reader.floor(SHOP, at, with_sums=True)
        counts = await store.histograms([(SHOP, row.agent) for row in fresh.agents])
        found = [] if cached == fresh else ["floors differ"]
        expected = {row.agent: c for row, c in zip(fresh.agents, counts, strict=True)}
        return found + ([] if histograms == expected else ["histograms differ"])

    # The first read, then the one after it (a first read is read once more): then kept.
    before = await differences(now) + await differences(now + 500)
    assert (await reader.floor(SHOP, now + 500)).agents[0].agent_status == "online"
    await asyncio.sleep(3.5)
    after = await differences(now + 3_500)
    assert (await reader.floor(SHOP, now + 3_500)).agents[0].agent_status == "unknown"
    await client.flushdb()
    await client.aclose()
    return before, after


def test_a_histogram_and_status_points_that_expire_untouched_leave_the_cache(stack: Stack) -> None:
    """A configured agent whose login feed stopped 94 days ago, or whose last first reply was 29
    days ago: their keys expire with no write, so no touch tells the leader. Its cached reads must
    end at the expiry (floor_reads.lua's valid_until), or /metrics keeps an agent online that
    /api/v1/floor shows as unknown until the business day ends."""
    assert asyncio.run(expiring_keys(stack)) == ([], [])
