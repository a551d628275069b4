"""The leader's kept reads (floor.py FloorCache) against writes that reach Redis out of the
order the worker sends them, and against a change log that is born again.

- On a Redis Cluster, the outbox's index touch (the shop's slot) and the agent's write (the
  agent's slot) run on two nodes at once; on one Redis, a NOSCRIPT re-run sends the agent's
  script a round trip after the touch. A round can therefore see a touch whose write has not
  landed yet, for an agent it has never read too.
- The change log's counter starts again at 1 when its keys are deleted (FLUSHALL, a rebuild
  under a running leader, a Redis that lost its data). Once new touches pass the count the
  leader knew, only the log's birth says that it restarted.
- The minute log (apply_agent.lua) names the whole minutes written since the leader's last read.
  A writer older than the log bumps the day log's number without naming its minute, and the log
  lets its oldest minutes go: either way the leader must read every minute again. So must it when
  the state is rebuilt under it: the same outbox replayed in bigger batches gives a log with the
  same first share and smaller numbers (found by an independent review).
- A round whose reads fail after it looked at the index (an outage) has spent the touches it
  saw: the next round must still read those agents (found by an independent review).

Each round is compared with a fresh full read. Redis db 13 (flushed first), as the other
leader-round tests.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agents.core.clock import wall_clock_ms
from agents.core.policy import PolicyBook
from agents.exposure.floor import FloorCache, FloorReader
from agents.store import keys, outbox
from agents.store.connect import connect
from agents.store.redis_store import RedisStore
from agents.store.scripts import run_scripts
from agents.store.writes import WriteSet
from config.calendar import MS_PER_DAY
from tests.integration.harness import Stack
from tests.integration.test_leader_round_cache import SETTINGS, SHOP, World

DB = 13


async def _setup(stack: Stack) -> tuple[RedisStore, FloorReader, World, FloorCache, int]:
    client = connect(stack.redis_url.rsplit("/", 1)[0] + f"/{DB}")
    await client.flushdb()
    store, policies = RedisStore(client), PolicyBook(SETTINGS)
    calendar = policies(SHOP).calendar  # near the wall clock: Redis expires the keys by it
    now = calendar.day_start_ms(calendar.day(wall_clock_ms())) + MS_PER_DAY // 2
    return store, FloorReader(store, policies, store), World(store, policies), FloorCache(), now


async def _difference(reader: FloorReader, cache: FloorCache, at: int) -> bool:
    [(cached, _)] = await reader.leader_floors([SHOP], at, cache)
    return cached != await reader.floor(SHOP, at, with_sums=True)


async def _stale_seconds(
    store: RedisStore, reader: FloorReader, cache: FloorCache, now: int, seconds: tuple[int, ...] = (2, 3, 10)
) -> list[int]:
    """The `seconds` after `now` at which the kept floor differed; then the db is flushed and the
    client closed (the end of each scenario)."""
    stale = [s for s in seconds if await _difference(reader, cache, now + s * 1000)]
    await store.client.flushdb()
    await store.client.aclose()
    return stale


async def touch_before_write(stack: Stack) -> list[int]:
    """A new agent's first wait: its index touch runs, a round reads, then its write lands.
    The seconds at which the kept floor differed from a fresh read, from the second after."""
    store, reader, world, cache, now = await _setup(stack)
    await world.wait("s1:a", "tb_1", now - 3_000, now)
    await _difference(reader, cache, now)
    writes = WriteSet()
    key = keys.waiting_key(SHOP, "s1:b")
    writes.expire_at_ms[key] = now + MS_PER_DAY
    writes.waits_add[key]["tb_2"] = now
    writes.agents_seen[SHOP]["s1:b"] = now
    entry = outbox.from_writes(0, 99, writes)
    assert entry is not None
    agent_call, index_calls = outbox.apply_calls([entry])[0], outbox.apply_calls([entry])[1:]
    await run_scripts(store.client, index_calls)  # the touch lands first
    await _difference(reader, cache, now + 1_000)  # a round in between: s1:b read, still empty
    await run_scripts(store.client, [agent_call])
    return await _stale_seconds(store, reader, cache, now, (2, 3, 10, 20))


def test_a_touch_that_lands_before_its_write_is_read_again(stack: Stack) -> None:
    # Before the fix, the new agent's empty first read held until the day's end.
    assert asyncio.run(touch_before_write(stack)) == []


async def log_born_again(stack: Stack) -> list[int]:
    """Rounds, then the index and its change log deleted (an agent's wait with them), then more
    touches than the leader had counted. The seconds at which the kept floor differed."""
    store, reader, world, cache, now = await _setup(stack)
    for n in range(6):
        await world.wait("s1:a", f"tb_{n}", now - 3_000, now)
    for second in (0, 1):  # the second round settles the first one's suspects (first reads)
        await _difference(reader, cache, now + second * 1000)
    index = keys.agents_index_key(SHOP)
    await store.client.delete(index, f"{index}:chg", f"{index}:ver", keys.waiting_key(SHOP, "s1:a"))
    # a's wait is gone and a is touched again, at count 1 of the new log; then b, past the count
    # the leader knew (6): a log read from 6 on would miss a.
    await world.cohort("s1:a", now - 1_000, now + 1_500, c=1)
    for _ in range(10):
        await world.cohort("s1:b", now - 1_000, now + 1_500, c=1)
    return await _stale_seconds(store, reader, cache, now)


def test_a_change_log_born_again_is_read_whole(stack: Stack) -> None:
    assert asyncio.run(log_born_again(stack)) == []


async def minute_log_edges(stack: Stack) -> list[str]:
    """An agent's whole minutes read by the leader while the minute log changes under it: what
    each read of floor_reads.lua returned (whole or changed minutes) where it was not what the
    log calls for, and the rounds whose kept floor differed from a fresh read."""
    store, reader, world, cache, now = await _setup(stack)
    client, agent = store.client, "s1:a"
    tag = keys.agent_tag(SHOP, agent)
    old_minute = (now - 20 * 60_000) // 60_000
    await world.cohort(agent, old_minute * 60_000 + 5_000, now, c=1, r=1, fs=3_000)
    problems: list[str] = []
    at = now

    async def round_reads(expected: str, minutes: set[int] | None = None) -> None:
        nonlocal at
        at += 1_000
        held = (
            cache.shops[SHOP].held(agent)
            if SHOP in cache.shops and agent in cache.shops[SHOP].agents
            else None
        )
        if held is not None:
            [read] = await store.floor_reads(
                [(SHOP, agent)], reader._leader_plan(reader.policies(SHOP), at, {}), [""], [held]
            )
            got = "whole" if read.whole_minutes else "changes"
            if got != expected or (minutes is not None and set(read.minutes) != minutes):
                problems.append(f"{expected}: read {got} {sorted(read.minutes)}")
        if await _difference(reader, cache, at):
            problems.append(f"{expected}: the kept floor differs")

    await round_reads("first")  # the first read: every minute
    await round_reads("changes", set())  # touched then (a first read is read again): nothing since
    await world.cohort(agent, old_minute * 60_000 + 9_000, at + 500, c=1)  # a late event, 20 min back
    await round_reads("changes", {old_minute})
    # A writer older than the minute log: the day log's number moves, the minute is not named.
    await client.hincrby(f"{tag}:dv", "#", 1)
    await client.hincrby(keys.bucket_key(SHOP, agent, "m", old_minute), "c", 1)
    await world.cohort(agent, at - 500, at + 500, c=1)  # a touch, so that the round reads it
    await round_reads("whole")
    await round_reads("changes", set())
    # The log let minutes go that were written after the leader's read.
    number = int(await client.hget(f"{tag}:dv", "#") or 0)
    await client.hset(f"{tag}:dv", "m<", number + 1)
    await client.hincrby(keys.bucket_key(SHOP, agent, "m", old_minute), "c", 1)
    await world.cohort(agent, at - 500, at + 500, c=1)
    await round_reads("whole")
    await client.flushdb()
    await client.aclose()
    return problems


def test_the_minute_log_names_what_changed_and_sends_the_leader_back_to_a_whole_read(stack: Stack) -> None:
    assert asyncio.run(minute_log_edges(stack)) == []


async def rebuilt_under_the_leader(stack: Stack) -> list[int]:
    """Three live writes and two rounds; the state deleted and the same outbox entries replayed
    in one call (a rebuild); then a live write into a whole minute of both rolling windows. The
    seconds at which the kept floor differed from a fresh read."""
    store, reader, world, cache, now = await _setup(stack)
    entries = []
    for n in range(3):
        writes = WriteSet()
        world.count(writes, "s1:a", now - 10 * 60_000 + n * 1_000, now, c=1)
        entries.append(world.entry(writes))
        await run_scripts(store.client, outbox.apply_calls(entries[-1:]))
    for second in (0, 1):
        await _difference(reader, cache, now + second * 1000)
    await store.client.flushdb()
    await run_scripts(store.client, outbox.apply_calls(entries))
    await world.cohort("s1:a", now - 4 * 60_000, now + 1_500, c=7)
    return await _stale_seconds(store, reader, cache, now)


def test_a_state_rebuilt_under_the_leader_is_read_whole(stack: Stack) -> None:
    assert asyncio.run(rebuilt_under_the_leader(stack)) == []


async def round_failing_after_its_look(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, where: str
) -> list[int]:
    """Rounds, then a wait ends and a cohort lands; the next round looks at the index (the touch
    is spent) and fails: its reads (an outage), or before them, planning them (a bug). The
    seconds at which the kept floor differed after."""
    store, reader, world, cache, now = await _setup(stack)
    await world.wait("s1:a", "tb_1", now - 3_000, now)
    await world.cohort("s1:b", now - 1_000, now, c=1)
    for second in (0, 1):  # the second round settles the first one's suspects (first reads)
        await _difference(reader, cache, now + second * 1000)
    await world.wait("s1:a", "tb_1", None, now + 1_200)
    await world.cohort("s1:b", now + 1_100, now + 1_200, c=1, r=1)
    with monkeypatch.context() as failing:
        if where == "reads":

            async def outage(*args: Any, **kwargs: Any) -> Any:
                raise ConnectionError("Redis went away")

            failing.setattr(store, "floor_reads", outage)
        else:

            def bug(*args: Any, **kwargs: Any) -> Any:
                raise ConnectionError("a bug planning the reads")

            failing.setattr(reader, "_leader_plan", bug)
        with pytest.raises(ConnectionError):
            await reader.leader_floors([SHOP], now + 1_500, cache)
    return await _stale_seconds(store, reader, cache, now)


@pytest.mark.parametrize("where", ["reads", "planning"])
def test_a_round_that_fails_after_its_look_reads_the_touched_agents_next_time(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    # Before the fix, s1:a kept its ended wait and s1:b its old counts until their reads expired.
    assert asyncio.run(round_failing_after_its_look(stack, monkeypatch, where)) == []
