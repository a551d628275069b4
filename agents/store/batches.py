"""The exactly-once write path: load a batch's partitions, commit each, apply the outboxes.

For every input partition N a batch touches:

1. load — one MGET in N's slot, so one atomic read: N's applied offset in every input topic
   and the states of the batch's buyers on N.
2. catch up — if N's last commit left an outbox this worker has not applied (its writer died
   between commit and apply), apply it first: the next commit replaces it.
3. commit — commit_partition.lua: the fence (N's offsets unchanged since the load), then
   buyer states, offsets and N's new outbox, atomically.
4. apply — the committed outboxes, agent by agent (apply_agent.lua) and index by index.

Steps 1, 3 and 4 are one pipeline each for all of the batch's partitions (on a cluster one
per node, concurrently). A crash anywhere leaves either nothing of N's share (before 3) or
a committed share whose outbox the next owner of N applies (after 3).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import cast

import msgspec

from agents.store import keys, outbox
from agents.store.apply_behind import ApplyBehind
from agents.store.connect import RedisClient
from agents.store.outbox import Entry, Outbox
from agents.store.protocols import COMMIT_LOG_LENGTH, PartitionCommit, PartitionSnapshot
from agents.store.scripts import Lua, ScriptCall, run_scripts
from agents.store.state_codec import decode_state
from config.calendar import MS_PER_DAY
from config.retention import input_retention_ms
from config.settings import Settings

COMMIT_PARTITION = Lua("commit_partition.lua")


# The offsets (and outbox) of an idle partition fence records that Kafka still holds: they must
# outlive the input topics' retention, or a partition idle that long is re-read from its start.
def offset_ttl_ms(settings: Settings) -> int:
    return input_retention_ms(settings) + MS_PER_DAY


def offset_ttl_ms_default() -> int:
    return offset_ttl_ms(Settings())


_encoder = msgspec.msgpack.Encoder()


class RedisPartitionStore:
    """The PartitionStore protocol on Redis (one server or a cluster)."""

    def __init__(
        self, client: RedisClient, offset_ttl_ms: int | None = None, behind: ApplyBehind | None = None
    ) -> None:
        self.client = client
        self.offset_ttl_ms = offset_ttl_ms if offset_ttl_ms is not None else offset_ttl_ms_default()
        # Given, commits return before their outboxes are applied (agents/store/apply_behind.py).
        self.behind = behind
        # partition -> position whose outbox this worker knows applied. Only saves reads:
        # forgetting it costs one GET and a no-op re-apply.
        self._applied: dict[int, int] = {}

    async def load(
        self, buyers: Mapping[int, Sequence[str]], topics: Sequence[str]
    ) -> dict[int, PartitionSnapshot]:
        """Each partition's offsets in `topics` and the states of `buyers[partition]`."""
        partitions = sorted(buyers)
        async with self.client.pipeline(transaction=False) as pipe:
            for partition in partitions:
                # One slot, so one atomic MGET; by name, as a cluster pipeline refuses pipe.mget.
                pipe.execute_command(
                    "MGET", *(keys.offset_key(t, partition) for t in topics), *buyers[partition]
                )
            rows = await pipe.execute()
        snapshots = {}
        for partition, row in zip(partitions, rows, strict=True):
            offsets = {t: -1 if v is None else int(v) for t, v in zip(topics, row, strict=False)}
            blobs = cast(list[bytes | None], row[len(topics) :])
            states = {k: decode_state(b) for k, b in zip(buyers[partition], blobs, strict=True)}
            snapshots[partition] = PartitionSnapshot(partition, offsets, states)
        return snapshots

    async def catch_up(self, snapshots: Iterable[PartitionSnapshot]) -> None:
        """Apply the outboxes of loaded partitions whose last commit this worker has not applied."""
        unknown = {
            s.partition: at
            for s in snapshots
            if (at := outbox.position(s.offsets)) and self._applied.get(s.partition) != at
        }
        if unknown:
            await self.drain(unknown)
            self._applied.update((p, at) for p, at in unknown.items() if p not in self._applied)

    async def drain(self, partitions: Iterable[int]) -> int:
        """Apply whatever outboxes `partitions` hold (idempotent); how many there were.

        Called for newly assigned partitions too: their last owner may have died after a
        commit, and if no record arrives there any more nothing else would apply it.
        """
        # No settle here: the apply in flight may be of these outboxes, and markers make both
        # land once in any order. Waiting here could block a rebalance's seek through an outage.
        wanted = sorted(set(partitions))
        for partition in wanted:
            self._applied.pop(partition, None)
        if not wanted:
            return 0
        async with self.client.pipeline(transaction=False) as pipe:
            for partition in wanted:
                pipe.get(keys.outbox_key(partition))
            blobs = await pipe.execute()
        pending = [outbox.read_entry(blob) for blob in blobs if blob is not None]
        await self._apply(pending)
        return len(pending)

    async def commit(self, commits: Sequence[PartitionCommit]) -> set[int]:
        """Commit each partition's share and apply the outboxes (behind: start applying them);
        the partitions that moved on (their shares were not written: recompute them)."""
        await self.settle()
        entries = [outbox.commit_entry(c.partition, outbox.position(c.offsets), c.writes) for c in commits]
        results = await run_scripts(
            self.client,
            [_commit_call(c, e, self.offset_ttl_ms) for c, e in zip(commits, entries, strict=True)],
        )
        conflicted = {c.partition for c, r in zip(commits, results, strict=True) if int(r[0]) != 0}
        committed = [(c, e) for c, e in zip(commits, entries, strict=True) if c.partition not in conflicted]
        pending = [e for _, e in committed if e is not None]
        if self.behind is not None and pending:
            self.behind.start(lambda: self._apply(pending))
        else:
            await self._apply(pending)
        # Behind, these are applied by the apply in flight, which every later commit waits for;
        # a load's catch-up need not apply them again.
        for commit, _ in committed:
            self._applied[commit.partition] = outbox.position(commit.offsets)
        return conflicted

    async def landed(self, partition: int, commit_id: str) -> bool:
        found = await self.client.execute_command("LPOS", keys.commit_log_key(partition), commit_id)
        return found is not None

    async def settle(self) -> None:
        """Wait until the last commit's outboxes are applied (at once when applied in line)."""
        if self.behind is None:
            return
        try:
            await self.behind.settle()
        except Exception:
            # Fatal, so the worker stops; whatever runs on reads every outbox again, applied or not.
            self._applied.clear()
            raise

    async def _apply(self, entries: Sequence[Entry]) -> None:
        await run_scripts(self.client, outbox.entry_calls(entries, self.offset_ttl_ms))
        for entry in entries:
            self._applied[entry.partition] = entry.position


def _commit_call(commit: PartitionCommit, entry: Entry | Outbox | None, offset_ttl_ms: int) -> ScriptCall:
    """KEYS and ARGV of commit_partition.lua for one partition's share."""
    topics = sorted(commit.expected)
    fence = [keys.offset_key(t, commit.partition) for t in topics]
    buyers = list(commit.writes.buyer_states)
    first_buyer = 2 + len(fence)  # KEYS: outbox, fence…, buyers…; ARGV: header, outbox, blobs…
    states = [[first_buyer + i, 3 + i, commit.writes.buyer_ttl_ms[k]] for i, k in enumerate(buyers)]
    header = [
        len(fence),
        [commit.expected[t] for t in topics],
        [commit.offsets[t] for t in topics],
        offset_ttl_ms,
        states,
    ]
    log = [keys.commit_log_key(commit.partition)] if commit.commit_id else []
    if log:
        header.append([first_buyer + len(buyers), commit.commit_id, COMMIT_LOG_LENGTH])
    return ScriptCall(
        COMMIT_PARTITION,
        [keys.outbox_key(commit.partition), *fence, *buyers, *log],
        [
            _encoder.encode(header),
            b"" if entry is None else outbox.blob_of(entry),
            *commit.writes.buyer_states.values(),
        ],
    )
