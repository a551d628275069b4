"""Agent status on Redis (kefu.agents): change points per agent, and the topic's applied offsets.

Exactly once without a fence (docs/redis-layout.md, "Agent status"): each event is a member of
its agent's sorted set, named by its event id, so applying it again is a no-op; a partition's
offset is raised only after every agent's script has returned, and never lowered. A crash
before the raise re-reads the records, whose effects are already there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import cast

from agents.core.status import ChangePoint
from agents.store import keys
from agents.store.connect import RedisClient
from agents.store.outbox import TOUCH_INDEX
from agents.store.protocols import AgentPairs, AgentStatusWrite, StatusChange
from agents.store.scripts import Lua, ScriptCall, run_scripts
from agents.store.writes import HISTORY_INDEX_TTL_MS

APPLY_STATUS = Lua("apply_status.lua")
RAISE_OFFSET = Lua("raise_offset.lua")
OFFSET_DIGITS = 20  # a Kafka offset is below 2**63: 19 digits; ties at one ms sort by it
READ_PIPELINE_AGENTS = 50  # as the floor's other reads (redis_store.READ_PIPELINE_CALLS)


def point_member(change: StatusChange) -> str:
    """The sorted-set member of a change: unique per event id, in Kafka order among equal times."""
    return f"{change.offset:0{OFFSET_DIGITS}d}|{change.status}|{change.event_id}"


def parse_member(member: bytes, score: float) -> ChangePoint:
    _, status, _ = member.decode().split("|", 2)
    return ChangePoint(int(score), status)


class RedisStatusStore:
    """The StatusStore protocol on Redis (one server or a cluster)."""

    def __init__(self, client: RedisClient, offset_ttl_ms: int) -> None:
        self.client = client
        self.offset_ttl_ms = offset_ttl_ms

    async def applied_offsets(self, topic_partitions: Sequence[tuple[str, int]]) -> list[int]:
        if not topic_partitions:
            return []
        async with self.client.pipeline(transaction=False) as pipe:  # one key each: any node
            for topic, partition in topic_partitions:
                pipe.get(keys.offset_key(topic, partition))
            values = await pipe.execute()
        return [-1 if value is None else int(value) for value in values]

    async def apply_status(self, writes: Sequence[AgentStatusWrite], seen_ms: int) -> list[list[str]]:
        calls = [_apply_call(write) for write in writes]
        seen: dict[str, dict[str, int]] = defaultdict(dict)
        for write in writes:
            seen[keys.agents_index_key(write.shop)][write.agent] = seen_ms
            seen[keys.SHOPS_INDEX_KEY][write.shop] = seen_ms
        # Who a floor and a report list: an agent with only a login feed is an agent too.
        calls += [
            ScriptCall(
                TOUCH_INDEX, [key], [HISTORY_INDEX_TTL_MS, *(x for m, t in members.items() for x in (t, m))]
            )
            for key, members in seen.items()
        ]
        results = await run_scripts(self.client, calls)
        return [[cast(bytes, o).decode() for o in outcomes] for outcomes in results[: len(writes)]]

    async def raise_offsets(
        self, topic: str, offsets: Mapping[int, int], raise_id: str = ""
    ) -> dict[int, int]:
        partitions = sorted(offsets)
        found = await run_scripts(
            self.client,
            [
                ScriptCall(
                    RAISE_OFFSET,
                    [keys.offset_key(topic, p), keys.raise_log_key(topic, p)],
                    [offsets[p], self.offset_ttl_ms, raise_id],
                )
                for p in partitions
            ],
        )
        return {p: int(f) for p, f in zip(partitions, found, strict=True)}

    async def raised(self, topic: str, partition: int, raise_id: str) -> int | None:
        mark = f"{raise_id}|".encode()
        for entry in cast(list[bytes], await self.client.lrange(keys.raise_log_key(topic, partition), 0, -1)):
            if entry.startswith(mark):
                return int(entry[len(mark) :])
        return None

    async def status_points(self, pairs: AgentPairs, since_ms: int) -> list[list[ChangePoint]]:
        out: list[list[ChangePoint]] = []
        for start in range(0, len(pairs), READ_PIPELINE_AGENTS):
            async with self.client.pipeline(transaction=False) as pipe:
                for shop, agent in pairs[start : start + READ_PIPELINE_AGENTS]:
                    key = keys.status_points_key(shop, agent)
                    # The newest point before `since_ms` (the last of equal times: the highest member).
                    pipe.zrevrangebyscore(key, f"({since_ms}", "-inf", start=0, num=1, withscores=True)
                    pipe.zrangebyscore(key, since_ms, "+inf", withscores=True)
                rows = await pipe.execute()
            for before, after in zip(rows[0::2], rows[1::2], strict=True):
                out.append([parse_member(m, s) for m, s in (*before, *after)])
        return out


def _apply_call(write: AgentStatusWrite) -> ScriptCall:
    args: list[int | str] = [write.kept_from_ms, write.ttl_ms]
    for change in write.changes:
        args.extend((change.ts, point_member(change), f"{change.partition}:{change.offset}"))
    return ScriptCall(
        APPLY_STATUS,
        [keys.status_points_key(write.shop, write.agent), keys.status_ids_key(write.shop, write.agent)],
        args,
    )
