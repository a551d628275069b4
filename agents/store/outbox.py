"""A partition's outbox: the per-agent effects of its last commit, until every agent has them.

One batch changes keys of many slots: its partitions' buyer states and offsets, and the
counters and waiting sets of many agents. A cluster runs a script only inside one slot, so
a partition's commit writes its buyer states, its offsets and an outbox entry — all in the
partition's slot — and the entry is then applied agent by agent, each in the agent's slot.

An entry is named by the partition's *position* after the commit: the sum over the input
topics of (last applied offset + 1). Each commit advances some offset, so positions grow
with every commit of a partition. An agent keeps, per partition, the last position it has
applied (its marker) and skips older or equal ones, so applying an entry twice — a retry, a
worker that took the partition over, two workers racing — changes nothing.

Pure encoding here; no Redis I/O. The functions on Outbox objects (from_writes, encode, decode,
apply_calls) are the reference; the write path calls `commit_entry` and `entry_calls`, which run
the Rust build of the same functions (native/, agents/store/native.py) when it is active, with
the same bytes, and these functions otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec

from agents.store import keys
from agents.store.native import native_module
from agents.store.scripts import Lua, ScriptCall
from agents.store.writes import HISTORY_INDEX_TTL_MS, INDEX_TTL_MS, WriteSet

APPLY_AGENT = Lua("apply_agent.lua")
TOUCH_INDEX = Lua("touch_index.lua")

# An agent's markers must outlive every outbox entry that could be applied again (an entry lives
# as long as its partition's offsets): a marker gone first would let a restart or rebalance add
# an old entry's counts to day buckets the reports keep for months.
MIN_MARKER_TTL_MS = INDEX_TTL_MS


class Counters(msgspec.Struct, array_like=True, frozen=True):
    key: str
    expire_at_ms: int
    fields: dict[str, int]


class Waiting(msgspec.Struct, array_like=True, frozen=True):
    key: str
    expire_at_ms: int
    removed: list[str]
    added: dict[str, int]  # buyer -> wait start


class Details(msgspec.Struct, array_like=True, frozen=True):
    """One details hash's rows (agents/core/details.py): fields set, then fields deleted."""

    key: str
    expire_at_ms: int
    rows: dict[str, bytes]
    deleted: list[str]


class AgentShare(msgspec.Struct, array_like=True, frozen=True):
    """What one commit changes in one agent's slot. Fields are appended with a default, so an
    outbox written by an older worker still decodes (an entry may outlive an upgrade)."""

    counters: list[Counters]
    waiting: list[Waiting]
    details: list[Details] = []


class IndexTouch(msgspec.Struct, array_like=True, frozen=True):
    """Members seen, by last-seen time, in `kp:shops` or a shop's agent index."""

    key: str
    members: dict[str, int]


class Outbox(msgspec.Struct, array_like=True, frozen=True):
    partition: int
    position: int
    agents: dict[str, AgentShare]  # by the agent's key prefix (`kp:{<len>.<shop>|<agent>}`)
    indexes: list[IndexTouch]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Outbox)


def encode(outbox: Outbox) -> bytes:
    return _encoder.encode(outbox)


def decode(blob: bytes) -> Outbox:
    return _decoder.decode(blob)


def position(offsets: dict[str, int]) -> int:
    """A partition's position: the sum of (last applied offset + 1) over the input topics."""
    return sum(offset + 1 for offset in offsets.values())


def _agent_of(key: str) -> str:
    return key[: key.index("}") + 1]


def from_writes(partition: int, at: int, writes: WriteSet) -> Outbox | None:
    """The outbox entry of one partition's commit at position `at`; None if no agent changed."""
    agents: dict[str, tuple[list[Counters], list[Waiting], list[Details]]] = defaultdict(lambda: ([], [], []))
    for key, fields in writes.increments.items():
        nonzero = {name: amount for name, amount in fields.items() if amount}
        if nonzero:
            agents[_agent_of(key)][0].append(Counters(key, writes.expire_at_ms[key], nonzero))
    for key in sorted(writes.waits_add.keys() | writes.waits_remove.keys()):  # one order, as native/
        removed = sorted(writes.waits_remove.get(key, ()))
        added = dict(writes.waits_add.get(key, {}))
        if removed or added:
            agents[_agent_of(key)][1].append(Waiting(key, writes.expire_at_ms[key], removed, added))
    for key, changes in writes.details.items():
        rows = {name: row for name, row in changes.items() if row is not None}
        deleted = sorted(name for name, row in changes.items() if row is None)
        if rows or deleted:
            agents[_agent_of(key)][2].append(Details(key, writes.expire_at_ms[key], rows, deleted))
    indexes = [IndexTouch(key, members) for key, members in _index_touches(writes)]
    if not agents and not indexes:
        return None
    shares = {agent: AgentShare(*parts) for agent, parts in agents.items()}
    return Outbox(partition, at, shares, indexes)


def _index_touches(writes: WriteSet) -> list[tuple[str, dict[str, int]]]:
    """Each shop's agents index with the agents seen, then `kp:shops` with each shop's last seen."""
    touches = [(keys.agents_index_key(shop), dict(seen)) for shop, seen in writes.agents_seen.items()]
    if writes.agents_seen:
        last_seen = {shop: max(seen.values()) for shop, seen in writes.agents_seen.items()}
        touches.append((keys.SHOPS_INDEX_KEY, last_seen))
    return touches


def apply_calls(outboxes: Sequence[Outbox], marker_ttl_ms: int = MIN_MARKER_TTL_MS) -> list[ScriptCall]:
    """The script calls that apply `outboxes`: one per agent (its shares of every entry, in
    order) and one per index key. Each call touches one slot."""
    parts: dict[str, list[tuple[int, int, AgentShare]]] = defaultdict(list)
    touched: dict[str, dict[str, int]] = defaultdict(dict)
    for outbox in sorted(outboxes, key=lambda o: (o.partition, o.position)):
        for agent, share in outbox.agents.items():
            parts[agent].append((outbox.partition, outbox.position, share))
        for touch in outbox.indexes:
            members = touched[touch.key]
            for member, seen in touch.members.items():
                members[member] = max(seen, members.get(member, seen))
    calls = [_agent_call(agent, shares, marker_ttl_ms) for agent, shares in parts.items()]
    for key, members in touched.items():
        flat = [x for member, seen in members.items() for x in (seen, member)]
        calls.append(ScriptCall(TOUCH_INDEX, [key], [HISTORY_INDEX_TTL_MS, *flat]))
    return calls


def _agent_call(agent: str, shares: list[tuple[int, int, AgentShare]], marker_ttl_ms: int) -> ScriptCall:
    """KEYS: the agent's marker hash, then every key the shares write; ARGV: see apply_agent.lua."""
    index: dict[str, int] = {}

    def ref(key: str) -> int:
        return index.setdefault(key, len(index) + 2)  # Lua is 1-based, KEYS[1] is the marker

    blobs: list[bytes] = []  # the rows travel as ARGV[2..]: Redis's cmsgpack reads no msgpack bin

    def blob(row: bytes) -> int:
        blobs.append(row)
        return len(blobs) + 1

    encoded = []
    for partition, at, share in shares:
        counters = [
            [ref(c.key), c.expire_at_ms, *(x for kv in c.fields.items() for x in kv)] for c in share.counters
        ]
        waiting = [
            [
                ref(w.key),
                w.expire_at_ms,
                w.removed,
                [x for buyer, start in w.added.items() for x in (start, buyer)],
            ]
            for w in share.waiting
        ]
        details = [
            [ref(d.key), d.expire_at_ms, [x for f, row in d.rows.items() for x in (f, blob(row))], d.deleted]
            for d in share.details
        ]
        encoded.append([partition, at, counters, waiting, details])
    return ScriptCall(
        APPLY_AGENT,
        [keys.applied_key(agent), *index],
        [_encoder.encode(encoded), *blobs, max(marker_ttl_ms, MIN_MARKER_TTL_MS)],
    )


class Entry(Protocol):
    """A committed outbox entry on the write path: the Rust `NativeEntry` or a `ReferenceEntry`."""

    @property
    def partition(self) -> int: ...
    @property
    def position(self) -> int: ...
    @property
    def blob(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ReferenceEntry:
    """An entry of the Python reference: the Outbox and its encoding."""

    outbox: Outbox
    blob: bytes

    @property
    def partition(self) -> int:
        return self.outbox.partition

    @property
    def position(self) -> int:
        return self.outbox.position


def commit_entry(partition: int, at: int, writes: WriteSet) -> Entry | None:
    """`from_writes` and its encoding, natively when the build is active; None if no agent changed."""
    native = native_module()
    if native is None:
        entry = from_writes(partition, at, writes)
        return None if entry is None else ReferenceEntry(entry, encode(entry))
    found: Entry | None = native.from_writes(
        partition,
        at,
        writes.increments,
        writes.expire_at_ms,
        writes.waits_add,
        writes.waits_remove,
        writes.details,
        _index_touches(writes),
    )
    return found


def read_entry(blob: bytes) -> Entry:
    """An entry read back from Redis (the drain path, rare: by the reference, which also reads the
    entries of older workers, e.g. an AgentShare without `details`)."""
    return ReferenceEntry(decode(blob), blob)


def entry_calls(entries: Sequence[Entry], marker_ttl_ms: int = MIN_MARKER_TTL_MS) -> list[ScriptCall]:
    """`apply_calls` for write-path entries: natively when they all are native entries."""
    native = native_module()
    if native is None or not all(isinstance(e, native.NativeEntry) for e in entries):
        return apply_calls([_outbox_of(e) for e in entries], marker_ttl_ms)
    agent_calls, index_calls = native.apply_calls(
        entries, max(marker_ttl_ms, MIN_MARKER_TTL_MS), HISTORY_INDEX_TTL_MS
    )
    return [ScriptCall(APPLY_AGENT, k, a) for k, a in agent_calls] + [
        ScriptCall(TOUCH_INDEX, k, a) for k, a in index_calls
    ]


def _outbox_of(entry: Entry) -> Outbox:
    return entry.outbox if isinstance(entry, ReferenceEntry) else decode(entry.blob)


def blob_of(entry: Entry | Outbox) -> bytes:
    """An entry's encoding; an Outbox (the reference's, as tests pass) is encoded here."""
    return encode(entry) if isinstance(entry, Outbox) else entry.blob
