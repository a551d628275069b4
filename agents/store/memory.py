"""The PartitionStore, DetailsStore and StatusStore protocols in process: the same offset fence
as Redis, no outbox.

A commit here is atomic for the whole partition, agents included, so there is nothing to
catch up or drain. The agents' counters, waiting sets and drill-down rows are plain
dictionaries, for tests to read (no expiry: tests read what was written). States are stored
encoded, as in Redis, so a loaded state is always a fresh copy.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence

from agents.core.status import ChangePoint
from agents.store.protocols import (
    COMMIT_LOG_LENGTH,
    AgentPairs,
    AgentStatusWrite,
    PartitionCommit,
    PartitionSnapshot,
)
from agents.store.state_codec import decode_state


class MemoryPartitionStore:
    def __init__(self) -> None:
        self.offsets: dict[tuple[str, int], int] = {}  # (topic, partition) -> last applied
        self.buyer_states: dict[str, bytes] = {}
        self.counters: dict[str, dict[str, int]] = defaultdict(dict)  # key -> field -> total
        self.waiting: dict[str, dict[str, int]] = defaultdict(dict)  # key -> buyer -> wait start
        self.rows: dict[str, dict[str, bytes]] = {}  # details key -> field -> row (details.py)
        self.commit_logs: dict[int, deque[str]] = {}  # partition -> its last commits' ids

    async def load(
        self, buyers: Mapping[int, Sequence[str]], topics: Sequence[str]
    ) -> dict[int, PartitionSnapshot]:
        return {
            partition: PartitionSnapshot(
                partition,
                {topic: self.offsets.get((topic, partition), -1) for topic in topics},
                {key: decode_state(self.buyer_states.get(key)) for key in keys},
            )
            for partition, keys in buyers.items()
        }

    async def catch_up(self, snapshots: Iterable[PartitionSnapshot]) -> None:
        return None

    async def drain(self, partitions: Iterable[int]) -> int:
        return 0

    async def commit(self, commits: Sequence[PartitionCommit]) -> set[int]:
        moved: set[int] = set()
        for commit in commits:
            fence = {topic: self.offsets.get((topic, commit.partition), -1) for topic in commit.expected}
            if fence != commit.expected:
                moved.add(commit.partition)
            else:
                self._write(commit)
        return moved

    async def landed(self, partition: int, commit_id: str) -> bool:
        return commit_id in self.commit_logs.get(partition, ())

    def _write(self, commit: PartitionCommit) -> None:
        if commit.commit_id:
            log = self.commit_logs.setdefault(commit.partition, deque(maxlen=COMMIT_LOG_LENGTH))
            log.appendleft(commit.commit_id)
        for topic, offset in commit.offsets.items():
            self.offsets[(topic, commit.partition)] = offset
        writes = commit.writes
        self.buyer_states.update(writes.buyer_states)
        for key, fields in writes.increments.items():
            totals = self.counters[key]
            for name, amount in fields.items():
                totals[name] = totals.get(name, 0) + amount
        for key, buyers in writes.waits_remove.items():
            for buyer in buyers:
                self.waiting[key].pop(buyer, None)
        for key, added in writes.waits_add.items():
            self.waiting[key].update(added)
        for key, changes in writes.details.items():
            rows = self.rows.setdefault(key, {})
            for name, row in changes.items():
                if row is None:
                    rows.pop(name, None)
                else:
                    rows[name] = row
            if not rows:  # as Redis: a hash whose last field is deleted is gone
                del self.rows[key]

    async def details(self, keys: Sequence[str]) -> list[dict[str, bytes]]:
        return [dict(self.rows.get(key, {})) for key in keys]


class MemoryStatusStore:
    """The StatusStore protocol in process, with the Redis script's rules (apply_status.lua):
    one point per event id, ties in Kafka order, history before `kept_from_ms` cut to its newest."""

    def __init__(self) -> None:
        self.offsets: dict[tuple[str, int], int] = {}
        # (shop, agent) -> event id -> (ts, offset, status, record)
        self.points: dict[tuple[str, str], dict[str, tuple[int, int, str, str]]] = defaultdict(dict)
        self.seen: dict[tuple[str, str], int] = {}  # the agent index: (shop, agent) -> last seen
        # (topic, partition) -> its last raises, newest first: (raise id, offset found)
        self.raises: dict[tuple[str, int], deque[tuple[str, int]]] = {}

    async def applied_offsets(self, topic_partitions: Sequence[tuple[str, int]]) -> list[int]:
        return [self.offsets.get(tp, -1) for tp in topic_partitions]

    async def apply_status(self, writes: Sequence[AgentStatusWrite], seen_ms: int) -> list[list[str]]:
        return [self._apply(write, seen_ms) for write in writes]

    def _apply(self, write: AgentStatusWrite, seen_ms: int) -> list[str]:
        kept = self.points[(write.shop, write.agent)]
        self.seen[(write.shop, write.agent)] = seen_ms
        outcomes = []
        for change in write.changes:
            record = f"{change.partition}:{change.offset}"
            found = kept.get(change.event_id)
            if found is None:
                kept[change.event_id] = (change.ts, change.offset, change.status, record)
            outcomes.append("applied" if found is None or found[3] == record else "duplicate")
        old = sorted(
            (ts, offset, event_id) for event_id, (ts, offset, _, _) in kept.items() if ts < write.kept_from_ms
        )
        for _, _, event_id in old[:-1]:
            del kept[event_id]
        return [
            "late" if outcome == "applied" and change.event_id not in kept else outcome
            for change, outcome in zip(write.changes, outcomes, strict=True)
        ]

    async def raise_offsets(
        self, topic: str, offsets: Mapping[int, int], raise_id: str = ""
    ) -> dict[int, int]:
        found = {}
        for partition, offset in offsets.items():
            current = found[partition] = self.offsets.get((topic, partition), -1)
            if offset > current:
                self.offsets[(topic, partition)] = offset
                if raise_id:
                    log = self.raises.setdefault((topic, partition), deque(maxlen=COMMIT_LOG_LENGTH))
                    log.appendleft((raise_id, current))
        return found

    async def raised(self, topic: str, partition: int, raise_id: str) -> int | None:
        return next((f for i, f in self.raises.get((topic, partition), ()) if i == raise_id), None)

    async def status_points(self, pairs: AgentPairs, since_ms: int) -> list[list[ChangePoint]]:
        out = []
        for pair in pairs:
            ordered = sorted(
                (ts, offset, status) for ts, offset, status, _ in self.points.get(pair, {}).values()
            )
            before = [p for p in ordered if p[0] < since_ms][-1:]
            out.append(
                [
                    ChangePoint(ts, status)
                    for ts, _, status in (*before, *(p for p in ordered if p[0] >= since_ms))
                ]
            )
        return out
