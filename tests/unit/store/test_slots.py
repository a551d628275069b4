"""Redis Cluster runs a script only inside one hash slot: every call the store makes must keep
all its keys in one slot, whatever the ids look like (braces included)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from agents.store import keys, outbox
from agents.store.batches import PartitionCommit, _commit_call
from agents.store.scripts import ScriptCall
from agents.store.writes import WriteSet

ids = st.text(alphabet="ab:{}|.1_", min_size=1, max_size=6)


def one_slot(call: ScriptCall) -> bool:
    return len({key_slot(k.encode()) for k in call.keys}) == 1


@st.composite
def shares(draw: st.DrawFn) -> tuple[int, WriteSet]:
    partition = draw(st.integers(0, 63))
    writes = WriteSet()
    for shop, agent, buyer in draw(st.lists(st.tuples(ids, ids, ids), min_size=1, max_size=6)):
        buyer_key = keys.buyer_key(partition, shop, buyer)
        writes.buyer_states[buyer_key] = b"state"
        writes.buyer_ttl_ms[buyer_key] = 1000
        writes.increment(keys.bucket_key(shop, agent, "d", 20000), "c", 1, 10**13)
        writes.increment(keys.bucket_key(shop, agent, "s", 29000000), "c:7", 1, 10**13)
        writes.increment(keys.histogram_key(shop, agent), "3", 1, 10**13)
        writes.waits_add[keys.waiting_key(shop, agent)][buyer] = 5
        writes.expire_at_ms[keys.waiting_key(shop, agent)] = 10**13
        writes.agents_seen[shop][agent] = 7
    return partition, writes


@given(shares())
def test_a_partition_commit_touches_one_slot(share: tuple[int, WriteSet]) -> None:
    partition, writes = share
    commit = PartitionCommit(partition, {"m": 3, "o": -1}, {"m": 9, "o": 0}, writes, "w1:1")  # its log too
    assert one_slot(_commit_call(commit, outbox.from_writes(partition, 11, writes), 1000))


@given(st.lists(shares(), min_size=1, max_size=3))
def test_every_outbox_apply_call_touches_one_slot(many: list[tuple[int, WriteSet]]) -> None:
    entries = [outbox.from_writes(p, 10 + i, w) for i, (p, w) in enumerate(many)]
    calls = outbox.apply_calls([e for e in entries if e is not None])
    assert calls and all(one_slot(call) for call in calls)


def test_an_outbox_survives_encoding() -> None:
    writes = WriteSet()
    writes.increment(keys.bucket_key("s1", "s1:a", "d", 20000), "c", 2, 99)
    writes.waits_remove[keys.waiting_key("s1", "s1:a")].add("b1")
    writes.expire_at_ms[keys.waiting_key("s1", "s1:a")] = 98
    entry = outbox.from_writes(3, 42, writes)
    assert entry is not None
    assert outbox.decode(outbox.encode(entry)) == entry
    assert outbox.from_writes(3, 42, WriteSet()) is None  # nothing for the agents: no entry


def test_the_position_grows_with_every_commit() -> None:
    assert outbox.position({"m": -1, "o": -1}) == 0  # nothing applied yet
    assert outbox.position({"m": 4, "o": -1}) < outbox.position({"m": 4, "o": 0})
