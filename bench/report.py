"""What reports cost: the time of a 31-day report of 200 agents, and Redis memory per agent for
93 days of history. Prints one JSON line; the floor of the same 200 agents, read in the same run
from the same Redis, is the baseline.

The history is written as the worker writes it (same keys, fields and expiry): every agent busy
every day, so every counter and histogram field is present. Run: `.venv/bin/python -m bench.report`.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from agents.core.policy import PolicyBook
from agents.core.projection import DAY_HISTOGRAM_FIELDS, FIELD_NAMES
from agents.core.report_range import DayRange
from agents.exposure.floor import FloorReader
from agents.exposure.report import ReportReader
from agents.store import keys
from agents.store.redis_store import RedisStore
from bench.response_batching import redis_url
from config.calendar import MS_PER_HOUR
from config.settings import settings_from_yaml
from streams.render.output import encode_report

AGENTS, HISTORY_DAYS, REPORT_DAYS = 200, 93, 31
SHOP = "s1"


def day_fields(rnd: random.Random) -> dict[str, int]:
    consultations = rnd.randint(80, 400)
    replied = consultations - rnd.randint(0, 5)
    fields = {name: rnd.randint(1, replied) for name in FIELD_NAMES}
    fields |= {"c": consultations, "r": replied, "fs": replied * rnd.randint(3_000, 30_000)}
    fields |= {"y": rnd.randint(100_000, 5_000_000), "ws": rnd.randint(1_000_000, 9_000_000)}
    fields |= {name: rnd.randint(0, replied // 4) for name in DAY_HISTOGRAM_FIELDS}
    return fields


async def write_history(client: aioredis.Redis, reader: ReportReader, now_ms: int) -> None:
    rnd = random.Random(7)
    policy = reader.policies(SHOP)
    today = policy.calendar.day(now_ms)
    agents = [f"{SHOP}:agent{i:03d}" for i in range(AGENTS)]
    async with client.pipeline(transaction=False) as pipe:
        for agent in agents:
            for day in range(today - HISTORY_DAYS + 1, today + 1):
                key = keys.bucket_key(SHOP, agent, "d", day)
                pipe.hset(key, mapping=dict(day_fields(rnd)))  # type: ignore[arg-type]
                pipe.pexpireat(key, policy.calendar.day_start_ms(day + policy.retention_days) + MS_PER_HOUR)
            pipe.zadd(keys.agents_index_key(SHOP), {agent: now_ms})
        for day in range(today - HISTORY_DAYS + 1, today + 1):
            pipe.hset(keys.bucket_key(SHOP, "", "d", day), mapping={"n": 500, "sn": 40, "sy": 900_000})
        pipe.zadd(keys.SHOPS_INDEX_KEY, {SHOP: now_ms})
        await pipe.execute()


async def median_ms(action: Callable[[], Awaitable[object]], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await action()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


async def main() -> None:
    client = aioredis.Redis.from_url(redis_url().rsplit("/", 1)[0] + "/4")
    await client.flushdb()
    policies = PolicyBook(settings_from_yaml(""))
    store = RedisStore(client)
    reader, floors = ReportReader(store, policies), FloorReader(store, policies)
    now_ms = time.time_ns() // 1_000_000
    before = int((await client.info("memory"))["used_memory"])
    await write_history(client, reader, now_ms)
    after = int((await client.info("memory"))["used_memory"])
    today = policies(SHOP).calendar.day(now_ms)
    month = DayRange(today - REPORT_DAYS, today - 1)
    report = await reader.report(SHOP, month, now_ms)
    assert len(report.agents) == AGENTS and report.totals.metrics.consultations > 0
    sample_key = keys.bucket_key(SHOP, f"{SHOP}:agent000", "d", today)
    floor_ms = await median_ms(lambda: floors.floor(SHOP, now_ms))
    report_ms = await median_ms(lambda: reader.report(SHOP, month, now_ms))
    figures: dict[str, object] = {
        "agents": AGENTS,
        "report_days": REPORT_DAYS,
        "floor_read_ms": floor_ms,
        "report_read_ms": report_ms,
    }
    for fmt in ("json", "csv", "xlsx", "html"):

        async def render(fmt: str = fmt) -> bytes:
            return encode_report(report, fmt, by_day=fmt != "html")

        figures[f"report_{fmt}_ms"] = await median_ms(render, runs=3 if fmt == "html" else 5)
    figures["report_over_floor"] = round(report_ms / floor_ms, 2)
    figures["history_days"] = HISTORY_DAYS
    figures["redis_bytes_per_agent"] = round((after - before) / AGENTS)
    figures["day_bucket_bytes"] = await client.memory_usage(sample_key)
    await client.flushdb()
    await client.aclose()
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
