"""Events/s of the response pipeline (decode → core → Redis) with and without batching.

Runs the worker's own BatchProcessor against the local real Redis, on the same simulated
message events, once with one record per Redis transaction and once with batches of 2,000.
Prints one JSON line; speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from pathlib import Path

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from agents.core.policy import PolicyBook
from agents.exposure.metrics import WorkerMetrics
from agents.processing.batch import BatchProcessor
from agents.store.redis_store import RedisStore
from bench.stack import bench_stack_env
from config.settings import Settings
from streams.simulation.traffic import TrafficModel, TrafficShape
from streams.wire.decoding import EventDecoder
from streams.wire.records import Record

ROOT = Path(__file__).resolve().parents[1]


def redis_url() -> str:
    return bench_stack_env()["KEFU_REDIS_URL"].rsplit("/", 1)[0] + "/3"


def records(n: int) -> list[Record]:
    start = time.time_ns() // 1_000_000 - 2 * 3_600_000
    model = TrafficModel(TrafficShape(shops=3, agents=20, rate=500, duplicate_share=0, bad_share=0), seed=3)
    messages = (r for r in model.records(start) if r.kind == "messages")
    return [
        Record("kefu.messages", 0, i, r.key, r.value) for i, r in enumerate(itertools.islice(messages, n))
    ]


async def measure(url: str, batch: list[Record], size: int) -> float:
    client = aioredis.Redis.from_url(url)
    await client.flushdb()

    async def no_dead_letters(_: object) -> None:
        return None

    processor = BatchProcessor(
        RedisStore(client).batches,
        PolicyBook(Settings()),
        EventDecoder(),
        no_dead_letters,
        WorkerMetrics.create(CollectorRegistry()),
    )
    started = time.perf_counter()
    for i in range(0, len(batch), size):
        await processor.process(batch[i : i + size])
    elapsed = time.perf_counter() - started
    await client.aclose()
    return len(batch) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    url = redis_url()
    data = records(args.events)
    unbatched = await measure(url, data[: max(2000, args.events // 10)], 1)
    batched = await measure(url, data, 2000)
    print(
        json.dumps(
            {
                "events": args.events,
                "unbatched_events_per_s": round(unbatched),
                "batched_events_per_s": round(batched),
                "batching_gain": round(batched / unbatched, 1),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
