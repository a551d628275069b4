"""Every counter through every bucket kind: each field name written into a day, a minute and a
second bucket comes back, exactly, from every script that reads that kind of bucket.

A reader that parses field names with a narrower pattern than the writers use drops a field
without a trace (`w0..w3` once vanished from every partial minute of `5m` and `1h`). Real
Redis, db 13: the scripts are the thing under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import msgspec
import pytest
import redis

from agents.core.projection import DAY_FIELDS, FIELD_NAMES
from agents.core.trend import TREND_FIELDS, TREND_POINTS, hour_before_minutes, second_bucket_minutes
from agents.core.windows import WINDOWS, BucketRead
from agents.store import keys
from agents.store.connect import connect
from agents.store.redis_store import DAY_VECTORS, TREND_SUMS, WINDOW_SUMS, RedisStore
from agents.store.scripts import ScriptCall, run_scripts
from tests.integration.harness import Stack

DB = 13
SHOP, AGENT = "s1", "s1:a"
# Names no counter has yet, but any name must parse: a `:` of its own, digits, punctuation, UTF-8.
EXTRA_NAMES = ("x:y", "k_1-2", "量")
NAMES = tuple(dict.fromkeys((*FIELD_NAMES, *DAY_FIELDS, *EXTRA_NAMES)))
NOW_S = 1_764_000_030  # 30 s into a minute
DAY = 20_417
SECOND_MINUTE = second_bucket_minutes(NOW_S)[-2]  # the minute before NOW_S's
HOUR_BEFORE_MINUTE = hour_before_minutes(NOW_S)[0]
SECOND = 17  # read: window_sums asks for seconds 10..20 of SECOND_MINUTE
OTHER_SECOND = 45  # outside those: window_sums must skip it, trend_sums counts it
OTHER_FACTOR = 7


def amount(name: str) -> int:
    """A different count per field, so a value read under the wrong name shows."""
    return 1_000 + NAMES.index(name)


def bucket(kind: str, ident: int) -> str:
    return keys.bucket_key(SHOP, AGENT, kind, ident)


def write_buckets(client: redis.Redis) -> None:
    client.flushdb()
    for name in NAMES:
        n = amount(name)
        client.hset(bucket("d", DAY), name, n)
        client.hset(bucket("m", HOUR_BEFORE_MINUTE), name, n)
        client.hset(bucket("s", SECOND_MINUTE), f"{name}:{SECOND}", n)
        client.hset(bucket("s", SECOND_MINUTE), f"{name}:{OTHER_SECOND}", OTHER_FACTOR * n)


def by_name(names: tuple[str, ...], values: list[int]) -> dict[str, int]:
    return dict(zip(names, values, strict=True))


async def script_reads(url: str) -> dict[str, dict[str, int]]:
    """Each reading script, called with every name, as reader -> name -> count read."""
    width = len(NAMES)
    calls = {
        "window_sums/day": ScriptCall(WINDOW_SUMS, [bucket("d", DAY)], [1, width, *NAMES, 1, -1, -1]),
        "window_sums/minute": ScriptCall(
            WINDOW_SUMS, [bucket("m", HOUR_BEFORE_MINUTE)], [1, width, *NAMES, 1, -1, -1]
        ),
        "window_sums/second": ScriptCall(
            WINDOW_SUMS, [bucket("s", SECOND_MINUTE)], [1, width, *NAMES, 1, SECOND - 7, SECOND + 3]
        ),
        "day_vectors/day": ScriptCall(DAY_VECTORS, [bucket("d", DAY)], list(NAMES)),
        "trend_sums/second": ScriptCall(
            TREND_SUMS, [bucket("s", SECOND_MINUTE)], [NOW_S, 1, SECOND_MINUTE, *NAMES]
        ),
        "trend_sums/minute": ScriptCall(TREND_SUMS, [bucket("m", HOUR_BEFORE_MINUTE)], [NOW_S, 0, *NAMES]),
    }
    client = connect(url)
    try:
        results = dict(zip(calls, await run_scripts(client, list(calls.values())), strict=True))
    finally:
        await client.aclose()
    out = {reader: by_name(NAMES, results[reader]) for reader in calls if reader.startswith("window_sums")}
    out["day_vectors/day"] = by_name(NAMES, msgspec.msgpack.decode(results["day_vectors/day"]))
    for reader in ("trend_sums/second", "trend_sums/minute"):
        points = msgspec.msgpack.decode(results[reader])
        last_hour = [sum(points[p * width + i] for p in range(TREND_POINTS)) for i in range(width)]
        hour_before = points[TREND_POINTS * width :]
        out[reader] = by_name(NAMES, last_hour if reader.endswith("second") else hour_before)
    return out


async def store_reads(url: str) -> dict[str, dict[str, int]]:
    """The store's own reads, with the field lists production uses."""
    store = RedisStore(connect(url))
    pairs = [(SHOP, AGENT)]
    bit = {name: 1 << i for i, name in enumerate(WINDOWS)}
    reads = [
        BucketRead("s", SECOND_MINUTE, bit["5m"], SECOND - 7, SECOND + 3),
        BucketRead("m", HOUR_BEFORE_MINUTE, bit["1h"]),
        BucketRead("d", DAY, bit["today"]),
    ]
    try:
        [windows] = await store.window_sums(pairs, reads)
        [[day]] = await store.day_vectors(pairs, [DAY])
        [points] = await store.trend_vectors(pairs, NOW_S)
    finally:
        await store.close()
    last_hour = [sum(point[i] for point in points[:TREND_POINTS]) for i in range(len(TREND_FIELDS))]
    return {
        "store.window_sums/second": by_name(FIELD_NAMES, windows["5m"]),
        "store.window_sums/minute": by_name(FIELD_NAMES, windows["1h"]),
        "store.window_sums/day": by_name(FIELD_NAMES, windows["today"]),
        "store.day_vectors/day": by_name(DAY_FIELDS, day),
        "store.trend_vectors/second": by_name(TREND_FIELDS, last_hour),
        "store.trend_vectors/minute": by_name(TREND_FIELDS, points[TREND_POINTS]),
    }


@pytest.fixture(scope="module")
def reads(stack: Stack) -> Iterator[dict[str, dict[str, int]]]:
    """Every reader's counts, read once for all the names."""
    url = f"{stack.redis_url.rsplit('/', 1)[0]}/{DB}"
    client = redis.Redis.from_url(url)
    write_buckets(client)

    async def both() -> dict[str, dict[str, int]]:
        return await script_reads(url) | await store_reads(url)

    try:
        yield asyncio.run(both())
    finally:
        client.flushdb()
        client.close()


def expected(reader: str, name: str) -> int:
    """What `reader` must read of `name`: second buckets hold it at SECOND and OTHER_SECOND."""
    if reader.endswith("trend_sums/second") or reader.endswith("trend_vectors/second"):
        return (1 + OTHER_FACTOR) * amount(name)
    return amount(name)


@pytest.mark.parametrize("name", NAMES)
def test_every_reader_of_a_bucket_kind_reads_the_field(name: str, reads: dict[str, dict[str, int]]) -> None:
    readers = [reader for reader, fields in reads.items() if name in fields]
    got = {reader: reads[reader][name] for reader in readers}
    assert got == {reader: expected(reader, name) for reader in readers}
