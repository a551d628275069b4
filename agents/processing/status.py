"""Apply one batch of `kefu.agents` records (agent status, v3) to Redis, exactly once. No Faust.

Flow: decode every record once → skip records at or below their partition's applied offset →
dead-letter the rejected → keep each agent's events as change points (one script per agent,
idempotent per event id) → raise the partitions' applied offsets. A crash anywhere before the
raise re-reads the batch, whose applied events are then no-ops; a crash after it loses nothing.
Dead letters go out before the raise, so one can repeat, never go missing (as batch.py).

The topic is keyed by agent, so it needs no co-partitioning and no buyer state: nothing here
touches the buyer topics' partitions, fence or outbox, and their hot path is unchanged.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from agents.core.clock import Clock, wall_clock_ms
from agents.core.policy import PolicyBook
from agents.core.status import kept_from_ms
from agents.exposure.metrics import WorkerMetrics
from agents.processing.batch import REJECTED, BatchReport, DeadLetterSink, until_done
from agents.store.errors import STORE_ERRORS
from agents.store.protocols import AgentStatusWrite, StatusChange, StatusStore
from config.calendar import MS_PER_DAY
from streams.contract.events import AgentStatus
from streams.wire.deadletter import DeadLetter
from streams.wire.decoding import Rejection
from streams.wire.records import KafkaRecord
from streams.wire.status_decoding import StatusDecoder

log = logging.getLogger(__name__)


# One fresh record's outcome, counted once its partition's raise says it is this worker's:
# (offset, topic, outcome, rejection reason or None).
Entry = tuple[int, str, str, str | None]


@dataclass(slots=True)
class _Raise:
    """A raise sent for one partition whose reply never came: its id (the partition's raise
    log has it if it landed) and the outcomes it would have counted."""

    raise_id: str
    entries: list[Entry]


@dataclass(slots=True)
class StatusBatch:
    """A batch with its verdicts, made once and kept across retries (see batch.py: a record
    dead-lettered as `future_ts` must not be applied by a retry whose clock moved on), and what
    its attempts did that a retry must not do again: the records dead-lettered, and the raises
    whose replies were lost."""

    records: Sequence[KafkaRecord]
    decoded: list[AgentStatus | Rejection]
    now_ms: int
    lettered: set[int] = field(default_factory=set)
    unanswered: dict[tuple[str, int], _Raise] = field(default_factory=dict)
    # The counts of the raises that landed, answered or settled, until an attempt returns them:
    # a later failure of the same attempt must not lose them. `settled`: how many of their
    # records were an earlier attempt's (skipped as applied by the attempt that returns).
    landed: BatchReport = field(default_factory=BatchReport)
    settled: int = 0


class StatusProcessor:
    def __init__(
        self,
        store: StatusStore,
        policies: PolicyBook,
        decoder: StatusDecoder,
        dead_letters: DeadLetterSink,
        metrics: WorkerMetrics,
        clock: Clock = wall_clock_ms,
    ) -> None:
        self.store = store
        self.policies = policies
        self.decoder = decoder
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.clock = clock
        self._identity = uuid.uuid4().hex[:16]
        self._raise_ids = itertools.count(1)

    async def process_until_done(self, records: Sequence[KafkaRecord]) -> BatchReport:
        """`process`, retried with backoff through Redis outages (batch.py's rules)."""
        batch = self.judge(records)
        what = f"{len(records)} agent status records"
        return await until_done(lambda: self.process(batch), STORE_ERRORS, self.metrics, what)

    def judge(self, records: Sequence[KafkaRecord]) -> StatusBatch:
        now_ms = self.clock()
        return StatusBatch(records, [self.decoder.decode(r.value, r.key, now_ms) for r in records], now_ms)

    async def process(self, records: Sequence[KafkaRecord] | StatusBatch) -> BatchReport:
        """Apply the batch's fresh records and raise their partitions' offsets. Each record is
        counted by the worker whose raise moves its partition past it: two workers that both
        held a partition across a rebalance apply the same records (harmless: idempotent per
        event), and only one counts them."""
        started = time.perf_counter()
        batch = records if isinstance(records, StatusBatch) else self.judge(records)
        report = BatchReport()
        await self._settle_unanswered(batch)
        fresh, last = await self._fresh(batch, report)
        letters = []
        entries: dict[tuple[str, int], list[Entry]] = {}
        writes: dict[tuple[str, str], list[int]] = {}
        for i in fresh:
            record, item = batch.records[i], batch.decoded[i]
            if isinstance(item, Rejection):
                if i not in batch.lettered:  # an earlier attempt sent it (its raise then failed)
                    letters.append(
                        DeadLetter.of(
                            item, record.topic, record.partition, record.offset, record.key, record.value
                        )
                    )
                entry = (record.offset, record.topic, REJECTED, item.reason.value)
                entries.setdefault((record.topic, record.partition), []).append(entry)
            else:
                writes.setdefault((item.shop_id, item.agent_id), []).append(i)
        if letters:
            await self.dead_letters(letters)
            batch.lettered.update(i for i in fresh if isinstance(batch.decoded[i], Rejection))
        agent_writes = [self._write(batch, shop, agent, indexes) for (shop, agent), indexes in writes.items()]
        outcomes = await self.store.apply_status(agent_writes, batch.now_ms) if agent_writes else []
        for indexes, results in zip(writes.values(), outcomes, strict=True):
            for i, outcome in zip(indexes, results, strict=True):
                record = batch.records[i]
                entries.setdefault((record.topic, record.partition), []).append(
                    (record.offset, record.topic, outcome, None)
                )
        raise_id = f"{self._identity}:{next(self._raise_ids)}"
        for topic, offsets in last.items():
            sent = {(topic, p): _Raise(raise_id, entries.get((topic, p), [])) for p in offsets}
            batch.unanswered.update(sent)  # until Redis answers, each may or may not have landed
            found = await self.store.raise_offsets(topic, offsets, raise_id)
            for partition, boundary in found.items():
                _count(batch.landed, batch.unanswered.pop((topic, partition)).entries, boundary)
        # An earlier attempt's landed raises: their records were skipped above as applied.
        report.skipped_already_applied -= batch.settled
        report.add(batch.landed)
        batch.landed, batch.settled = BatchReport(), 0  # counted now, never again
        self._observe(report, time.perf_counter() - started)
        return report

    async def _settle_unanswered(self, batch: StatusBatch) -> None:
        """Add to the batch's landed counts what an earlier attempt's raises whose replies were
        lost counted, if they landed; each is settled once, even if a later one fails."""
        for (topic, partition), sent in list(batch.unanswered.items()):
            boundary = await self.store.raised(topic, partition, sent.raise_id)
            if boundary is not None:
                _count(batch.landed, sent.entries, boundary)
                batch.settled += len(sent.entries)
            del batch.unanswered[(topic, partition)]

    async def _fresh(
        self, batch: StatusBatch, report: BatchReport
    ) -> tuple[list[int], dict[str, dict[int, int]]]:
        """The records not applied yet (above their partition's applied offset, in Redis), and
        the offset each partition is at once they are."""
        partitions = sorted({(r.topic, r.partition) for r in batch.records})
        applied = dict(zip(partitions, await self.store.applied_offsets(partitions), strict=True))
        fresh: list[int] = []
        last: dict[str, dict[int, int]] = {}
        for i, record in enumerate(batch.records):
            if record.offset <= applied[(record.topic, record.partition)]:
                report.skipped_already_applied += 1
                continue
            fresh.append(i)
            offsets = last.setdefault(record.topic, {})
            offsets[record.partition] = max(record.offset, offsets.get(record.partition, -1))
        return fresh, last

    def _write(self, batch: StatusBatch, shop: str, agent: str, indexes: list[int]) -> AgentStatusWrite:
        policy = self.policies(shop)
        changes = []
        for i in indexes:
            event, record = cast(AgentStatus, batch.decoded[i]), batch.records[i]
            changes.append(
                StatusChange(event.event_id, event.ts, event.status, record.partition, record.offset)
            )
        return AgentStatusWrite(
            shop,
            agent,
            changes,
            kept_from_ms(batch.now_ms, policy.calendar, policy.retention_days),
            # A day past the history kept: an agent idle that long has no status to show.
            (policy.retention_days + 1) * MS_PER_DAY,
        )

    def _observe(self, report: BatchReport, seconds: float) -> None:
        self.metrics.batch_seconds.observe(seconds)
        for (topic, outcome), n in report.outcomes.items():
            self.metrics.events.labels(topic, outcome).inc(n)
        for reason, n in report.rejected.items():
            self.metrics.rejected.labels(reason).inc(n)


def _count(report: BatchReport, entries: Sequence[Entry], boundary: int) -> None:
    """The outcomes of `entries` above `boundary` (the offset their raise found): those at or
    below it were raised, and counted, by another worker."""
    for offset, topic, outcome, reason in entries:
        if offset <= boundary:
            report.skipped_already_applied += 1
            continue
        report.count(topic, outcome)
        if reason is not None:
            report.rejected[reason] = report.rejected.get(reason, 0) + 1
