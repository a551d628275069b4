"""Oversized and hostile records: each is dead-lettered or applied, never a crash, and a dead
letter always fits in a Kafka record."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agents.core.policy import PolicyBook
from agents.exposure.metrics import WorkerMetrics
from agents.processing.batch import BatchProcessor
from agents.store.memory import MemoryPartitionStore
from agents.worker.runtime import Runtime
from config.settings import Settings
from streams.contract.events import Message
from streams.wire.deadletter import RAW_LIMIT_BYTES, DeadLetter
from streams.wire.decoding import MAX_RECORD_BYTES, EventDecoder, Reason, Rejection
from streams.wire.records import Record
from tests.builders import wire_message

NOW = time.time_ns() // 1_000_000
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588


def message(**overrides: Any) -> dict[str, Any]:
    return wire_message(ts=NOW) | overrides


def encoded(event: dict[str, Any], pad_to: int | None = None) -> bytes:
    raw = json.dumps(event, ensure_ascii=False).encode()
    if pad_to is not None:  # padding inside an ignored field keeps it valid JSON
        raw = raw[:-1] + b', "pad": "' + b"x" * (pad_to - len(raw) - 11) + b'"}'
        assert len(raw) == pad_to
    return raw


def key_of(event: dict[str, Any]) -> bytes:
    return f"{event['shop_id']}:{event['buyer_id']}".encode()


DECODER = EventDecoder()


@pytest.mark.parametrize(("size", "accepted"), [(MAX_RECORD_BYTES, True), (MAX_RECORD_BYTES + 1, False)])
def test_a_record_over_the_limit_is_too_large(size: int, accepted: bool) -> None:
    event = message()
    result = DECODER.decode(encoded(event, pad_to=size), key_of(event), NOW)
    assert isinstance(result, Message) is accepted
    if not accepted:
        assert isinstance(result, Rejection) and result.reason is Reason.TOO_LARGE


def test_an_oversized_record_is_not_decoded() -> None:
    result = DECODER.decode(b"{" * (MAX_RECORD_BYTES + 1), b"s1:b1", NOW)  # invalid JSON, but too large first
    assert isinstance(result, Rejection) and result.reason is Reason.TOO_LARGE


def test_the_limit_follows_the_setting() -> None:
    event = message()
    small = EventDecoder(max_record_bytes=200)
    assert isinstance(small.decode(encoded(event, pad_to=201), key_of(event), NOW), Rejection)
    assert isinstance(small.decode(encoded(event, pad_to=200), key_of(event), NOW), Message)


@pytest.mark.parametrize("depth", [100, 10_000, 30_000])
def test_deeply_nested_json_is_rejected_not_a_crash(depth: int) -> None:
    raw = encoded(message())[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    result = DECODER.decode(raw, b"s1:b1", NOW)
    assert isinstance(result, Message | Rejection)
    if isinstance(result, Rejection):
        assert result.reason is Reason.INVALID_JSON


def test_invalid_utf8_in_an_id_is_not_utf8() -> None:
    raw = encoded(message()).replace(b'"b1"', b'"b\xff1"')
    result = DECODER.decode(raw, b"s1:b\xff1", NOW)
    assert isinstance(result, Rejection) and result.reason is Reason.NOT_UTF8


def test_control_characters_in_ids_are_applied_as_data() -> None:
    event = message(buyer_id="b\u0000\n\t1", agent_id="s1:\u001b[31ma")
    result = DECODER.decode(encoded(event), key_of(event), NOW)
    assert isinstance(result, Message) and result.agent_id == "s1:\u001b[31ma"


@pytest.mark.parametrize(
    ("field", "longest"), [("event_id", 128), ("shop_id", 64), ("buyer_id", 128), ("agent_id", 128)]
)
def test_ids_of_the_maximum_length_are_applied_one_more_is_rejected(field: str, longest: int) -> None:
    ok = message(**{field: "i" * longest})
    assert isinstance(DECODER.decode(encoded(ok), key_of(ok), NOW), Message)
    over = message(**{field: "i" * (longest + 1)})
    result = DECODER.decode(encoded(over), key_of(over), NOW)
    assert isinstance(result, Rejection) and result.reason is Reason.INVALID_VALUE


def test_a_batch_of_hostile_records_is_dead_lettered_or_applied_and_letters_fit_in_kafka() -> None:
    hostile = [
        encoded(message(event_id="big"), pad_to=2 * KAFKA_DEFAULT_MAX_MESSAGE_BYTES),
        encoded(message(event_id="deep"))[:-1] + b', "x": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
        encoded(message(event_id="utf8")).replace(b'"b1"', b'"b\xff1"'),
        encoded(message(event_id="ctl", buyer_id="b\u00001")),
        encoded(message(event_id="long", agent_id="s1:" + "a" * 125)),
        b"\x00\x01\x02",
    ]
    records = [Record("c.messages", 0, offset, b"s1:b1", value) for offset, value in enumerate(hostile)]
    letters: list[DeadLetter] = []

    async def sink(batch: Sequence[DeadLetter]) -> None:
        letters.extend(batch)

    store = MemoryPartitionStore()
    metrics = WorkerMetrics.create(CollectorRegistry())
    processor = BatchProcessor(
        store,
        PolicyBook(Settings()),
        EventDecoder(),
        sink,
        metrics,
        clock=lambda: NOW,
        input_topics=("c.messages",),
    )
    report = asyncio.run(processor.process(records))
    assert sum(report.outcomes.values()) == len(records)
    assert store.offsets[("c.messages", 0)] == len(records) - 1  # nothing left behind
    assert {letter.offset for letter in letters} | {3, 4} == set(range(len(records)))
    assert max(len(letter.payload()) for letter in letters) < KAFKA_DEFAULT_MAX_MESSAGE_BYTES
    big = next(letter for letter in letters if letter.offset == 0)
    assert big.reason == "too_large" and f"first {RAW_LIMIT_BYTES} of" in big.detail


def test_every_known_label_value_is_exported_at_zero_from_the_start() -> None:
    async def sink(_: Sequence[Any]) -> None:
        return None

    runtime = Runtime.create(Settings(), sink, sink)
    registry = runtime.registry
    topics = Settings().kafka.topics
    for reason in Reason:
        assert registry.get_sample_value("kefu_events_rejected_total", {"reason": reason.value}) == 0
    for topic in (topics.messages, topics.orders):
        for outcome in ("applied", "duplicate", "late", "rejected"):
            labels = {"topic": topic, "outcome": outcome}
            assert registry.get_sample_value("kefu_events_total", labels) == 0, labels
    for alert in ("BuyerWaitingTooLong", "FirstResponseSlow"):
        assert registry.get_sample_value("kefu_alert_events_total", {"alert": alert, "state": "firing"}) == 0
    asyncio.run(runtime.close())


# The producer refuses a record over producer_max_request_size (1,000,000 by default), key included.
PRODUCER_MAX_REQUEST_BYTES = 1_000_000
RECORD_OVERHEAD_BYTES = 512  # the record's and batch's headers, generously


@pytest.mark.parametrize(
    ("key_bytes", "value"),
    [
        (900_000, b"\x01" * 65_537),  # each control byte escapes to six
        (960_000, b"\x01" * 8_000),  # invalid JSON under a key that fits the broker
        (40, b"\xff" * 200_000),  # each invalid UTF-8 byte escapes to five
    ],
)
def test_a_dead_letter_always_fits_what_the_producer_sends(key_bytes: int, value: bytes) -> None:
    """A record that Kafka delivered (under 1 MB with its key) was rejected, and its dead letter,
    key copied whole and payload escaped, came to 1.29 MB: the producer refused it, and the
    worker stopped on that record at every restart ("never stops the worker", events.md)."""
    key = b"k" * key_bytes
    rejection = EventDecoder(max_record_bytes=2_000_000).decode(value, key, NOW)
    assert isinstance(rejection, Rejection)
    letter = DeadLetter.of(rejection, "c.messages", 0, 7, key, value)
    assert (
        len(letter.key or b"") + len(letter.payload()) + RECORD_OVERHEAD_BYTES <= PRODUCER_MAX_REQUEST_BYTES
    )
    assert letter.key == key[: len(letter.key or b"")]
    if key_bytes > 1024:
        assert f"the key holds its first 1024 of {key_bytes} bytes" in letter.detail
