"""`kefu-pulse rebuild`: recompute every window from Kafka's retention after Redis state was lost.

Workers must be stopped (it refuses while the consumer group has members): it deletes the
kefu-pulse keys, then reads the input topics (the buyer topics, and `kefu.agents` when it
exists) from the beginning up to their current end through the worker's own processors.
Started again, workers resume where it stopped, because they resume from the offsets in Redis.
The topics need the reports' retention (`topics create` sets it): what Kafka has deleted cannot
be restored.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.cli import AppCommand
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

from agents.core.clock import wall_clock_ms
from agents.core.report_range import day_text, restored_from_day
from agents.worker.runtime import Runtime
from config.calendar import calendar_for
from config.settings import Settings
from streams.commands.base import Command, via_redis
from streams.wire.consumer_group import input_partitions_of_stopped_group
from streams.wire.preflight import require_kafka
from streams.wire.records import KafkaRecord, Record
from streams.wire.security import client_kwargs

Apply = Callable[[Sequence[KafkaRecord]], Awaitable[None]]


def register(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    @app.command(base=Command, refusal_prefix="kefu-pulse rebuild: ")
    async def rebuild(self: AppCommand) -> None:
        """Recompute every window from Kafka's retention (workers stopped)."""
        try:
            await require_kafka(settings)
            runtime.processor.restore_history = True
            delete_state = via_redis(settings, runtime.store.delete_state)
            rebuilt = await recompute(
                settings, delete_state, via_redis(settings, runtime.apply_any_until_done)
            )
            print(restored_history(settings, rebuilt), file=sys.stderr)
        finally:
            await runtime.close()


@dataclass(frozen=True, slots=True)
class Rebuilt:
    applied: int
    # Per input partition that held records: its first record's Kafka timestamp, and whether
    # Kafka's retention had deleted older ones (then that first day may be partial).
    firsts: list[tuple[int, bool]]


async def recompute(
    settings: Settings,
    delete_state: Callable[[], Awaitable[int]],
    apply: Apply,
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
        started = time.monotonic()
        total = sum(ends[tp] - starts[tp] for tp in partitions)
        applied, firsts = await _reapply(consumer, ends, total, apply, console)
    finally:
        await consumer.stop()
    elapsed = time.monotonic() - started
    rate = applied / elapsed if elapsed > 0 else 0.0
    console.print(f"rebuild: applied {applied} records in {elapsed:.1f}s ({rate:,.0f} events/s)")
    return Rebuilt(applied, [(first, starts[tp] > 0) for tp, first in firsts.items()])


async def _reapply(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int], total: int, apply: Apply, console: Console
) -> tuple[int, dict[TopicPartition, int]]:
    """Every record before `ends` through `apply`, with a progress bar. Returns how many, and
    each partition's first record's timestamp."""
    applied = 0
    firsts: dict[TopicPartition, int] = {}
    columns = (TextColumn("rebuild"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("rebuild", total=total)
        while applied < total:
            batch = await _next_batch(consumer, ends, firsts)
            if batch:
                await apply(batch)
                applied += len(batch)
                progress.advance(task, len(batch))
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


class RateColumn(ProgressColumn):
    """Events per second, as rich measures the task's recent speed."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f} events/s" if task.speed else "", style="progress.data.speed")


async def _caught_up(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    return all([await consumer.position(tp) >= end for tp, end in ends.items()])


def restored_history(settings: Settings, rebuilt: Rebuilt) -> str:
    """How far back reports can go after a rebuild, in the default time zone."""
    if not rebuilt.firsts:
        return "rebuild: the input topics hold no records: no history to restore"
    defaults = settings.defaults
    calendar = calendar_for(defaults.timezone)
    today = calendar.day(wall_clock_ms())
    firsts = [(calendar.day(ms), truncated) for ms, truncated in rebuilt.firsts]
    first = restored_from_day(firsts, today, defaults.retention_days, defaults.after_sale_days)
    why = (
        "Kafka's retention had deleted older records"
        if any(truncated for _, truncated in firsts)
        else "the oldest records the topics hold"
    )
    return (
        f"rebuild: history restored from {day_text(first)} to today ({defaults.timezone}; "
        f"{why}; retention_days {defaults.retention_days}): reports can cover {day_text(first)} onwards"
    )
