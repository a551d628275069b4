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
from agents.core.windows import BucketRead
from agents.store.writes import WriteSet


class CommitConflict(Exception):
    """Another worker committed one of the batch's partitions first."""


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


AgentPairs = Sequence[tuple[str, str]]  # (shop, agent)


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


class TrendStore(Protocol):
    """The reads behind the floor's trends: the last two hours of an agent's fine buckets, and
    the leader's minute samples of waiting buyers."""

    async def trend_vectors(self, pairs: AgentPairs, now_s: int) -> list[list[list[int]]]: ...

    async def waiting_samples(self, shop: str, minutes: Sequence[int]) -> list[int | None]: ...
