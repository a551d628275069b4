"""Where the worker's own output goes: dead letters and alert events, to their Kafka topics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import faust

from agents.core.alerts import AlertEvent
from agents.processing.batch import DeadLetterSink
from agents.worker.leader import AlertSink
from config.settings import Settings
from streams.wire.app import output_topic
from streams.wire.deadletter import DeadLetter


def dead_letter_sink(app: faust.App, settings: Settings) -> DeadLetterSink:
    topic = output_topic(app, settings.kafka.topics.deadletter)

    async def send(letters: Sequence[DeadLetter]) -> None:
        # Sent one after another, then awaited together: Kafka keeps them in order, acked at once.
        pending = [await topic.send(key=letter.key, value=letter.payload()) for letter in letters]
        await asyncio.gather(*pending)

    return send


def alert_sink(app: faust.App, settings: Settings) -> AlertSink:
    topic = output_topic(app, settings.kafka.topics.alerts)

    async def send(events: Sequence[AlertEvent]) -> None:
        pending = [
            await topic.send(key=f"{e.shop_id}:{e.agent_id}".encode(), value=json.dumps(e.as_json()).encode())
            for e in events
        ]
        await asyncio.gather(*pending)

    return send
