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
from redis.exceptions import WatchError

from agents.core.buyer import BuyerState
from agents.core.calendar import MS_PER_DAY
from agents.core.projection import FIELD_NAMES, WIDTH
from agents.core.windows import WINDOWS, BucketRead
from agents.store import keys
from agents.store.writes import INDEX_TTL_MS, WriteSet

OFFSET_TTL_MS = (28 + 1) * MS_PER_DAY

_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(BuyerState)


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
        self._window_script = client.register_script(
            resources.files("agents.store").joinpath("lua/window_sums.lua").read_text()
        )

    async def run_batch(
        self,
        offset_keys: Sequence[str],
        buyer_keys: Sequence[str],
        compute: Callable[[Snapshot], Awaitable[WriteSet]],
    ) -> WriteSet:
        """Load, compute, commit; raises CommitConflict if a partition moved meanwhile."""
        async with self.client.pipeline(transaction=True) as pipe:
            await pipe.watch(*offset_keys)
            raw_offsets = await pipe.mget(offset_keys) if offset_keys else []
            blobs = await pipe.mget(buyer_keys) if buyer_keys else []
            snapshot = Snapshot(
                {k: int(v) if v is not None else -1 for k, v in zip(offset_keys, raw_offsets, strict=True)},
                {k: decode_state(cast(bytes | None, b)) for k, b in zip(buyer_keys, blobs, strict=True)},
            )
            writes = await compute(snapshot)
            pipe.multi()
            _queue_writes(pipe, writes)
            try:
                await pipe.execute()
            except WatchError as exc:
                raise CommitConflict(str(offset_keys)) from exc
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

    async def ping(self) -> bool:
        return bool(await self.client.ping())


def _queue_writes(pipe: aioredis.client.Pipeline, writes: WriteSet) -> None:
    for key, blob in writes.buyer_states.items():
        pipe.set(key, blob, px=writes.buyer_ttl_ms[key])
    for key, fields in writes.increments.items():
        for name, amount in fields.items():
            pipe.hincrby(key, name, amount)
    for key, members in writes.waits_remove.items():
        if members:
            pipe.zrem(key, *members)
    for key, mapping in writes.waits_add.items():
        if mapping:
            pipe.zadd(key, mapping)
    for key, expire_ms in writes.expire_at_ms.items():
        pipe.pexpireat(key, expire_ms)
    for shop, agents in writes.agents_seen.items():
        index = keys.agents_index_key(shop)
        pipe.zadd(index, agents)
        pipe.pexpire(index, INDEX_TTL_MS)
        pipe.zadd(keys.SHOPS_INDEX_KEY, {shop: max(agents.values())})
    if writes.agents_seen:
        pipe.pexpire(keys.SHOPS_INDEX_KEY, INDEX_TTL_MS)
    for key, offset in writes.offsets.items():
        pipe.set(key, offset, px=OFFSET_TTL_MS)
