"""`rebuild`'s reading: given input partitions, every record they hold from the beginning up to
their end at the start, through `apply` in batches, with a tally of the records done.

One process reads every partition (`rebuild`), or each of `rebuild --jobs N`'s processes reads
its share (streams/commands/rebuild_jobs.py); both go through `replay`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from config.settings import Settings
from streams.wire.records import KafkaRecord, Record
from streams.wire.security import client_kwargs

Apply = Callable[[Sequence[KafkaRecord]], Awaitable[None]]
# Waits until everything `apply` was given is in Redis (the worker's store applies behind).
Settle = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Rebuilt:
    applied: int
    # Per input partition that held records: its first record's Kafka timestamp, and whether
    # Kafka's retention had deleted older ones (then that first day may be partial).
    firsts: list[tuple[int, bool]]


class Tally(Protocol):
    """Where the records done are counted: a progress bar, or a job's report to its parent."""

    def begin(self, total: int) -> None: ...

    def advance(self, records: int) -> None: ...


class RateColumn(ProgressColumn):
    """Events per second, as rich measures the task's recent speed."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f} events/s" if task.speed else "", style="progress.data.speed")


def progress_columns() -> tuple[ProgressColumn, ...]:
    """The one display of a rebuild: records done of total, rate, ETA."""
    return (TextColumn("rebuild"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeRemainingColumn())


async def replay(
    settings: Settings, partitions: Sequence[TopicPartition], apply: Apply, settle: Settle, tally: Tally
) -> tuple[Rebuilt, float]:
    """Every record of `partitions` before their current end through `apply`, and settled; what
    was applied, and the seconds it took from the first fetch."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_poll_records=5000,
        **client_kwargs(settings.kafka.security),
    )
    await consumer.start()
    try:
        consumer.assign(list(partitions))
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(list(partitions))
        starts = await consumer.beginning_offsets(list(partitions))
        started = time.monotonic()
        total = sum(ends[tp] - starts[tp] for tp in partitions)
        tally.begin(total)
        applied, firsts = await _reapply(consumer, ends, total, apply, tally)
        await settle()
    finally:
        await consumer.stop()
    rebuilt = Rebuilt(applied, [(first, starts[tp] > 0) for tp, first in firsts.items()])
    return rebuilt, time.monotonic() - started


async def _reapply(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int], total: int, apply: Apply, tally: Tally
) -> tuple[int, dict[TopicPartition, int]]:
    """Every record before `ends` through `apply`. Returns how many, and each partition's first
    record's timestamp."""
    applied = 0
    firsts: dict[TopicPartition, int] = {}
    while applied < total:
        batch = await _next_batch(consumer, ends, firsts)
        if batch:
            await apply(batch)
            applied += len(batch)
            tally.advance(len(batch))
        elif await _caught_up(consumer, ends):
            break
    return applied, firsts


async def _next_batch(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int], firsts: dict[TopicPartition, int]
) -> list[Record]:
    """One fetch, cut at `ends`; notes the first timestamp of each partition it reads first."""
    batch: list[Record] = []
    for tp, records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).items():
        if records and tp not in firsts:
            firsts[tp] = min(r.timestamp for r in records)
        batch.extend(
            Record(tp.topic, tp.partition, r.offset, r.key, r.value) for r in records if r.offset < ends[tp]
        )
    return batch


async def _caught_up(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    return all([await consumer.position(tp) >= end for tp, end in ends.items()])
