"""The buyer-state cache (agents/store/state_cache.py) in front of the in-memory store.

Every test compares what the store holds with a run without a cache (`reference`): the cache
may only save reads, never change a byte. The same cache runs against real Redis in the
worker (Runtime.create), through the whole-path simulation and the fault tests.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest

from agents.processing.batch import BatchProcessor
from agents.store.memory import MemoryPartitionStore
from agents.store.protocols import PartitionCommit, PartitionSnapshot
from agents.store.state_cache import CachedPartitionStore
from streams.wire.records import Record
from tests.retry_faults import Fault, FaultyCommits, SteppedClock
from tests.unit.store.test_processor_on_memory import NOW, RECORDS, TOPICS, batches, contents, processor

BATCH = 97


class SteppedMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cached(
    inner: Any, max_buyers: int = 100_000, monotonic: SteppedMonotonic | None = None
) -> CachedPartitionStore:
    return CachedPartitionStore(inner, max_buyers, monotonic or SteppedMonotonic())


def run(worker: BatchProcessor, records: Sequence[Record], size: int = BATCH) -> None:
    for batch in batches(records, size):
        asyncio.run(worker.process(batch))


@pytest.fixture(scope="module")
def reference() -> tuple[Any, ...]:
    """Every record applied by one worker without a cache, in the same batches."""
    store = MemoryPartitionStore()
    run(processor(store), RECORDS)
    return contents(store)


def test_the_cache_serves_most_states_and_changes_nothing(reference: tuple[Any, ...]) -> None:
    store = MemoryPartitionStore()
    cache = cached(store)
    run(processor(cache), RECORDS)
    assert contents(store) == reference
    # Each buyer is read from the store once, when first seen; every later batch hits.
    assert cache.stats.misses == cache.stats.buyers == len(store.buyer_states)
    assert cache.stats.hits > 0


def test_a_cached_state_is_the_one_the_store_holds() -> None:
    store = MemoryPartitionStore()
    cache = cached(store)
    run(processor(cache), RECORDS)
    held = {key: blob for g in cache._generations.values() for key, (blob, _) in g.states.items()}
    assert held and all(blob == store.buyer_states[key] for key, blob in held.items())


def test_the_cache_gives_the_garbage_collector_nothing_to_walk() -> None:
    """Kept as objects, 50,000 states were a million objects for each full collection to walk
    (a pause of 170-380 ms every few seconds of the worker's loop); as bytes, none."""
    store = MemoryPartitionStore()
    cache = cached(store)
    run(processor(cache), RECORDS)
    gc.collect()  # a tuple of untracked values is untracked by the collection that meets it
    entries = [entry for g in cache._generations.values() for entry in g.states.values()]
    assert entries and not any(gc.is_tracked(entry) for entry in entries)


def test_a_partition_that_another_worker_applied_to_is_read_again(reference: tuple[Any, ...]) -> None:
    """A's partitions are taken by B for a while and come back: B's states must be the ones A
    folds into next, though A's cache still holds its own older ones (Redis offsets moved)."""
    store = MemoryPartitionStore()
    a, b = processor(cached(store)), processor(cached(store))
    chunks = list(batches(RECORDS, BATCH))
    for n, chunk in enumerate(chunks):
        asyncio.run((b if n % 3 == 1 else a).process(chunk))
    assert contents(store) == reference
    assert a.store.stats.dropped > 0  # type: ignore[attr-defined]


def test_a_partition_assigned_again_starts_empty() -> None:
    store = MemoryPartitionStore()
    cache = cached(store)
    run(processor(cache), RECORDS[:300])
    assert cache.stats.buyers > 0
    asyncio.run(cache.drain(range(4)))
    assert cache.stats.buyers == 0


LATER = NOW + 40 * 24 * 3_600_000  # another worker's clock, to which every record is late


def late_judge(store: Any) -> BatchProcessor:
    worker = processor(store)
    worker.clock = lambda: LATER
    return worker


def test_a_rebalance_in_the_middle_of_a_batch_keeps_nothing_it_folded() -> None:
    """A loads from its warm cache and folds; meanwhile B, whose clock judges every record late,
    applies the same records; A's fence has moved, so A recomputes from the store. The states
    A folded in vain sit at the very offsets B committed, so only dropping them keeps A from
    counting records that B judged late."""
    chunks = list(batches(RECORDS, BATCH))
    by_b = range(5, 8)
    expected = MemoryPartitionStore()
    for n, chunk in enumerate(chunks):
        asyncio.run((late_judge if n in by_b else processor)(expected).process(chunk))

    store = MemoryPartitionStore()
    cache = cached(store)
    for n, chunk in enumerate(chunks):
        if n in by_b:
            asyncio.run(race_b_first(cache, store, chunk))
        else:
            asyncio.run(processor(cache).process(chunk))
    assert contents(store) == contents(expected)
    assert cache.stats.hits > 0


async def race_b_first(
    cache: CachedPartitionStore, store: MemoryPartitionStore, chunk: Sequence[Record]
) -> None:
    """A (cached) loads and folds, then B applies `chunk`, then A commits: a conflict."""
    a_loaded, b_done = asyncio.Event(), asyncio.Event()
    a = processor(LoadThenWait(cache, a_loaded, b_done))
    b = late_judge(store)

    async def run_b() -> None:
        await a_loaded.wait()
        await b.process(chunk)
        b_done.set()

    report, _ = await asyncio.gather(a.process(chunk), run_b())
    assert report.attempts == 2 and report.skipped_already_applied == len(chunk)


class LoadThenWait:
    """`inner`, whose first commit waits until `opens`, after saying it has loaded."""

    def __init__(self, inner: CachedPartitionStore, loaded: asyncio.Event, opens: asyncio.Event) -> None:
        self.inner, self.loaded, self.opens = inner, loaded, opens

    async def load(
        self, buyers: Mapping[int, Sequence[str]], topics: Sequence[str]
    ) -> dict[int, PartitionSnapshot]:
        snapshots = await self.inner.load(buyers, topics)
        self.loaded.set()
        return snapshots

    async def catch_up(self, snapshots: Iterable[PartitionSnapshot]) -> None:
        await self.inner.catch_up(snapshots)

    async def drain(self, partitions: Iterable[int]) -> int:
        return await self.inner.drain(partitions)

    async def landed(self, partition: int, commit_id: str) -> bool:
        return await self.inner.landed(partition, commit_id)

    async def commit(self, commits: Sequence[PartitionCommit]) -> set[int]:
        await self.opens.wait()
        return await self.inner.commit(commits)


@pytest.mark.parametrize("fault", list(Fault), ids=lambda f: f.name)
def test_a_commit_without_a_reply_keeps_no_folded_state(fault: Fault, reference: tuple[Any, ...]) -> None:
    """The commit landed (or not) and its reply was lost: the states folded for it are not
    reused by the retry, which reads the store (else a landed batch's events count twice)."""
    store = MemoryPartitionStore()
    clock = SteppedClock(NOW)
    faulty = FaultyCommits(store, clock, [])
    cache = cached(faulty)
    worker = processor(cache)
    worker.clock = lambda: NOW  # the verdicts of `reference`, whatever the fault steps
    chunks = list(batches(RECORDS, BATCH))
    for n, chunk in enumerate(chunks):
        if n in (3, 7):
            faulty.faults.append(fault)
        asyncio.run(worker.process_until_done(chunk))
    assert contents(store) == reference
    assert not faulty.faults


def test_a_failed_dead_letter_sink_leaves_no_folded_state_behind(reference: tuple[Any, ...]) -> None:
    """The sink fails after a batch was folded, before its commit; the next batch (records
    applied already) commits nothing: the folded states must not come back with it."""
    store = MemoryPartitionStore()
    cache = cached(store)
    worker = processor(cache)
    sink = worker.dead_letters
    failures: list[BaseException] = []

    async def flaky_sink(letters: Sequence[Any]) -> None:
        if failures:
            raise failures.pop()
        await sink(letters)

    worker.dead_letters = flaky_sink
    chunks = list(batches(RECORDS, BATCH))
    warm = len(chunks) // 2
    run(worker, [r for chunk in chunks[:warm] for r in chunk])
    failures.append(RuntimeError("dead-letter topic unavailable"))
    failed = 0
    for chunk in chunks[warm:]:
        try:
            asyncio.run(worker.process(chunk))
        except RuntimeError:
            failed += 1
            # One record applied already, on one partition: skipped, it commits nothing, and the
            # other partitions' folded states are still where the failed attempt left them.
            asyncio.run(worker.process(chunks[0][:1]))
            asyncio.run(worker.process(chunk))
    assert failed == 1
    assert contents(store) == reference


def test_an_entry_expires_before_its_key_does() -> None:
    """Once the TTL its commit gave the key has passed, the state is read from the store: a
    key the store expired is an empty state there, never a cached one."""
    store = MemoryPartitionStore()
    monotonic = SteppedMonotonic()
    cache = cached(store, monotonic=monotonic)
    run(processor(cache), RECORDS[:200])
    partition, generation = next((p, g) for p, g in cache._generations.items() if g.states)
    key, (_, expires) = next(iter(generation.states.items()))
    del store.buyer_states[key]  # what Redis does at the key's TTL

    def loaded_seen() -> int:
        snapshot = asyncio.run(cache.load({partition: [key]}, TOPICS))[partition]
        asyncio.run(cache.commit([]))  # give the generation back, as a batch with nothing new
        return len(snapshot.states[key].seen)

    monotonic.now = expires - 1
    assert loaded_seen() > 0
    monotonic.now = expires
    assert loaded_seen() == 0


def test_the_cache_stays_within_its_bound_and_changes_nothing(reference: tuple[Any, ...]) -> None:
    store = MemoryPartitionStore()
    cache = cached(store, max_buyers=10)
    run(processor(cache), RECORDS)
    assert contents(store) == reference
    assert cache.stats.buyers <= 10 and cache.stats.evicted > 0


def test_a_cache_of_zero_is_the_store_itself(reference: tuple[Any, ...]) -> None:
    store = MemoryPartitionStore()
    cache = cached(store, max_buyers=0)
    run(processor(cache), RECORDS)
    assert contents(store) == reference
    assert cache.stats.hits == 0 and cache.stats.buyers == 0
