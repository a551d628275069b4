"""What the processor and the floor need from storage, as protocols with no backend in them.

`RedisPartitionStore` / `RedisStore` are the real backends; `MemoryPartitionStore` is an
in-process one that keeps the same fence, so the processor's retries and dead-letter
ordering can be tested in microseconds. Both run the same contract tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from agents.core.buyer import BuyerState
from agents.core.status import ChangePoint
from agents.core.windows import BucketRead
from agents.store.writes import WriteSet
from config.errors import KefuError


class CommitConflict(KefuError):
    """Another worker committed one of the batch's partitions first."""


# The commits a partition's log keeps: a worker whose reply was lost asks at its next attempt,
# a backoff later; other workers commit the partition only after a rebalance, a few batches.
COMMIT_LOG_LENGTH = 64


@dataclass(slots=True)
class PartitionSnapshot:
    partition: int
    offsets: dict[str, int]  # input topic -> last applied offset (-1 when none)
    states: dict[str, BuyerState]  # buyer key -> state


@dataclass(slots=True)
class PartitionCommit:
    """One partition's share of a batch, computed from `expected`."""

    partition: int
    expected: dict[str, int]  # input topic -> offset the share was computed from: the fence
    offsets: dict[str, int]  # input topic -> last applied offset after the commit
    writes: WriteSet
    # Unique to this attempt at the commit (the processor's): kept in the partition's commit log
    # when it lands, so a worker whose reply was lost can ask whether it did (`landed`).
    commit_id: str = ""


class PartitionStore(Protocol):
    """Input partitions' offsets and buyer states, committed together behind an offset fence."""

    async def load(
        self, buyers: Mapping[int, Sequence[str]], topics: Sequence[str]
    ) -> dict[int, PartitionSnapshot]:
        """Each partition's offsets in `topics` and the states of `buyers[partition]`, atomically."""
        ...

    async def catch_up(self, snapshots: Iterable[PartitionSnapshot]) -> None:
        """Finish whatever a previous owner committed but did not apply to the agents."""
        ...

    async def commit(self, commits: Sequence[PartitionCommit]) -> set[int]:
        """Write each share whose fence holds; return the partitions whose fence moved."""
        ...

    async def drain(self, partitions: Iterable[int]) -> int:
        """Apply the committed-but-unapplied effects of `partitions`; how many there were."""
        ...

    async def landed(self, partition: int, commit_id: str) -> bool:
        """Whether the commit `commit_id` of `partition` was written: one of the partition's last
        COMMIT_LOG_LENGTH commits, whoever made the later ones."""
        ...


AgentPairs = Sequence[tuple[str, str]]  # (shop, agent)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One status event to keep, and the record it came in (its Kafka order, its identity)."""

    event_id: str
    ts: int
    status: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class AgentStatusWrite:
    """One agent's status events of a batch, with what the agent's shop keeps."""

    shop: str
    agent: str
    changes: Sequence[StatusChange]
    kept_from_ms: int  # change points before it are dropped, all but the newest of them
    ttl_ms: int


class StatusHistory(Protocol):
    """The read behind agent status (v3) on the floor and in reports."""

    async def status_points(self, pairs: AgentPairs, since_ms: int) -> list[list[ChangePoint]]:
        """For each (shop, agent): its change points from `since_ms` on, after the newest one
        before it (the status at `since_ms`), in time order."""
        ...


class NoStatusHistory:
    """No status events anywhere: every agent `unknown`, no online time (a v2 deployment)."""

    async def status_points(self, pairs: AgentPairs, since_ms: int) -> list[list[ChangePoint]]:
        return [[] for _ in pairs]


class StatusStore(StatusHistory, Protocol):
    """Agent status change points (kefu.agents) and that topic's applied offsets. Applying is
    idempotent per event, so the offsets need no fence: they are raised after the events are in."""

    async def applied_offsets(self, topic_partitions: Sequence[tuple[str, int]]) -> list[int]: ...

    async def apply_status(self, writes: Sequence[AgentStatusWrite], seen_ms: int) -> list[list[str]]:
        """Keep each write's changes; per write, one outcome per change (applied, duplicate, late)."""
        ...

    async def raise_offsets(
        self, topic: str, offsets: Mapping[int, int], raise_id: str = ""
    ) -> dict[int, int]:
        """Raise each partition's last applied offset of `topic` to the given one, never lower;
        per partition, the offset found before (-1: none): the records above it are this raise's
        to count, those at or below it another worker's. With `raise_id`, a raise is noted in
        the partition's raise log (its last COMMIT_LOG_LENGTH) for `raised`."""
        ...

    async def raised(self, topic: str, partition: int, raise_id: str) -> int | None:
        """The offset `raise_id` found when it raised `partition` of `topic` (its reply lost),
        or None when it raised nothing there (or is older than the log keeps)."""
        ...


class FloorStore(Protocol):
    """The reads behind the floor: agents' window sums, live waits and the indexes."""

    async def window_sums(self, pairs: AgentPairs, reads: Sequence[BucketRead]) -> list[dict[str, list[int]]]:
        """For each (shop, agent): window name -> summed cohort vector."""
        ...

    async def waiting(
        self, pairs: AgentPairs, oldest_allowed_ms: int
    ) -> list[tuple[int, int | None, str | None]]:
        """For each (shop, agent): (waiting buyers, oldest wait start ms, that buyer's id)."""
        ...

    async def shops(self, now_ms: int) -> list[str]: ...

    async def agents(self, shop: str, now_ms: int) -> list[str]: ...


class ReportStore(Protocol):
    """The reads behind a date-range report: whole day buckets, and who was active since."""

    async def day_vectors(self, pairs: AgentPairs, days: Sequence[int]) -> list[list[list[int]]]:
        """For each (shop, agent), for each business day: that day bucket as a vector of DAY_FIELDS
        (projection.py): the cohort counters, then the first-response histogram."""
        ...

    async def shops_since(self, since_ms: int) -> list[str]: ...

    async def agents_since(self, shop: str, since_ms: int) -> list[str]: ...


class DetailsStore(Protocol):
    """The drill-down rows (agents/core/details.py), for the lists behind the report's numbers."""

    async def details(self, keys: Sequence[str]) -> list[dict[str, bytes]]:
        """Each hash of `keys` (keys.details_key) whole, field -> row, in order; {} when absent."""
        ...


class TrendStore(Protocol):
    """The reads behind the floor's trends: the last two hours of an agent's fine buckets, and
    the leader's minute samples of waiting buyers."""

    async def trend_vectors(self, pairs: AgentPairs, now_s: int) -> list[list[list[int]]]: ...

    async def waiting_samples(self, shop: str, minutes: Sequence[int]) -> list[int | None]: ...
