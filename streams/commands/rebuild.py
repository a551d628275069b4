"""`kefu-pulse rebuild`: recompute every window from Kafka's retention after Redis state was lost.

Workers must be stopped (it refuses while the consumer group has members): it deletes the
kefu-pulse keys, then reads the input topics (the buyer topics, and `kefu.agents` when it
exists) from the beginning up to their current end through the worker's own processors.
Started again, workers resume where it stopped, because they resume from the offsets in Redis.
The topics need the reports' retention (`topics create` sets it): what Kafka has deleted cannot
be restored.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from config.settings import Settings
from streams.wire.consumer_group import input_partitions_of_stopped_group
from streams.wire.records import KafkaRecord, Record
from streams.wire.security import client_kwargs


@dataclass(frozen=True, slots=True)
class Rebuilt:
    applied: int
    # Per input partition that held records: its first record's Kafka timestamp, and whether
    # Kafka's retention had deleted older ones (then that first day may be partial).
    firsts: list[tuple[int, bool]]


async def rebuild(
    settings: Settings,
    delete_state: Callable[[], Awaitable[int]],
    apply: Callable[[Sequence[KafkaRecord]], Awaitable[None]],
    console: Console | None = None,
) -> Rebuilt:
    """Delete the state, then `apply` every retained input record in batches."""
    console = console or Console(stderr=True)
    partitions = input_partitions_of_stopped_group(settings, agents=True)
    deleted = await delete_state()
    console.print(f"rebuild: deleted {deleted} keys; re-reading the input topics from the beginning")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_poll_records=5000,
        **client_kwargs(settings.kafka.security),
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        total = sum(ends[tp] - starts[tp] for tp in partitions)
        applied = 0
        firsts: dict[TopicPartition, int] = {}
        started = time.monotonic()
        columns = (
            TextColumn("rebuild"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("rebuild", total=total)
            while applied < total:
                batch: list[Record] = []
                for tp, records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).items():
                    if records and tp not in firsts:
                        firsts[tp] = min(r.timestamp for r in records)
                    batch.extend(
                        Record(tp.topic, tp.partition, r.offset, r.key, r.value)
                        for r in records
                        if r.offset < ends[tp]
                    )
                if batch:
                    await apply(batch)
                    applied += len(batch)
                    progress.advance(task, len(batch))
                elif all(await _caught_up(consumer, partitions, ends)):
                    break
    finally:
        await consumer.stop()
    elapsed = time.monotonic() - started
    rate = applied / elapsed if elapsed > 0 else 0.0
    console.print(f"rebuild: applied {applied} records in {elapsed:.1f}s ({rate:,.0f} events/s)")
    return Rebuilt(applied, [(first, starts[tp] > 0) for tp, first in firsts.items()])


class RateColumn(ProgressColumn):
    """Events per second, as rich measures the task's recent speed."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f} events/s" if task.speed else "", style="progress.data.speed")


async def _caught_up(
    consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition], ends: dict
) -> list[bool]:
    return [await consumer.position(tp) >= ends[tp] for tp in partitions]
