"""The PartitionStore contract, one function per clause, run against every backend:
in memory by the unit tests, on Redis and on a Redis Cluster by the integration tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from agents.core.buyer import BuyerState, Consultation
from agents.store import keys
from agents.store.protocols import COMMIT_LOG_LENGTH, PartitionCommit, PartitionStore
from agents.store.state_codec import encode_state
from agents.store.writes import WriteSet

TOPICS = ("c.messages", "c.orders")
BUYER = keys.buyer_key(3, "s1", "tb_1")
OTHER = keys.buyer_key(4, "s1", "tb_2")


def _state(ts: int) -> BuyerState:
    return BuyerState(last_message_ts=ts, consultations=[Consultation("s1:a", 739_000, ts)])


def _commit(partition: int, buyer: str, expected: dict[str, int], offset: int, ts: int) -> PartitionCommit:
    writes = WriteSet()
    writes.buyer_states[buyer] = encode_state(_state(ts))
    writes.buyer_ttl_ms[buyer] = 3_600_000
    return PartitionCommit(partition, expected, dict(expected) | {TOPICS[0]: offset}, writes)


async def an_unknown_partition_has_no_offsets_and_empty_states(store: PartitionStore) -> None:
    snapshots = await store.load({3: [BUYER]}, TOPICS)
    assert snapshots[3].offsets == {TOPICS[0]: -1, TOPICS[1]: -1}
    assert snapshots[3].states == {BUYER: BuyerState()}


async def a_commit_whose_fence_holds_is_loaded_back(store: PartitionStore) -> None:
    assert await store.commit([_commit(3, BUYER, {TOPICS[0]: -1, TOPICS[1]: -1}, 9, ts=1000)]) == set()
    snapshot = (await store.load({3: [BUYER]}, TOPICS))[3]
    assert snapshot.offsets == {TOPICS[0]: 9, TOPICS[1]: -1}
    assert snapshot.states[BUYER] == _state(1000)


async def a_commit_from_stale_offsets_writes_nothing(store: PartitionStore) -> None:
    await store.commit([_commit(3, BUYER, {TOPICS[0]: -1, TOPICS[1]: -1}, 9, ts=1000)])
    stale = _commit(3, BUYER, {TOPICS[0]: -1, TOPICS[1]: -1}, 20, ts=2000)  # computed before that
    assert await store.commit([stale]) == {3}
    snapshot = (await store.load({3: [BUYER]}, TOPICS))[3]
    assert snapshot.offsets[TOPICS[0]] == 9 and snapshot.states[BUYER] == _state(1000)


async def one_partitions_conflict_leaves_the_others_committed(store: PartitionStore) -> None:
    await store.commit([_commit(3, BUYER, {TOPICS[0]: -1, TOPICS[1]: -1}, 9, ts=1000)])
    stale = _commit(3, BUYER, {TOPICS[0]: -1, TOPICS[1]: -1}, 20, ts=2000)
    fresh = _commit(4, OTHER, {TOPICS[0]: -1, TOPICS[1]: -1}, 5, ts=3000)
    assert await store.commit([stale, fresh]) == {3}
    loaded = await store.load({3: [BUYER], 4: [OTHER]}, TOPICS)
    assert loaded[4].offsets[TOPICS[0]] == 5 and loaded[4].states[OTHER] == _state(3000)
    assert loaded[3].states[BUYER] == _state(1000)


async def a_loaded_state_is_a_copy(store: PartitionStore) -> None:
    await store.commit([_commit(3, BUYER, {TOPICS[0]: -1, TOPICS[1]: -1}, 9, ts=1000)])
    (await store.load({3: [BUYER]}, TOPICS))[3].states[BUYER].last_message_ts = 0
    assert (await store.load({3: [BUYER]}, TOPICS))[3].states[BUYER] == _state(1000)


async def draining_twice_changes_nothing(store: PartitionStore) -> None:
    await store.commit([_commit(3, BUYER, {TOPICS[0]: -1, TOPICS[1]: -1}, 9, ts=1000)])
    await store.drain([3, 4])
    before = await store.load({3: [BUYER]}, TOPICS)
    await store.drain([3, 4])
    assert await store.load({3: [BUYER]}, TOPICS) == before


async def a_commit_that_landed_is_known_by_its_id_however_many_came_after(store: PartitionStore) -> None:
    """What a worker whose reply was lost asks: its id is in the log once its commit landed,
    also after later commits by others (up to COMMIT_LOG_LENGTH); a conflicted one's never."""
    first = _commit(3, BUYER, {TOPICS[0]: -1, TOPICS[1]: -1}, 9, ts=1000)
    first.commit_id = "w1:1"
    assert not await store.landed(3, "w1:1")
    assert await store.commit([first]) == set()
    expected = {TOPICS[0]: 9, TOPICS[1]: -1}
    for n in range(COMMIT_LOG_LENGTH - 1):  # another worker's, each on the one before
        later = _commit(3, BUYER, expected, 10 + n, ts=2000 + n)
        later.commit_id = f"w2:{n}"
        assert await store.commit([later]) == set()
        expected = later.offsets
    stale = _commit(3, BUYER, {TOPICS[0]: 9, TOPICS[1]: -1}, 99, ts=9000)
    stale.commit_id = "w1:2"
    assert await store.commit([stale]) == {3}
    assert await store.landed(3, "w1:1") and await store.landed(3, f"w2:{COMMIT_LOG_LENGTH - 2}")
    assert not await store.landed(3, "w1:2") and not await store.landed(4, "w1:1")
    one_more = _commit(3, BUYER, expected, 500, ts=9500)
    one_more.commit_id = "w2:last"
    await store.commit([one_more])
    assert not await store.landed(3, "w1:1"), "the log keeps the last COMMIT_LOG_LENGTH commits"


CLAUSES: list[Callable[[PartitionStore], Awaitable[None]]] = [
    an_unknown_partition_has_no_offsets_and_empty_states,
    a_commit_whose_fence_holds_is_loaded_back,
    a_commit_from_stale_offsets_writes_nothing,
    one_partitions_conflict_leaves_the_others_committed,
    a_loaded_state_is_a_copy,
    draining_twice_changes_nothing,
    a_commit_that_landed_is_known_by_its_id_however_many_came_after,
]
