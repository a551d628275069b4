"""Apply one batch of Kafka records to Redis, exactly once. No Faust in here.

Flow: decode every record once → group events by buyer → in one Redis transaction,
load the partitions' offsets and the buyers' states, skip records already applied,
fold, diff, and commit state + aggregates + offsets together. Rejected records go to
the dead-letter sink before the commit, so a crash can repeat a dead letter but never
lose one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from agents.core.calendar import MS_PER_DAY, MS_PER_HOUR
from agents.core.engine import Horizon, Outcome, apply_buyer_events
from agents.core.policy import PolicyBook, ShopPolicy
from agents.exposure.metrics import WorkerMetrics
from agents.store import keys
from agents.store.redis_store import CommitConflict, RedisStore, Snapshot, encode_state
from agents.store.writes import WriteSet, add_buyer_delta
from streams.deadletter import DeadLetter
from streams.decoding import EventDecoder, Rejection
from streams.events import Event


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(slots=True)
class BatchReport:
    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)  # (topic, outcome) -> n
    rejected: dict[str, int] = field(default_factory=dict)
    filtered: dict[str, int] = field(default_factory=dict)
    skipped_already_applied: int = 0
    attempts: int = 0

    def count(self, topic: str, outcome: str) -> None:
        self.outcomes[(topic, outcome)] = self.outcomes.get((topic, outcome), 0) + 1


DeadLetterSink = Callable[[Sequence[DeadLetter]], Awaitable[None]]
Clock = Callable[[], int]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class BatchProcessor:
    def __init__(
        self,
        store: RedisStore,
        policies: PolicyBook,
        decoder: EventDecoder,
        dead_letters: DeadLetterSink,
        metrics: WorkerMetrics | None = None,
        clock: Clock = wall_clock_ms,
        wait_limit_hours: float = 24.0,
        max_conflict_retries: int = 20,
        input_topics: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.policies = policies
        self.decoder = decoder
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.clock = clock
        self.wait_limit_hours = wait_limit_hours
        self.max_conflict_retries = max_conflict_retries
        # A buyer's state depends on partition N of every input topic, so a batch is fenced
        # by the offsets of all of them (ownership of N moves for both topics together).
        self.input_topics = tuple(input_topics)

    async def process(self, records: Sequence[Record]) -> BatchReport:
        started = time.perf_counter()
        now_ms = self.clock()
        decoded = [self.decoder.decode(r.value, r.key, now_ms) for r in records]
        for attempt in range(1, self.max_conflict_retries + 1):
            report = BatchReport(attempts=attempt)
            try:
                await self._apply(records, decoded, now_ms, report)
            except CommitConflict:
                if self.metrics:
                    self.metrics.conflicts.inc()
                continue
            self._observe(report, time.perf_counter() - started)
            return report
        raise CommitConflict(f"gave up after {self.max_conflict_retries} conflicting attempts")

    async def _apply(
        self,
        records: Sequence[Record],
        decoded: list[Event | Rejection],
        now_ms: int,
        report: BatchReport,
    ) -> None:
        fenced = {(r.topic, r.partition) for r in records}
        fenced |= {(topic, partition) for _, partition in fenced for topic in self.input_topics}
        offset_keys = sorted(keys.offset_key(topic, partition) for topic, partition in fenced)
        by_buyer: dict[str, list[int]] = {}
        for index, item in enumerate(decoded):
            if not isinstance(item, Rejection):
                by_buyer.setdefault(keys.buyer_key(item.shop_id, item.buyer_id), []).append(index)

        async def compute(snapshot: Snapshot) -> WriteSet:
            return await self._compute(records, decoded, by_buyer, snapshot, now_ms, report)

        await self.store.run_batch(offset_keys, sorted(by_buyer), compute)

    async def _compute(
        self,
        records: Sequence[Record],
        decoded: list[Event | Rejection],
        by_buyer: dict[str, list[int]],
        snapshot: Snapshot,
        now_ms: int,
        report: BatchReport,
    ) -> WriteSet:
        writes = WriteSet()
        fresh = [r.offset > snapshot.offsets[keys.offset_key(r.topic, r.partition)] for r in records]
        report.skipped_already_applied = fresh.count(False)
        letters: list[DeadLetter] = []
        for index, item in enumerate(decoded):
            if fresh[index] and isinstance(item, Rejection):
                record = records[index]
                letters.append(
                    DeadLetter.of(
                        item, record.topic, record.partition, record.offset, record.key, record.value
                    )
                )
                report.count(record.topic, "rejected")
                report.rejected[item.reason.value] = report.rejected.get(item.reason.value, 0) + 1
        if letters:
            await self.dead_letters(letters)

        wait_limit_ms = int(self.wait_limit_hours * MS_PER_HOUR)
        horizons: dict[str, Horizon] = {}
        for buyer_key, indexes in by_buyer.items():
            indexes = [i for i in indexes if fresh[i]]
            if not indexes:
                continue
            events: list[Event] = [decoded[i] for i in indexes]  # type: ignore[misc]
            first = events[0]
            policy: ShopPolicy = self.policies(first.shop_id)
            horizon = horizons.get(first.shop_id)
            if horizon is None:
                horizon = horizons[first.shop_id] = Horizon.at(policy, now_ms)
            state = snapshot.states[buyer_key]
            delta = apply_buyer_events(state, events, policy, horizon, self.wait_limit_hours)
            for i, outcome in zip(indexes, delta.outcomes, strict=True):
                if outcome is Outcome.FILTERED:
                    report.filtered[first.shop_id] = report.filtered.get(first.shop_id, 0) + 1
                    report.count(records[i].topic, Outcome.APPLIED.value)
                else:
                    report.count(records[i].topic, outcome.value)
            if delta.changed:
                writes.buyer_states[buyer_key] = encode_state(state)
                writes.buyer_ttl_ms[buyer_key] = (28 + 1) * MS_PER_DAY + policy.after_sale_ms
                add_buyer_delta(writes, policy, first.buyer_id, delta, now_ms, wait_limit_ms)
        for record, is_fresh in zip(records, fresh, strict=True):
            if is_fresh:
                key = keys.offset_key(record.topic, record.partition)
                writes.offsets[key] = max(writes.offsets.get(key, -1), record.offset)
        return writes

    def _observe(self, report: BatchReport, seconds: float) -> None:
        if self.metrics is None:
            return
        self.metrics.batches.inc()
        self.metrics.batch_seconds.observe(seconds)
        for (topic, outcome), n in report.outcomes.items():
            self.metrics.events.labels(topic, outcome).inc(n)
        for reason, n in report.rejected.items():
            self.metrics.rejected.labels(reason).inc(n)
        for shop, n in report.filtered.items():
            self.metrics.filtered.labels(shop).inc(n)
