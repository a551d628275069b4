"""`kefu-pulse simulate`: paced simulated traffic into the input topics, with a live display, and
past traffic for the reports to show (`--history-days`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from kafka import KafkaProducer
from rich.console import Console
from rich.live import Live

from config.settings import Settings
from streams.kafka_security import client_kwargs
from streams.traffic import OpenConversations, SimRecord, TrafficModel, TrafficShape


def _producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap,
        # Leader-only acks are enough for simulated traffic; saying so keeps kafka-python from
        # warning on every start that idempotence is off (the demo's first screen).
        acks=1,
        enable_idempotence=False,
        linger_ms=5,
        max_in_flight_requests_per_connection=1,
        **client_kwargs(settings.kafka.security),
    )


@contextmanager
def _progress_line(console: Console) -> Iterator[Live]:
    """A live progress line that ends with a newline on every console: off a terminal, rich
    leaves its last render unterminated and the next message would run into it."""
    try:
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            yield live
    finally:  # a stop (Ctrl-C cancels the task) ends the line too
        if not console.is_terminal:
            console.line()


def _answer_the_waiting(
    producer: KafkaProducer, topic: str, conversations: OpenConversations, ts: int, console: Console
) -> None:
    answers = conversations.answers(ts)
    for record in answers:
        producer.send(topic, key=record.key, value=record.value, timestamp_ms=record.ts)
    if answers:
        waiting = f"{len(answers)} buyer{'s' if len(answers) != 1 else ''}"
        console.print(f"answered the {waiting} still waiting, so no conversation stays open")


async def run_simulation(
    settings: Settings,
    shape: TrafficShape,
    duration_s: float | None,
    seed: int,
    console: Console | None = None,
) -> int:
    """Produce in real time (event ts = wall clock) until `duration_s` passes or the task is
    cancelled; then answer every buyer still waiting. Returns the events sent."""
    console = console or Console(stderr=True)
    topics = {"messages": settings.kafka.topics.messages, "orders": settings.kafka.topics.orders}
    producer = _producer(settings)
    started = time.time()
    sent = 0
    records = TrafficModel(shape, seed).records(int(started * 1000))
    conversations = OpenConversations()
    try:
        with _progress_line(console) as live:
            for record in records:
                now = time.time()
                if duration_s is not None and now - started >= duration_s:
                    break
                delay = record.ts / 1000 - now
                if delay > 0:
                    await asyncio.sleep(delay)
                _send(producer, topics, record, conversations)
                sent += 1
                if sent % 50 == 0:
                    elapsed = max(time.time() - started, 1e-9)
                    live.update(
                        f"simulate: {sent} events sent · {sent / elapsed:.1f} events/s "
                        f"· {shape.shops} shops × {shape.agents} agents"
                    )
    finally:
        _answer_the_waiting(producer, topics["messages"], conversations, int(time.time() * 1000), console)
        producer.flush()
        producer.close()
    return sent


def _send(
    producer: KafkaProducer,
    topics: dict[str, str],
    record: SimRecord,
    conversations: OpenConversations,
    with_timestamp: bool = False,
) -> None:
    timestamp = record.ts if with_timestamp else None
    producer.send(topics[record.kind], key=record.key, value=record.value, timestamp_ms=timestamp)
    conversations.observe(record)


async def produce_history(
    settings: Settings,
    shape: TrafficShape,
    start_ms: int,
    end_ms: int,
    seed: int,
    console: Console | None = None,
) -> int:
    """Traffic from `start_ms` to `end_ms` (event time), as fast as Kafka takes it; each record
    carries its event time as its Kafka timestamp, as a connector relaying history would."""
    console = console or Console(stderr=True)
    topics = {"messages": settings.kafka.topics.messages, "orders": settings.kafka.topics.orders}
    producer = _producer(settings)
    sent = 0
    conversations = OpenConversations()
    try:
        with _progress_line(console) as live:
            for record in TrafficModel(shape, seed).records(start_ms):
                if record.ts >= end_ms:
                    break
                _send(producer, topics, record, conversations, with_timestamp=True)
                sent += 1
                if sent % 5000 == 0:
                    done = (record.ts - start_ms) / max(end_ms - start_ms, 1)
                    live.update(
                        f"history: {sent} events · {done:.0%} of {(end_ms - start_ms) / 86_400_000:.0f} days"
                    )
                    await asyncio.sleep(0)  # let Ctrl-C through
            live.update(f"history: {sent} events")
    finally:
        _answer_the_waiting(producer, topics["messages"], conversations, end_ms - 1, console)
        producer.flush()
        producer.close()
    return sent


def day_start_ms(day: date, zone: str) -> int:
    return int(datetime.combine(day, datetime.min.time(), ZoneInfo(zone)).timestamp() * 1000)


def local_today(zone: str, now_ms: int) -> date:
    return datetime.fromtimestamp(now_ms / 1000, ZoneInfo(zone)).date()


def history_start_ms(zone: str, days: int, now_ms: int) -> int:
    """The start of the business day `days` days before today's, in `zone`."""
    return day_start_ms(local_today(zone, now_ms) - timedelta(days=days), zone)


def days_since_last_month(zone: str, now_ms: int) -> int:
    """Enough history for last month's payroll: back to the first day of the previous month."""
    today = local_today(zone, now_ms)
    first_of_last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    return (today - first_of_last_month).days
