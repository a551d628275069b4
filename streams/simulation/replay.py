"""`kefu-pulse replay FILE...`: recorded events into the input topics, keyed per events.md.

A line is either an event (`{"type": ...}`) or a record (`{"key": ..., "value": ...}`,
value as an object or as the original text). Lines that cannot be routed are reported
with their line number and skipped; well-formed but invalid events are produced as they
are, so the worker rejects them into the dead-letter topic like any other bad input.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from config.settings import Settings
from streams.wire.security import client_kwargs

ORDER_TYPES = {"order"}
STATUS_TYPE = "agent_status"  # v3: on kefu.agents, keyed shop_id:agent_id (events.md)


@dataclass(slots=True)
class ReplayReport:
    produced: int = 0
    bad_lines: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, why)


@dataclass(frozen=True, slots=True)
class Routed:
    topic: str
    key: bytes | None
    value: bytes


def route_line(line: str, settings: Settings) -> Routed:
    """Decide topic, key and value for one line; raises ValueError with a reason."""
    try:
        data: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from exc
    except RecursionError:
        raise ValueError("not JSON we can read: nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    topics = settings.kafka.topics
    if "value" in data and "type" not in data:
        value = data["value"]
        key = data.get("key")
        payload = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        event = value if isinstance(value, dict) else _loads_or_none(payload)
        kind = event.get("type") if isinstance(event, dict) else None
        topic = data.get("topic") or _topic_of(kind, settings)
        inputs = (topics.messages, topics.orders, topics.agents)
        if topic not in inputs:
            raise ValueError(f"topic {topic!r} is not an input topic ({', '.join(inputs)})")
        return Routed(
            topic, key.encode() if isinstance(key, str) else None, payload.encode("utf-8", "surrogateescape")
        )
    owner = "agent_id" if data.get("type") == STATUS_TYPE else "buyer_id"
    shop, who = data.get("shop_id"), data.get(owner)
    if not isinstance(shop, str) or not isinstance(who, str):
        raise ValueError(f"event has no string shop_id and {owner} to key it by")
    topic = _topic_of(data.get("type"), settings)
    return Routed(topic, f"{shop}:{who}".encode(), line.strip().encode("utf-8", "surrogateescape"))


def _topic_of(kind: object, settings: Settings) -> str:
    topics = settings.kafka.topics
    if kind == STATUS_TYPE:
        return topics.agents
    return topics.orders if kind in ORDER_TYPES else topics.messages


def _loads_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


def iter_lines(paths: list[Path]) -> Iterator[tuple[str, int, str]]:
    for path in paths:
        with path.open(encoding="utf-8", errors="surrogateescape") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield str(path), number, line


def count_lines(paths: list[Path]) -> int | None:
    """For the progress bar; None (unknown) when a path is a pipe (`<(zcat day.jsonl.gz)`,
    /dev/stdin), which can be read once only: counting it first left nothing to replay."""
    if not all(path.is_file() for path in paths):
        return None
    return sum(1 for _ in iter_lines(paths))


def replay(paths: list[Path], settings: Settings, progress: Any = None) -> ReplayReport:
    """Produce every routable line, in file order, and wait until Kafka has them all."""
    report = ReplayReport()
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap,
        acks="all",
        linger_ms=20,
        batch_size=256 * 1024,
        max_in_flight_requests_per_connection=1,  # keeps each buyer's records in order
        retries=10,
        **client_kwargs(settings.kafka.security),
    )
    try:
        for name, number, line in iter_lines(paths):
            try:
                routed = route_line(line, settings)
            except ValueError as exc:
                report.bad_lines.append((name, number, str(exc)))
            else:
                producer.send(routed.topic, key=routed.key, value=routed.value)
                report.produced += 1
            if progress is not None:
                progress(1)
        producer.flush()
    finally:
        producer.close()
    return report
