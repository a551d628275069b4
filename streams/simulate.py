"""`kefu-pulse simulate`: paced simulated traffic into the input topics, with a live display."""

from __future__ import annotations

import asyncio
import time

from kafka import KafkaProducer
from rich.console import Console
from rich.live import Live

from config.settings import Settings
from streams.kafka_security import client_kwargs
from streams.traffic import TrafficModel, TrafficShape


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


async def run_simulation(
    settings: Settings,
    shape: TrafficShape,
    duration_s: float | None,
    seed: int,
    console: Console | None = None,
) -> int:
    """Produce in real time (event ts = wall clock) until `duration_s` passes; returns events sent."""
    console = console or Console(stderr=True)
    topics = {"messages": settings.kafka.topics.messages, "orders": settings.kafka.topics.orders}
    producer = _producer(settings)
    started = time.time()
    sent = 0
    records = TrafficModel(shape, seed).records(int(started * 1000))
    try:
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            for record in records:
                now = time.time()
                if duration_s is not None and now - started >= duration_s:
                    break
                delay = record.ts / 1000 - now
                if delay > 0:
                    await asyncio.sleep(delay)
                producer.send(topics[record.kind], key=record.key, value=record.value)
                sent += 1
                if sent % 50 == 0:
                    elapsed = max(time.time() - started, 1e-9)
                    live.update(
                        f"simulate: {sent} events sent · {sent / elapsed:.1f} events/s "
                        f"· {shape.shops} shops × {shape.agents} agents"
                    )
    finally:
        producer.flush()
        producer.close()
    return sent
