"""Owned partitions' buyer states kept in process between batches, in front of any PartitionStore.

Redis stays the truth, and the fence stays as it is. What the cache saves is reading and
decoding the states of buyers this worker wrote itself; it can never serve a state that the
store no longer holds, because of three rules:

1. **A partition's states are valid only at the offsets they were committed at.** Every load
   still reads the partition's offsets (the same atomic MGET, minus the cached buyers). If
   they differ from the cached generation's, someone else applied records there (a rebalance
   took the partition away and gave it back, or a stale worker raced this one): the whole
   generation is dropped and the partition is loaded again, states included.
2. **States are taken out while a batch uses them, and put back only by a commit that
   landed.** The processor folds loaded states in place, so a conflict, an error or a lost
   reply would leave folded states that the store never took: they are gone with the attempt,
   and the next load reads the store. A partition whose records were all applied already
   (nothing folded, nothing committed) gets its generation back unchanged.
3. **An entry expires before its key does.** A state is cached with the TTL its commit gave
   the key, counted from before the commit was sent, so the store never expires a key the
   cache still serves.

Newly assigned partitions (`drain`) start empty, and the cache is bounded: past `max_buyers`
states, the least recently committed go first. `max_buyers = 0` turns it off.

A state is kept as the bytes its commit wrote, byte for byte what the store holds, and decoded
(a few µs) when a batch takes it. Kept as objects, 50,000 states were about a million objects
for the garbage collector to walk: a full collection every few seconds, 170–380 ms each, all of
it a pause of the worker's event loop, and the largest part of its p99 visibility. Bytes are
not tracked by the collector at all.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from agents.store.protocols import PartitionCommit, PartitionSnapshot, PartitionStore
from agents.store.state_codec import decode_state

# Monotonic seconds; tests step their own.
Monotonic = Callable[[], float]


@dataclass(slots=True)
class CacheStats:
    """Cumulative figures, read by the worker's /metrics at scrape time (no cost per batch)."""

    hits: int = 0  # buyer states served from the cache
    misses: int = 0  # buyer states read from the store
    dropped: int = 0  # generations dropped because the partition's offsets had moved
    evicted: int = 0  # states dropped to stay within max_buyers
    buyers: int = 0  # states held now


@dataclass(slots=True)
class _Generation:
    """One partition's cached states, valid at exactly `offsets`."""

    offsets: dict[str, int]
    # buyer key -> (the state as committed, monotonic second it expires at); least recently
    # committed first.
    states: OrderedDict[str, tuple[bytes, float]] = field(default_factory=OrderedDict)

    def matches(self, offsets: Mapping[str, int]) -> bool:
        return all(self.offsets.get(topic, -1) == offset for topic, offset in offsets.items())


class CachedPartitionStore:
    """The PartitionStore protocol: `inner`, with owned partitions' buyer states kept in process."""

    def __init__(self, inner: PartitionStore, max_buyers: int, monotonic: Monotonic = time.monotonic) -> None:
        self.inner = inner
        self.max_buyers = max_buyers
        self.monotonic = monotonic
        self.stats = CacheStats()
        self._generations: dict[int, _Generation] = {}  # partition -> its cached states
        # Taken out by the last load, until its commit: each partition's generation.
        self._taken: dict[int, _Generation | None] = {}

    async def load(
        self, buyers: Mapping[int, Sequence[str]], topics: Sequence[str]
    ) -> dict[int, PartitionSnapshot]:
        if not self.max_buyers:
            return await self.inner.load(buyers, topics)
        now = self.monotonic()
        self._taken = {}  # a new attempt: whatever the last one took and did not commit is void
        taken: dict[int, _Generation | None] = {}
        wanted: dict[int, list[str]] = {}
        for partition, partition_buyers in buyers.items():
            generation = self._generations.pop(partition, None)
            taken[partition] = generation
            wanted[partition] = [key for key in partition_buyers if not _holds(generation, key, now)]
        snapshots = await self.inner.load(wanted, topics)
        moved = {
            partition: buyers[partition]
            for partition, generation in taken.items()
            if generation is not None and not generation.matches(snapshots[partition].offsets)
        }
        if moved:
            self.stats.dropped += len(moved)
            withheld = {p: b for p, b in moved.items() if len(b) != len(wanted[p])}
            if withheld:
                snapshots.update(await self.inner.load(withheld, topics))
            taken.update(dict.fromkeys(moved))
        for partition, snapshot in snapshots.items():
            generation = taken[partition]
            if generation is None:
                self.stats.misses += len(snapshot.states)
            else:
                self.stats.misses += len(wanted[partition])
                for key in buyers[partition]:
                    if key not in snapshot.states:
                        snapshot.states[key] = decode_state(generation.states[key][0])
                        self.stats.hits += 1
            self._taken[partition] = generation
        self._count()
        return snapshots

    async def catch_up(self, snapshots: Iterable[PartitionSnapshot]) -> None:
        await self.inner.catch_up(snapshots)

    async def commit(self, commits: Sequence[PartitionCommit]) -> set[int]:
        if not self.max_buyers:
            return await self.inner.commit(commits)
        sent_at = self.monotonic()
        committed = {commit.partition: commit for commit in commits}
        try:
            moved = await self.inner.commit(commits)
        except BaseException:
            self._taken = {p: t for p, t in self._taken.items() if p not in committed}
            raise
        for partition, generation in list(self._taken.items()):
            commit = committed.get(partition)
            if partition in moved:
                continue
            if commit is None:
                if generation is not None:  # nothing was folded: it is as it was
                    self._generations[partition] = generation
            else:
                self._generations[partition] = _committed(generation, commit, sent_at)
        self._taken = {}
        self._evict()
        self._count()
        return moved

    async def landed(self, partition: int, commit_id: str) -> bool:
        return await self.inner.landed(partition, commit_id)

    async def drain(self, partitions: Iterable[int]) -> int:
        """Newly assigned partitions: whatever this worker knew of them is from an older
        ownership, so it is dropped here (rule 1 would drop it too, one load later)."""
        wanted = set(partitions)
        for partition in wanted:
            self._generations.pop(partition, None)
            self._taken.pop(partition, None)
        self._count()
        return await self.inner.drain(wanted)

    def forget(self) -> None:
        """Drop everything (a worker that lost all its partitions)."""
        self._generations.clear()
        self._taken.clear()
        self._count()

    def _evict(self) -> None:
        excess = sum(len(g.states) for g in self._generations.values()) - self.max_buyers
        while excess > 0:
            for generation in self._generations.values():
                if excess <= 0:
                    break
                if generation.states:
                    generation.states.popitem(last=False)
                    excess -= 1
                    self.stats.evicted += 1

    def _count(self) -> None:
        self.stats.buyers = sum(len(g.states) for g in self._generations.values())


def _holds(generation: _Generation | None, key: str, now: float) -> bool:
    if generation is None:
        return False
    entry = generation.states.get(key)
    if entry is None:
        return False
    if entry[1] <= now:
        del generation.states[key]
        return False
    return True


def _committed(generation: _Generation | None, commit: PartitionCommit, sent_at: float) -> _Generation:
    """The partition's generation after its commit landed: at the commit's offsets, with the
    states it wrote, which expire with their keys."""
    after = generation if generation is not None else _Generation(dict(commit.offsets))
    after.offsets = dict(commit.offsets)
    ttls = commit.writes.buyer_ttl_ms
    for key, blob in commit.writes.buyer_states.items():
        after.states.pop(key, None)  # to the end: the most recently committed
        after.states[key] = (blob, sent_at + ttls[key] / 1000)
    return after
