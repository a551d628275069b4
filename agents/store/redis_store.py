"""Redis behind a small interface: load a batch's state, commit its effects atomically.

Exactly once: each (topic, partition) has an offset key, written in the same MULTI as
the state that its records produced. The batch WATCHes those offset keys, so if another
worker (after a rebalance) committed the partition meanwhile, EXEC fails and the batch
is recomputed from fresh state; records at or below a stored offset are never applied
again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import cast

import msgspec
import redis.asyncio as aioredis

from agents.core.buyer import BuyerState
from agents.core.calendar import MS_PER_DAY
from agents.core.projection import FIELD_NAMES, WIDTH
from agents.core.windows import WINDOWS, BucketRead
from agents.store import keys
from agents.store.writes import INDEX_TTL_MS, WriteSet

OFFSET_TTL_MS = (28 + 1) * MS_PER_DAY

_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(BuyerState)


def _lua(name: str) -> str:
    return resources.files("agents.store").joinpath(f"lua/{name}").read_text()


class CommitConflict(Exception):
    """Another worker committed one of the batch's partitions first."""


def encode_state(state: BuyerState) -> bytes:
    return _encoder.encode(state)


def decode_state(blob: bytes | None) -> BuyerState:
    return BuyerState() if blob is None else _state_decoder.decode(blob)


@dataclass(slots=True)
class Snapshot:
    offsets: dict[str, int]  # offset key -> last applied offset (-1 when none)
    states: dict[str, BuyerState]  # buyer key -> state


class RedisStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._window_script = client.register_script(_lua("window_sums.lua"))
        self._apply_script = client.register_script(_lua("apply_batch.lua"))

    async def run_batch(
        self,
        offset_keys: Sequence[str],
        buyer_keys: Sequence[str],
        compute: Callable[[Snapshot], Awaitable[WriteSet]],
    ) -> WriteSet:
        """Load, compute, commit in two round trips; CommitConflict if a partition moved meanwhile.

        The commit script compares each offset with the one the batch was computed from, so
        the check and the writes are one atomic step (no WATCH, no per-command overhead).
        """
        values = await self.client.mget([*offset_keys, *buyer_keys]) if offset_keys or buyer_keys else []
        offsets = {k: int(v) if v is not None else -1 for k, v in zip(offset_keys, values, strict=False)}
        blobs = values[len(offset_keys) :]
        snapshot = Snapshot(
            offsets,
            {k: decode_state(cast(bytes | None, b)) for k, b in zip(buyer_keys, blobs, strict=True)},
        )
        writes = await compute(snapshot)
        script_keys, script_args = _payload(writes, offsets)
        result = await self._apply_script(keys=script_keys, args=script_args)
        if int(result[0]) != 0:
            raise CommitConflict(str(result[1]))
        return writes

    async def window_sums(
        self, pairs: Sequence[tuple[str, str]], reads: Sequence[BucketRead]
    ) -> list[dict[str, list[int]]]:
        """For each (shop, agent): window name -> summed cohort vector."""
        async with self.client.pipeline(transaction=False) as pipe:
            for shop, agent in pairs:
                bucket_keys = [keys.bucket_key(shop, agent, r.kind, r.ident) for r in reads]
                args: list[int | str] = [WIDTH, *FIELD_NAMES]
                for read in reads:
                    args.extend((read.mask, read.lo, read.hi))
                await self._window_script(keys=bucket_keys, args=args, client=pipe)
            results = await pipe.execute()
        return [
            {name: [int(v) for v in flat[i * WIDTH : (i + 1) * WIDTH]] for i, name in enumerate(WINDOWS)}
            for flat in results
        ]

    async def waiting(
        self, pairs: Sequence[tuple[str, str]], oldest_allowed_ms: int
    ) -> list[tuple[int, int | None, str | None]]:
        """For each (shop, agent): (waiting buyers, oldest wait start ms, that buyer's id)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for shop, agent in pairs:
                key = keys.waiting_key(shop, agent)
                pipe.zcount(key, oldest_allowed_ms, "+inf")
                pipe.zrangebyscore(key, oldest_allowed_ms, "+inf", start=0, num=1, withscores=True)
            results = await pipe.execute()
        out: list[tuple[int, int | None, str | None]] = []
        for count, oldest in zip(results[0::2], results[1::2], strict=True):
            if oldest:
                member, score = oldest[0]
                out.append((int(count), int(score), cast(bytes, member).decode()))
            else:
                out.append((int(count), None, None))
        return out

    async def histograms(self, pairs: Sequence[tuple[str, str]]) -> list[dict[str, int]]:
        async with self.client.pipeline(transaction=False) as pipe:
            for shop, agent in pairs:
                pipe.hgetall(keys.histogram_key(shop, agent))
            results = await pipe.execute()
        return [{k.decode(): int(v) for k, v in r.items()} for r in results]

    async def shops(self, now_ms: int) -> list[str]:
        members = await self.client.zrangebyscore(keys.SHOPS_INDEX_KEY, now_ms - INDEX_TTL_MS, "+inf")
        return [cast(bytes, m).decode() for m in members]

    async def agents(self, shop: str, now_ms: int) -> list[str]:
        members = await self.client.zrangebyscore(keys.agents_index_key(shop), now_ms - INDEX_TTL_MS, "+inf")
        return [cast(bytes, m).decode() for m in members]

    async def prune_waits(self, pairs: Iterable[tuple[str, str]], oldest_allowed_ms: int) -> int:
        """Drop waits past the limit from the live queues (they stay unanswered)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for shop, agent in pairs:
                pipe.zremrangebyscore(keys.waiting_key(shop, agent), "-inf", f"({oldest_allowed_ms}")
            removed = await pipe.execute()
        return sum(int(r) for r in removed)

    async def firing_alerts(self) -> set[tuple[str, str, str]]:
        fields = await self.client.hkeys(keys.ALERTS_KEY)
        return {cast(tuple[str, str, str], tuple(cast(bytes, f).decode().split("\x1f", 2))) for f in fields}

    async def store_firing_alerts(self, firing: set[tuple[str, str, str]]) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(keys.ALERTS_KEY)
            if firing:
                pipe.hset(keys.ALERTS_KEY, mapping={"\x1f".join(k): 1 for k in firing})
                pipe.pexpire(keys.ALERTS_KEY, INDEX_TTL_MS)
            await pipe.execute()

    async def applied_offsets(self, topic_partitions: Sequence[tuple[str, int]]) -> list[int]:
        if not topic_partitions:
            return []
        values = await self.client.mget([keys.offset_key(t, p) for t, p in topic_partitions])
        return [int(v) if v is not None else -1 for v in values]

    async def ping(self) -> bool:
        return bool(await self.client.ping())


def _payload(writes: WriteSet, expected: dict[str, int]) -> tuple[list[str], list[bytes]]:
    """The batch as (KEYS, ARGV) for apply_batch.lua: a msgpack payload referring to keys by
    index, then the buyer blobs."""
    index: dict[str, int] = {}

    def ref(key: str) -> int:
        position = index.get(key)
        if position is None:
            position = index[key] = len(index) + 1  # Lua is 1-based
        return position

    checks = [[ref(k), n] for k, n in expected.items()]
    offsets = [[ref(k), n] for k, n in writes.offsets.items()]
    blobs = list(writes.buyer_states.values())
    states = [[ref(k), 2 + i, writes.buyer_ttl_ms[k]] for i, k in enumerate(writes.buyer_states)]
    counters = []
    for key, fields in writes.increments.items():
        entry: list[object] = [ref(key), writes.expire_at_ms[key]]
        for name, amount in fields.items():
            if amount:
                entry += [name, amount]
        if len(entry) > 2:
            counters.append(entry)
    waiting = []
    for key in writes.waits_add.keys() | writes.waits_remove.keys():
        added = [x for member, score in writes.waits_add.get(key, {}).items() for x in (score, member)]
        waiting.append([ref(key), writes.expire_at_ms[key], sorted(writes.waits_remove.get(key, ())), added])
    indexes = []
    for shop, agents in writes.agents_seen.items():
        indexes.append(
            [ref(keys.agents_index_key(shop)), INDEX_TTL_MS, *(x for a, t in agents.items() for x in (t, a))]
        )
        indexes.append([ref(keys.SHOPS_INDEX_KEY), INDEX_TTL_MS, max(agents.values()), shop])
    payload = _encoder.encode([checks, states, counters, waiting, indexes, offsets, OFFSET_TTL_MS])
    return list(index), [payload, *blobs]
