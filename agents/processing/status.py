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

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(slots=True)
class StatusBatch:
    """A batch with its verdicts, made once and kept across retries (see batch.py: a record
    dead-lettered as `future_ts` must not be applied by a retry whose clock moved on)."""

    records: Sequence[KafkaRecord]
    decoded: list[AgentStatus | Rejection]
    now_ms: int


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

    async def process_until_done(self, records: Sequence[KafkaRecord]) -> BatchReport:
        """`process`, retried with backoff through Redis outages (batch.py's rules)."""
        batch = self.judge(records)
        what = f"{len(records)} agent status records"
        return await until_done(lambda: self.process(batch), STORE_ERRORS, self.metrics, what)

    def judge(self, records: Sequence[KafkaRecord]) -> StatusBatch:
        now_ms = self.clock()
        return StatusBatch(records, [self.decoder.decode(r.value, r.key, now_ms) for r in records], now_ms)

    async def process(self, records: Sequence[KafkaRecord] | StatusBatch) -> BatchReport:
        started = time.perf_counter()
        batch = records if isinstance(records, StatusBatch) else self.judge(records)
        report = BatchReport()
        fresh, last = await self._fresh(batch, report)
        letters = []
        writes: dict[tuple[str, str], list[int]] = {}
        for i in fresh:
            record, item = batch.records[i], batch.decoded[i]
            if isinstance(item, Rejection):
                letters.append(
                    DeadLetter.of(
                        item, record.topic, record.partition, record.offset, record.key, record.value
                    )
                )
                report.count(record.topic, REJECTED)
                report.rejected[item.reason.value] = report.rejected.get(item.reason.value, 0) + 1
            else:
                writes.setdefault((item.shop_id, item.agent_id), []).append(i)
        if letters:
            await self.dead_letters(letters)
        agent_writes = [self._write(batch, shop, agent, indexes) for (shop, agent), indexes in writes.items()]
        outcomes = await self.store.apply_status(agent_writes, batch.now_ms) if agent_writes else []
        for indexes, results in zip(writes.values(), outcomes, strict=True):
            for i, outcome in zip(indexes, results, strict=True):
                report.count(batch.records[i].topic, outcome)
        for topic, offsets in last.items():
            await self.store.raise_offsets(topic, offsets)
        self._observe(report, time.perf_counter() - started)
        return report

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
