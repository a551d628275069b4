"""`kefu-pulse simulate`: paced simulated traffic into the input topics, with a live display, and
past traffic for the reports to show (`--history-days`).

Agent status changes (v3) go to `kafka.topics.agents` only when that topic exists. A producer
sending to a missing topic either has the broker create it with the broker's defaults (the local
stack's `auto.create.topics.enable`: its partitions, and a retention that soon deletes the
history) or, where auto-creation is off, blocks for a minute on every record and then raises.
Topics are `kefu-pulse topics create`'s to make; without this one the simulator says so once and
sends the rest of its traffic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

from kafka import KafkaProducer
from rich.console import Console
from rich.live import Live

from config.calendar import MS_PER_DAY, calendar_for
from config.settings import Settings
from streams.simulation.traffic import (
    OpenConversations,
    SignedInAgents,
    SimRecord,
    TrafficModel,
    TrafficShape,
)
from streams.wire.security import admin_client, client_kwargs


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


def _topic_exists(settings: Settings, topic: str) -> bool:
    admin = admin_client(settings.kafka, "kefu-pulse-simulate")
    try:
        return topic in set(admin.list_topics())
    finally:
        admin.close()


def routes(settings: Settings, shape: TrafficShape, console: Console) -> dict[str, str]:
    """The topic of each kind of record the simulator sends; a missing agents topic is warned
    about once and left out (its records are then not sent)."""
    names = settings.kafka.topics
    topics = {"messages": names.messages, "orders": names.orders}
    if shape.agent_shifts:
        if _topic_exists(settings, names.agents):
            topics["agents"] = names.agents
        else:
            console.print(
                f"warning: topic {names.agents} does not exist, so agent status (在线/挂起) is not "
                "simulated; `kefu-pulse topics create` creates it",
                markup=False,
            )
    return topics


class Closing:
    """What the simulator leaves open when it stops: buyers waiting and agents signed in. Closing
    answers the one and logs out the other, so the next run starts on a calm floor."""

    def __init__(self) -> None:
        self.conversations = OpenConversations()
        self.agents = SignedInAgents()

    def observe(self, record: SimRecord) -> None:
        self.conversations.observe(record)
        self.agents.observe(record)

    def close(self, producer: KafkaProducer, topics: dict[str, str], ts: int, console: Console) -> None:
        answers = self.conversations.answers(ts)
        logouts = self.agents.logouts(ts)
        for record in (*answers, *logouts):
            producer.send(topics[record.kind], key=record.key, value=record.value, timestamp_ms=record.ts)
        if answers:
            waiting = f"{len(answers)} buyer{'s' if len(answers) != 1 else ''}"
            console.print(f"answered the {waiting} still waiting, so no conversation stays open")
        if logouts:
            console.print(
                f"logged out the {len(logouts)} agent{'s' if len(logouts) != 1 else ''} still online"
            )


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
    topics = routes(settings, shape, console)
    producer = _producer(settings)
    started = time.time()
    sent = 0
    records = TrafficModel(shape, seed).records(int(started * 1000))
    closing = Closing()
    try:
        with _progress_line(console) as live:
            for record in records:
                now = time.time()
                if duration_s is not None and now - started >= duration_s:
                    break
                delay = record.ts / 1000 - now
                if delay > 0:
                    await asyncio.sleep(delay)
                sent += _send(producer, topics, record, closing)
                if sent % 50 == 0:
                    elapsed = max(time.time() - started, 1e-9)
                    live.update(
                        f"simulate: {sent} events sent · {sent / elapsed:.1f} events/s "
                        f"· {shape.shops} shops × {shape.agents} agents"
                    )
    finally:
        closing.close(producer, topics, int(time.time() * 1000), console)
        producer.flush()
        producer.close()
    return sent


def _send(
    producer: KafkaProducer,
    topics: dict[str, str],
    record: SimRecord,
    closing: Closing,
    with_timestamp: bool = False,
) -> int:
    """Send `record` if its topic is there (see `routes`); returns the records sent, 0 or 1."""
    topic = topics.get(record.kind)
    if topic is None:
        return 0
    timestamp = record.ts if with_timestamp else None
    producer.send(topic, key=record.key, value=record.value, timestamp_ms=timestamp)
    closing.observe(record)
    return 1


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
    topics = routes(settings, shape, console)
    producer = _producer(settings)
    sent = 0
    closing = Closing()
    try:
        with _progress_line(console) as live:
            for record in TrafficModel(shape, seed).records(start_ms):
                if record.ts >= end_ms:
                    break
                sent += _send(producer, topics, record, closing, with_timestamp=True)
                if sent % 5000 == 0:
                    done = (record.ts - start_ms) / max(end_ms - start_ms, 1)
                    live.update(
                        f"history: {sent} events · {done:.0%} of {(end_ms - start_ms) / MS_PER_DAY:.0f} days"
                    )
                    await asyncio.sleep(0)  # let Ctrl-C through
            live.update(f"history: {sent} events")
    finally:
        closing.close(producer, topics, end_ms - 1, console)
        producer.flush()
        producer.close()
    return sent


def local_today(zone: str, now_ms: int) -> date:
    """Today's business day in `zone`, as a date."""
    return date.fromordinal(calendar_for(zone).day(now_ms))


def history_start_ms(zone: str, days: int, now_ms: int) -> int:
    """The start of the business day `days` days before today's, in `zone`."""
    calendar = calendar_for(zone)
    return calendar.day_start_ms(calendar.day(now_ms) - days)


def days_since_last_month(zone: str, now_ms: int) -> int:
    """Enough history for last month's payroll: back to the first day of the previous month."""
    today = local_today(zone, now_ms)
    first_of_last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    return (today - first_of_last_month).days
