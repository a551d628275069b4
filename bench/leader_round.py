"""What one leader round costs: 10 agents in 1 shop (the baseline) and 10,000 agents in 1,000
shops, in one run, on the local real Redis. Prints one JSON line.

The state is written as the worker writes it (agents/store/writes.py: same keys, fields and
expiry): every agent has day buckets for the 28 days, minute and second buckets in the last
hour, a few waiting buyers, a first-response histogram and its outbox markers; the shops and
agents indexes hold them all. A round is `Leader.lead` with a sink that keeps the alert events
(what one tick of agents/worker/duties.py does on the leader), timed as a median of ROUNDS
rounds one second apart in simulated time; `read_snapshot` alone, and the `/metrics` text
of the round's snapshot, are timed beside it. One 10k round runs under cProfile.

Run: `.venv/bin/python -m bench.leader_round` (`--agents 10000 --shops 1000` are the default).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio as aioredis

from agents.core.alerts import AlertEvent
from agents.core.projection import DAY_HISTOGRAM_FIELDS, SHOP_LEVEL
from agents.core.windows import FINE_RETENTION_MS, MINUTE_RETENTION_MS, WINDOW_DAYS
from agents.exposure.floor import FloorReader
from agents.exposure.floor_exposition import floor_exposition
from agents.store import keys
from agents.store.redis_store import RedisStore
from agents.store.writes import INDEX_TTL_MS
from agents.worker.runtime import Runtime
from bench.report import day_fields
from bench.stack import stack_env
from config.calendar import MS_PER_HOUR
from config.settings import settings_from_yaml

ROUNDS = 7
DB = 13  # the benchmark stack's dbs 3-7 belong to the other benchmarks
ACTIVE_MINUTES = 12  # minutes of the last hour with cohorts, per agent
PROFILE_ENTRIES = 12
_SHOP_FIELDS = {"n": 500, "sn": 40, "sy": 900_000}


def agents_of(shop: str, per_shop: int) -> list[str]:
    return [f"{shop}:a{i:03d}" for i in range(per_shop)]


async def write_agent(
    pipe: aioredis.client.Pipeline, rnd: random.Random, runtime: Runtime, shop: str, agent: str, now_ms: int
) -> None:
    """One agent's buckets, waits, histogram and markers, with the worker's expiries."""
    policy = runtime.policies(shop)
    today = policy.calendar.day(now_ms)
    for day in range(today - WINDOW_DAYS + 1, today + 1):
        key = keys.bucket_key(shop, agent, "d", day)
        fields = _SHOP_FIELDS if agent == SHOP_LEVEL else day_fields(rnd)
        pipe.hset(key, mapping=dict(fields))  # type: ignore[arg-type]
        pipe.pexpireat(key, policy.calendar.day_start_ms(day + policy.retention_days) + MS_PER_HOUR)
    now_minute = now_ms // 60_000
    for minute in rnd.sample(range(now_minute - 64, now_minute + 1), ACTIVE_MINUTES):
        minute_fields: dict[str, int] = {}
        second_fields: dict[str, int] = {}
        for second in rnd.sample(range(60), rnd.randint(1, 3)):
            if minute * 60_000 + second * 1000 > now_ms:
                continue
            for name in ("c", "r", "fs", "i", "w0") if agent != SHOP_LEVEL else ("n",):
                amount = rnd.randint(1, 20_000) if name == "fs" else 1
                minute_fields[name] = minute_fields.get(name, 0) + amount
                second_fields[f"{name}:{second}"] = amount
        if not minute_fields:
            continue
        minute_end = (minute + 1) * 60_000
        minute_key, second_key = (
            keys.bucket_key(shop, agent, "m", minute),
            keys.bucket_key(shop, agent, "s", minute),
        )
        pipe.hset(minute_key, mapping=minute_fields)  # type: ignore[arg-type]
        pipe.pexpireat(minute_key, minute_end + MINUTE_RETENTION_MS)
        pipe.hset(second_key, mapping=second_fields)  # type: ignore[arg-type]
        pipe.pexpireat(second_key, minute_end + FINE_RETENTION_MS)
    if agent == SHOP_LEVEL:
        return
    waits = {f"tb_{agent}_{i}": now_ms - rnd.randint(0, 20_000) for i in range(rnd.randint(0, 3))}
    if waits:
        pipe.zadd(keys.waiting_key(shop, agent), waits)
        pipe.pexpireat(keys.waiting_key(shop, agent), now_ms + policy.wait_limit_ms + MS_PER_HOUR)
    histogram = {str(b): rnd.randint(0, 50) for b in range(len(DAY_HISTOGRAM_FIELDS))} | {"sum": 10_000_000}
    pipe.hset(keys.histogram_key(shop, agent), mapping=histogram)  # type: ignore[arg-type]
    pipe.pexpire(keys.histogram_key(shop, agent), INDEX_TTL_MS)
    markers = keys.applied_key(keys.agent_tag(shop, agent))
    pipe.hset(markers, mapping={str(p): rnd.randint(1, 10**9) for p in range(3)})


async def write_state(
    client: aioredis.Redis, runtime: Runtime, shops: int, per_shop: int, now_ms: int
) -> None:
    rnd = random.Random(28)
    for s in range(shops):
        shop = f"s{s:04d}"
        agents = agents_of(shop, per_shop)
        async with client.pipeline(transaction=False) as pipe:
            for agent in [*agents, SHOP_LEVEL]:
                await write_agent(pipe, rnd, runtime, shop, agent, now_ms)
            pipe.zadd(
                keys.agents_index_key(shop),
                {a: now_ms - rnd.randint(0, 600_000) for a in [*agents, SHOP_LEVEL]},
            )
            pipe.zadd(keys.SHOPS_INDEX_KEY, {shop: now_ms})
            await pipe.execute()


def new_runtime(client: aioredis.Redis, sent: list[AlertEvent]) -> Runtime:
    async def sink(events: Sequence[AlertEvent]) -> None:
        sent.extend(events)

    settings = settings_from_yaml("processing:\n  max_shops: 5000\n")
    runtime = Runtime.create(settings, sink, sink)  # type: ignore[arg-type]
    asyncio.get_running_loop().create_task(runtime.store.close())  # its default client is never used
    store = RedisStore(client)
    runtime.store = store
    runtime.reader = FloorReader(store, runtime.policies, store)
    return runtime


async def median_ms(action: Callable[[int], Awaitable[object]], start_ms: int, rounds: int = ROUNDS) -> float:
    times = []
    for n in range(rounds):
        started = time.perf_counter()
        await action(start_ms + n * 1000)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def top_entries(profile: cProfile.Profile) -> list[str]:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(PROFILE_ENTRIES)
    lines = [line.strip() for line in out.getvalue().splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("ncalls"))
    return [" ".join(line.split()) for line in lines[start + 1 :] if line][:PROFILE_ENTRIES]


async def measure(client: aioredis.Redis, shops: int, per_shop: int, profile: bool) -> dict[str, object]:
    await client.flushdb()
    now_ms = time.time_ns() // 1_000_000
    sent: list[AlertEvent] = []
    runtime = new_runtime(client, sent)
    started = time.perf_counter()
    await write_state(client, runtime, shops, per_shop, now_ms)
    written_s = time.perf_counter() - started
    leader = runtime.leader
    await leader.lead(now_ms)  # the first round: the leader's epoch, and whatever it keeps
    agents = sum(len(f.agents) for f in runtime.collector.snapshot.floors)
    assert agents >= shops * per_shop, f"the round saw {agents} agents"
    figures: dict[str, object] = {
        "lead_round_ms": await median_ms(leader.lead, now_ms + 1000),
        "read_snapshot_ms": await median_ms(leader.read_snapshot, now_ms + 1000 + ROUNDS * 1000),
        "exposition_ms": await median_ms(
            lambda _: asyncio.to_thread(floor_exposition, runtime.collector.snapshot), now_ms, rounds=3
        ),
        "state_written_s": round(written_s, 1),
        "alert_events": len(sent),
    }
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await leader.lead(now_ms + 1000 + 2 * ROUNDS * 1000)
        profiler.disable()
        figures["profile"] = top_entries(profiler)
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--shops", type=int, default=1_000)
    args = parser.parse_args()
    url = (
        stack_env(os.environ.get("KEFU_BENCH_STACK", "bench"))["KEFU_REDIS_URL"].rsplit("/", 1)[0] + f"/{DB}"
    )
    client = aioredis.Redis.from_url(url)
    small = await measure(client, 1, 10, profile=False)
    large = await measure(client, args.shops, args.agents // args.shops, profile=True)
    await client.flushdb()
    await client.aclose()
    print(json.dumps(lead_round_figures(small, large, args.agents)))


def lead_round_figures(small: dict[str, object], large: dict[str, object], agents: int) -> dict[str, object]:
    at_10, at_n = float(small["lead_round_ms"]), float(large["lead_round_ms"])  # type: ignore[arg-type]
    suffix = "10k" if agents == 10_000 else str(agents)
    return {
        "lead_round_ms_at_10_agents": at_10,
        f"lead_round_ms_at_{suffix}_agents": at_n,
        "ratio": round(at_n / at_10, 1),
        f"read_snapshot_ms_at_{suffix}_agents": large["read_snapshot_ms"],
        f"metrics_text_ms_at_{suffix}_agents": large["exposition_ms"],
        "metrics_text_ms_at_10_agents": small["exposition_ms"],
        "state_written_s": large["state_written_s"],
        "profile": large.get("profile", []),
    }


if __name__ == "__main__":
    asyncio.run(main())
