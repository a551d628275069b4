"""The PartitionStore protocol in process: the same offset fence as Redis, no outbox.

A commit here is atomic for the whole partition, agents included, so there is nothing to
catch up or drain. The agents' counters and waiting sets are plain dictionaries, for tests
to read. States are stored encoded, as in Redis, so a loaded state is always a fresh copy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from agents.store.protocols import PartitionCommit, PartitionSnapshot
from agents.store.state_codec import decode_state


class MemoryPartitionStore:
    def __init__(self) -> None:
        self.offsets: dict[tuple[str, int], int] = {}  # (topic, partition) -> last applied
        self.buyer_states: dict[str, bytes] = {}
        self.counters: dict[str, dict[str, int]] = defaultdict(dict)  # key -> field -> total
        self.waiting: dict[str, dict[str, int]] = defaultdict(dict)  # key -> buyer -> wait start

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

    def _write(self, commit: PartitionCommit) -> None:
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
