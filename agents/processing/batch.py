"""Apply one batch of Kafka records to Redis, exactly once. No Faust in here.

Flow: decode every record once → group records by input partition and events by buyer →
load each partition's offsets and buyers' states → skip records already applied → fold,
diff → commit each partition's share (buyer states + offsets + outbox, fenced by the
offsets it was computed from) → apply the outboxes to the agents (agents/store/batches.py).
Rejected records go to the dead-letter sink before the commit, so a crash can repeat a
dead letter but never lose one.

A batch's verdicts (each record's decoding, the batch's `now`, the shops' horizons) are made
once, in `judge`, and kept through every retry: a record dead-lettered as `future_ts` must not
be applied by a retry whose clock has moved on. A commit may land in Redis and its reply be
lost; the retry then asks the partition's commit log for that commit's id, and counts its
report if it is there.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from agents.core.buyer import BuyerState, unpaid_until_ms
from agents.core.clock import Clock, wall_clock_ms
from agents.core.engine import Horizon, Outcome, apply_buyer_events
from agents.core.horizon import attribution_reach_ms
from agents.core.policy import PolicyBook, ShopPolicy
from agents.core.windows import SLIDING_TTL_MS, WINDOW_DAYS
from agents.exposure.metrics import WorkerMetrics
from agents.store import keys
from agents.store.errors import STORE_ERRORS, RetryHook
from agents.store.errors import until_done as store_until_done
from agents.store.protocols import CommitConflict, PartitionCommit, PartitionSnapshot, PartitionStore
from agents.store.state_codec import encode_state
from agents.store.writes import WriteSet, add_buyer_delta
from config.calendar import MS_PER_HOUR
from streams.contract.events import Event
from streams.wire.deadletter import DeadLetter
from streams.wire.decoding import EventDecoder, Rejection
from streams.wire.partitioning import Partitioner
from streams.wire.records import KafkaRecord


@dataclass(slots=True)
class BatchReport:
    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)  # (topic, outcome) -> n
    rejected: dict[str, int] = field(default_factory=dict)
    filtered: dict[str, int] = field(default_factory=dict)
    skipped_already_applied: int = 0
    attempts: int = 0

    def count(self, topic: str, outcome: str) -> None:
        self.outcomes[(topic, outcome)] = self.outcomes.get((topic, outcome), 0) + 1

    @property
    def counted(self) -> int:
        """Records with an outcome here (each fresh record has exactly one)."""
        return sum(self.outcomes.values())

    def add(self, other: BatchReport) -> None:
        """Fold in the report of one committed partition."""
        for key, n in other.outcomes.items():
            self.outcomes[key] = self.outcomes.get(key, 0) + n
        for reason, n in other.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + n
        for shop, n in other.filtered.items():
            self.filtered[shop] = self.filtered.get(shop, 0) + n
        self.skipped_already_applied += other.skipped_already_applied


@dataclass(slots=True)
class _Attempted:
    """A commit sent for one partition whose reply never came: its id (the partition's commit
    log has it if it landed), and what it would have counted."""

    commit_id: str
    report: BatchReport


@dataclass(slots=True)
class Batch:
    """A batch with its verdicts, made once (`BatchProcessor.judge`) and kept across retries."""

    records: Sequence[KafkaRecord]
    decoded: list[Event | Rejection]
    now_ms: int
    horizons: dict[str, Horizon] = field(default_factory=dict)  # per shop, at now_ms
    misrouted: set[int] = field(default_factory=set)  # on a partition murmur2 would not choose
    # Commits in flight when an attempt failed, per partition: the next load tells if they landed.
    unanswered: dict[int, _Attempted] = field(default_factory=dict)
    landed: BatchReport = field(default_factory=BatchReport)  # what those that landed counted
    # Partitions whose commit was answered, and what their shares counted: kept across the
    # retries of a failed attempt, which then leave those partitions alone. Counted in the
    # report the batch ends with, once.
    done: set[int] = field(default_factory=set)
    committed: BatchReport = field(default_factory=BatchReport)


@dataclass(slots=True)
class _Share:
    """One input partition's records in a batch (indexes into the batch), and their report."""

    partition: int
    buyers: dict[str, list[int]] = field(default_factory=dict)  # buyer key -> records, in order
    rejected: list[int] = field(default_factory=list)
    report: BatchReport = field(default_factory=BatchReport)

    def indexes(self) -> list[int]:
        return [*self.rejected, *(i for indexes in self.buyers.values() for i in indexes)]


DeadLetterSink = Callable[[Sequence[DeadLetter]], Awaitable[None]]
REJECTED = "rejected"
MISROUTED = "misrouted"  # applied, but its key's murmur2 names another partition
# The `outcome` label's values of kefu_events_total (a filtered event counts as applied).
OUTCOMES = (
    Outcome.APPLIED.value,
    Outcome.DUPLICATE.value,
    Outcome.LATE.value,
    Outcome.UNMATCHED.value,
    REJECTED,
    MISROUTED,
)
# A batch is retried through these: an outage, or other workers committing first too often.
RETRIED_ERRORS: tuple[type[BaseException], ...] = (*STORE_ERRORS, CommitConflict)

log = logging.getLogger(__name__)
T = TypeVar("T")


async def until_done(
    attempt: Callable[[], Awaitable[T]],
    retried: tuple[type[BaseException], ...],
    metrics: WorkerMetrics,
    what: str,
) -> T:
    """`attempt()` until it returns, through `retried` errors (an outage), each counted and
    logged; a fatal store error (a login, ACL or TLS problem) raises at once."""
    return await store_until_done(attempt, retried, retry_counted(metrics, f"applying {what}"))


def retry_counted(metrics: WorkerMetrics, what: str) -> RetryHook:
    """A failed try of `what`: counted in kefu_redis_errors_total, and logged with its next delay."""

    def on_retry(exc: BaseException, delay: float) -> None:
        metrics.redis_errors.inc()
        log.warning("%s failed (%s); retrying in %.1fs", what, exc, delay)

    return on_retry


def _fence(batch: Batch, share: _Share, snapshot: PartitionSnapshot) -> tuple[set[int], dict[str, int]]:
    """The fence: the share's records past its partition's offsets in Redis (fresh), and the
    offsets they move it to; a record at or below them was applied already, and is skipped."""
    records, report = batch.records, share.report
    offsets = dict(snapshot.offsets)
    fresh: set[int] = set()
    for i in share.indexes():
        record = records[i]
        if record.offset > snapshot.offsets[record.topic]:
            fresh.add(i)
            offsets[record.topic] = max(offsets[record.topic], record.offset)
        else:
            report.skipped_already_applied += 1
    return fresh, offsets


def _dead_letters(batch: Batch, share: _Share, fresh: set[int], letters: list[DeadLetter]) -> None:
    """A dead letter in `letters` for each fresh rejected record of the share, counted in its report."""
    report = share.report
    for i in share.rejected:
        item, record = batch.decoded[i], batch.records[i]
        if i in fresh and isinstance(item, Rejection):
            letters.append(
                DeadLetter.of(item, record.topic, record.partition, record.offset, record.key, record.value)
            )
            report.count(record.topic, REJECTED)
            report.rejected[item.reason.value] = report.rejected.get(item.reason.value, 0) + 1


class BatchProcessor:
    def __init__(
        self,
        store: PartitionStore,
        policies: PolicyBook,
        decoder: EventDecoder,
        dead_letters: DeadLetterSink,
        metrics: WorkerMetrics,
        clock: Clock = wall_clock_ms,
        max_conflict_retries: int = 20,
        input_topics: Sequence[str] = (),
        partitioner: Partitioner | None = None,
    ) -> None:
        self.store = store
        self.policies = policies
        self.decoder = decoder
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.clock = clock
        self.max_conflict_retries = max_conflict_retries
        # A buyer's state depends on partition N of every input topic, so a partition's share
        # is fenced by its offsets in all of them (ownership of N moves for both topics together).
        self.input_topics = tuple(input_topics)
        self.partitioner = partitioner
        self._misrouted_topics: set[str] = set()  # warned about once each
        # Commit ids: this processor's, unique across workers and restarts, and per attempt.
        self._identity = uuid.uuid4().hex[:16]
        self._commit_ids = itertools.count(1)
        # Live, anything older than the `28d` window is late: its days are history, frozen.
        # `rebuild` restores that history too, back to each shop's retention_days.
        self.restore_history = False

    async def process_until_done(self, records: Sequence[KafkaRecord]) -> BatchReport:
        """`process`, retried with backoff through Redis outages: never skip a record.

        The stream acks the batch when this returns, so returning early would let Kafka
        commit records that Redis does not hold. A configuration error (login, ACL, TLS
        trust) does not heal by waiting: it raises StoreAccessError, which stops the worker.
        """
        batch = self.judge(records)
        what = f"a batch of {len(records)} records"
        return await until_done(lambda: self.process(batch), RETRIED_ERRORS, self.metrics, what)

    def judge(self, records: Sequence[KafkaRecord]) -> Batch:
        """The batch's verdicts, at one `now`: every retry of it reuses them."""
        now_ms = self.clock()
        batch = Batch(records, [self.decoder.decode(r.value, r.key, now_ms) for r in records], now_ms)
        if self.partitioner is not None:
            self._find_misrouted(batch, self.partitioner)
        return batch

    async def process(self, records: Sequence[KafkaRecord] | Batch) -> BatchReport:
        """Apply `records` (judged here unless already); a partition that another worker
        committed meanwhile is recomputed from fresh state (its records that the other worker
        applied are then skipped)."""
        started = time.perf_counter()
        batch = records if isinstance(records, Batch) else self.judge(records)
        pending = [i for i, record in enumerate(batch.records) if record.partition not in batch.done]
        for attempt in range(1, self.max_conflict_retries + 1):
            moved = await self._apply(batch, pending)
            if not moved:
                report = BatchReport(attempts=attempt)
                report.add(batch.committed)
                # A landed commit's records were applied by it; this attempt saw them as skipped.
                report.add(batch.landed)
                report.skipped_already_applied -= batch.landed.counted
                batch.committed, batch.landed = BatchReport(), BatchReport()  # counted now, never again
                self._observe(report, time.perf_counter() - started)
                self._observe_lag(batch)
                return report
            self.metrics.conflicts.inc()
            pending = [i for i in pending if batch.records[i].partition in moved]
        raise CommitConflict(f"gave up after {self.max_conflict_retries} conflicting attempts")

    async def _apply(self, batch: Batch, indexes: list[int]) -> set[int]:
        """One attempt at the records `indexes`; the partitions that moved on (not committed).
        The others are the batch's `done`, their shares' reports in its `committed`."""
        topics = sorted({*self.input_topics, *(batch.records[i].topic for i in indexes)})
        shares: dict[int, _Share] = {}
        for i in indexes:
            record, item = batch.records[i], batch.decoded[i]
            share = shares.setdefault(record.partition, _Share(record.partition))
            if isinstance(item, Rejection):
                share.rejected.append(i)
            else:
                buyer = keys.buyer_key(record.partition, item.shop_id, item.buyer_id)
                share.buyers.setdefault(buyer, []).append(i)
        store = self.store
        snapshots = await store.load({p: sorted(s.buyers) for p, s in shares.items()}, topics)
        await store.catch_up(snapshots.values())
        await self._settle_unanswered(batch)
        commits: list[PartitionCommit] = []
        letters: list[DeadLetter] = []
        for partition, share in shares.items():
            commit = self._compute(batch, share, snapshots[partition], letters)
            if commit is not None:
                commits.append(commit)
        if letters:
            await self.dead_letters(letters)
        # Until the store answers, each of these commits may or may not have landed.
        batch.unanswered = {c.partition: _Attempted(c.commit_id, shares[c.partition].report) for c in commits}
        moved = await store.commit(commits)
        batch.unanswered = {}
        for partition, share in shares.items():
            if partition not in moved:
                batch.done.add(partition)
                batch.committed.add(share.report)
        return moved

    async def _settle_unanswered(self, batch: Batch) -> None:
        """A commit whose reply was lost landed if its partition's commit log holds its id: its
        records are skipped from here on, so its report is the one to count. Not the offsets:
        another worker's commit of the same records leaves the same ones (and counts them
        itself), and a later commit of another worker moves them past what this one wrote."""
        # One at a time, each settled once: a check that fails (an outage) leaves only the
        # commits it did not settle for the next attempt to ask about.
        for partition in list(batch.unanswered):
            attempted = batch.unanswered[partition]
            if await self.store.landed(partition, attempted.commit_id):
                attempted.report.skipped_already_applied = 0  # counted by the attempt that succeeds
                batch.landed.add(attempted.report)
            del batch.unanswered[partition]

    def _compute(
        self, batch: Batch, share: _Share, snapshot: PartitionSnapshot, letters: list[DeadLetter]
    ) -> PartitionCommit | None:
        """One partition's share of the batch; None when all its records were applied already."""
        fresh, offsets = _fence(batch, share, snapshot)
        if not fresh:
            return None
        _dead_letters(batch, share, fresh, letters)
        writes = WriteSet()
        for buyer_key, all_indexes in share.buyers.items():
            indexes = [i for i in all_indexes if i in fresh]
            if indexes:
                self._fold(batch, share.report, buyer_key, snapshot.states[buyer_key], indexes, writes)
        commit_id = f"{self._identity}:{next(self._commit_ids)}"
        return PartitionCommit(snapshot.partition, snapshot.offsets, offsets, writes, commit_id)

    def _fold(
        self,
        batch: Batch,
        report: BatchReport,
        buyer_key: str,
        state: BuyerState,
        indexes: list[int],
        writes: WriteSet,
    ) -> None:
        """One buyer's fresh events folded into its state: each one's outcome counted in
        `report`, and the state and the agents' changes added to `writes`."""
        records = batch.records
        events: list[Event] = [batch.decoded[i] for i in indexes]  # type: ignore[misc]
        first = events[0]
        policy: ShopPolicy = self.policies(first.shop_id)
        delta = apply_buyer_events(state, events, policy, self._horizon(batch, first.shop_id, policy))
        for i, outcome in zip(indexes, delta.outcomes, strict=True):
            if outcome is Outcome.FILTERED:
                report.filtered[first.shop_id] = report.filtered.get(first.shop_id, 0) + 1
                outcome = Outcome.APPLIED
            name = MISROUTED if outcome is Outcome.APPLIED and i in batch.misrouted else outcome.value
            report.count(records[i].topic, name)
        if delta.changed:
            writes.buyer_states[buyer_key] = encode_state(state)
            writes.buyer_ttl_ms[buyer_key] = self._buyer_ttl_ms(state, policy, batch.now_ms)
            add_buyer_delta(writes, policy, first.buyer_id, delta, batch.now_ms)

    def _horizon(self, batch: Batch, shop: str, policy: ShopPolicy) -> Horizon:
        """The shop's horizon at the batch's `now`, made once per batch."""
        horizon = batch.horizons.get(shop)
        if horizon is None:
            days = policy.retention_days if self.restore_history else WINDOW_DAYS
            horizon = batch.horizons[shop] = Horizon.at(policy, batch.now_ms, days)
        return horizon

    def _buyer_ttl_ms(self, state: BuyerState, policy: ShopPolicy, now_ms: int) -> int:
        """An idle buyer is kept as long as any window or after-sale look-back needs it, and
        an attribution window more (a late order may still reach its last consultation),
        counted from its newest event (a rebuild's months-old buyers leave soon), and as long
        as an order of it that was never paid can still be (buyer.py, UNPAID_KEPT_DAYS)."""
        ttl = SLIDING_TTL_MS + policy.after_sale_ms + attribution_reach_ms(policy)
        if self.restore_history:
            newest = max(state.seen.values(), default=now_ms)
            ttl = max(MS_PER_HOUR, min(ttl, newest + ttl - now_ms))
        unpaid_until = unpaid_until_ms(state, policy.after_sale_ms)
        if unpaid_until is not None:
            ttl = max(ttl, unpaid_until - now_ms)
        return ttl

    def _find_misrouted(self, batch: Batch, partitioner: Partitioner) -> None:
        for i, record in enumerate(batch.records):
            if record.key is None or isinstance(batch.decoded[i], Rejection):
                continue
            home = partitioner.home(record.key)
            if home == record.partition:
                continue
            batch.misrouted.add(i)
            if record.topic not in self._misrouted_topics:
                self._misrouted_topics.add(record.topic)
                log.warning(
                    "%s[%d] holds a record that murmur2 of its key puts on partition %d of %d: its "
                    "producer does not use Kafka's default partitioner, so one buyer's messages and "
                    "orders can land on different workers and conversion goes wrong. Produce with "
                    "murmur2 (librdkafka: partitioner=murmur2_random). Counted as misrouted; "
                    "after `repartition`, older records count so too (events.md)",
                    record.topic,
                    record.partition,
                    home,
                    partitioner.partitions,
                )

    def _observe_lag(self, batch: Batch) -> None:
        """Once per batch, from its newest event: how far the numbers trail the events."""
        newest = max((item.ts for item in batch.decoded if not isinstance(item, Rejection)), default=None)
        if newest is not None:
            self.metrics.event_lag_seconds.observe(max(0, self.clock() - newest) / 1000)

    def _observe(self, report: BatchReport, seconds: float) -> None:
        self.metrics.batches.inc()
        self.metrics.batch_seconds.observe(seconds)
        for (topic, outcome), n in report.outcomes.items():
            self.metrics.events.labels(topic, outcome).inc(n)
        for reason, n in report.rejected.items():
            self.metrics.rejected.labels(reason).inc(n)
        for shop, n in report.filtered.items():
            self.metrics.filtered.labels(shop).inc(n)
