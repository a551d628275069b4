"""The batch input path's promises, on its delivery logic with a stand-in consumer (no broker),
and a loud failure when a Faust internal it relies on moves."""

from __future__ import annotations

import asyncio
import inspect
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any
from unittest import mock

import pytest
from aiokafka.consumer import consumer as aiokafka_consumer
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from config.settings import Settings
from streams.wire.app import create_app
from streams.wire.batch_consumer import FETCH_MAX_WAIT_MS, BatchConsumer, BatchRoute, shorten_fetch_wait
from streams.wire.records import Record

MESSAGES, ORDERS, LEADER = TP("kefu.messages", 0), TP("kefu.orders", 0), TP("faust-leader", 0)


@dataclass
class KafkaRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None = b"s1:b1"
    value: bytes | None = b"{}"


def fetched(tp: TP, *offsets: int) -> list[KafkaRecord]:
    return [KafkaRecord(tp.topic, tp.partition, offset) for offset in offsets]


@dataclass
class StandIn:
    """The attributes of a Faust consumer that the delivery logic touches."""

    flow_active: bool = True
    generation: int = 1
    seeks: int = 0
    crashed: list[BaseException] = field(default_factory=list)
    per_record: list[int] = field(default_factory=list)
    _read_offset: dict[TP, int] = field(default_factory=dict)
    _buffered_partitions: set[TP] = field(default_factory=set)
    _batch_idle_event: asyncio.Event | None = None
    inbound: dict[TP, float] = field(default_factory=dict)

    def bind(self) -> Any:
        consumer: Any = self
        consumer.app = types.SimpleNamespace(
            consumer_generation_id=self.generation,
            monitor=types.SimpleNamespace(
                stream_inbound_time=self.inbound, track_tp_end_offset=lambda tp, o: None
            ),
        )
        consumer.log = types.SimpleNamespace(exception=lambda *a, **k: None)
        for name in ("_deliver", "_mark_applied", "wait_empty", "commit_applied"):
            setattr(consumer, name, types.MethodType(getattr(BatchConsumer, name), consumer))
        return consumer

    @property
    def _batch_idle(self) -> asyncio.Event:
        return BatchConsumer._batch_idle.fget(self)  # type: ignore[attr-defined,no-any-return]

    @property
    def route(self) -> None:
        return None

    async def perform_seek(self) -> None:
        self.seeks += 1

    async def crash(self, exc: BaseException) -> None:
        self.crashed.append(exc)

    def highwater(self, tp: TP) -> int:
        return 100

    def callback(self, message: Any) -> Any:
        async def deliver() -> None:
            self.per_record.append(message)

        return deliver()

    def _to_message(self, tp: TP, record: KafkaRecord) -> int:
        return record.offset

    async def wait_first(self, *coroutines: Any) -> None:
        await coroutines[0]
        coroutines[1].close()

    @property
    def suspend_flow(self) -> Any:
        async def never() -> None:
            await asyncio.sleep(3600)

        return types.SimpleNamespace(wait=never)


def route(received: list[Sequence[Record]]) -> BatchRoute:
    async def handler(records: Sequence[Record]) -> None:
        received.append(list(records))

    return BatchRoute(frozenset({MESSAGES.topic, ORDERS.topic}), handler)


def test_one_fetch_is_one_batch_across_partitions_and_faust_topics_keep_their_path() -> None:
    received: list[Sequence[Record]] = []
    batches = route(received)
    consumer = StandIn().bind()
    records = {MESSAGES: fetched(MESSAGES, 5, 6), ORDERS: fetched(ORDERS, 9), LEADER: fetched(LEADER, 1)}
    asyncio.run(consumer._deliver(batches, records, None))
    assert [[(r.topic, r.offset) for r in batch] for batch in received] == [
        [("kefu.messages", 5), ("kefu.messages", 6), ("kefu.orders", 9)]
    ]
    assert consumer.per_record == [1]  # the leader-election record, through Faust's callback
    assert batches.applied == {MESSAGES: 7, ORDERS: 10}  # next offsets: committable, and only these
    assert set(consumer.inbound) == {MESSAGES, ORDERS}  # the livelock detector sees progress


class MovingGeneration:
    """A consumer generation that changes after it is first read (a rebalance mid-delivery)."""

    def __init__(self) -> None:
        self.reads = 0

    @property
    def consumer_generation_id(self) -> int:
        self.reads += 1
        return 1 if self.reads == 1 else 2


@pytest.mark.parametrize("change", ["flow_stopped", "generation_changed"])
def test_records_fetched_before_a_rebalance_are_never_delivered(change: str) -> None:
    received: list[Sequence[Record]] = []
    batches = route(received)
    stand_in = StandIn()
    consumer = stand_in.bind()
    if change == "flow_stopped":
        stand_in.flow_active = False  # stop_flow ran after the fetch returned
    else:
        generation = MovingGeneration()
        generation.monitor = consumer.app.monitor  # type: ignore[attr-defined]
        consumer.app = generation
    asyncio.run(consumer._deliver(batches, {MESSAGES: fetched(MESSAGES, 1, 2)}, None))
    assert received == [] and batches.applied == {} and stand_in.seeks == 1


def test_revocation_waits_for_the_batch_in_flight() -> None:
    stand_in = StandIn()
    consumer = stand_in.bind()
    order: list[str] = []
    release = asyncio.Event()

    async def slow(records: Sequence[Record]) -> None:
        order.append("batch started")
        await release.wait()
        order.append("batch finished")

    batches = BatchRoute(frozenset({MESSAGES.topic}), slow)

    async def scenario() -> None:
        delivery = asyncio.create_task(consumer._deliver(batches, {MESSAGES: fetched(MESSAGES, 1)}, None))
        await asyncio.sleep(0)
        assert order == ["batch started"]
        waiting = asyncio.create_task(stand_in._batch_idle.wait())
        await asyncio.sleep(0.01)
        assert not waiting.done()  # a revocation waiting here cannot pass the batch
        release.set()
        await delivery
        await waiting
        order.append("revocation proceeds")

    asyncio.run(scenario())
    assert order == ["batch started", "batch finished", "revocation proceeds"]


def test_a_failing_batch_crashes_the_consumer_and_commits_nothing() -> None:
    stand_in = StandIn()
    consumer = stand_in.bind()

    async def broken(records: Sequence[Record]) -> None:
        raise ValueError("a bug in processing")

    batches = BatchRoute(frozenset({MESSAGES.topic}), broken)
    with pytest.raises(ValueError, match="a bug in processing"):
        asyncio.run(consumer._deliver(batches, {MESSAGES: fetched(MESSAGES, 1)}, None))
    assert [str(e) for e in stand_in.crashed] == ["a bug in processing"]
    assert batches.applied == {} and stand_in._batch_idle.is_set()


def test_revocation_waits_for_the_batch_then_its_apply_behind_then_commits_then_faust(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """wait_empty on a real BatchConsumer (its Faust parent's wait_empty replaced): the batch in
    flight, then what it left running (the route's `finish`: the worker's apply behind), then
    the offsets it applied, and only then Faust's own, which lets the partitions go."""
    order: list[str] = []
    release = asyncio.Event()

    async def faust_wait_empty(self: Any) -> None:
        order.append("faust's wait_empty")

    async def commit_offsets(offsets: dict[TP, int]) -> bool:
        order.append(f"commit {offsets[MESSAGES]}")
        return True

    async def finish() -> None:
        order.append("apply behind waited for")
        await asyncio.sleep(0.01)  # an apply still landing
        order.append("apply behind finished")

    monkeypatch.setattr(faust_aiokafka.Consumer, "wait_empty", faust_wait_empty)
    consumer: Any = BatchConsumer.__new__(BatchConsumer)  # no Service start-up: only what wait_empty uses
    consumer.log = types.SimpleNamespace(info=lambda *a, **k: order.append("says it waits"))
    consumer._commit_offsets = commit_offsets

    async def slow(records: Sequence[Record]) -> None:
        await release.wait()
        order.append("batch finished")

    consumer.transport = types.SimpleNamespace(batch_route=BatchRoute(frozenset({MESSAGES.topic}), slow))
    consumer.transport.batch_route.finish = finish

    async def scenario() -> None:
        consumer._batch_idle.clear()  # a batch in flight, as _deliver marks it
        revoking = asyncio.create_task(consumer.wait_empty())
        await asyncio.sleep(0.01)
        assert order == ["says it waits"]
        await slow([])  # the batch ends, and reports what it applied
        consumer.transport.batch_route.applied[MESSAGES] = 7
        consumer._batch_idle.set()
        await revoking

    release.set()
    asyncio.run(scenario())
    assert order == [
        "says it waits",
        "batch finished",
        "apply behind waited for",
        "apply behind finished",
        "commit 7",
        "faust's wait_empty",
    ]


# --- the Faust internals this path relies on: a rename or a new signature fails here, loudly -----


def test_faust_streaming_and_aiokafka_are_the_pinned_versions() -> None:
    assert version("faust-streaming") == "0.15.3"
    assert version("aiokafka") == "0.14.0"  # shorten_fetch_wait sets one of its private attributes


@pytest.mark.parametrize(
    ("owner", "name", "parameters"),
    [
        (faust_consumer.Consumer, "_drain_messages", ["self", "fetcher"]),
        (faust_consumer.Consumer, "_wait_next_records", ["self", "timeout"]),
        (faust_consumer.Consumer, "perform_seek", ["self"]),
        (faust_consumer.Consumer, "wait_empty", ["self"]),
        (faust_consumer.Consumer, "_commit_offsets", ["self", "offsets", "start_new_transaction"]),
        (faust_consumer.Consumer, "commit", ["self", "topics", "start_new_transaction"]),
        (faust_consumer.Consumer, "wait_first", None),
        (faust_aiokafka.Consumer, "_to_message", ["self", "tp", "record"]),
    ],
)
def test_the_faust_internals_the_batch_path_overrides_or_calls(
    owner: type, name: str, parameters: list[str] | None
) -> None:
    member = getattr(owner, name, None)
    assert member is not None, f"{owner.__name__}.{name} is gone: streams/wire/batch_consumer.py must follow"
    if parameters is not None:
        assert list(inspect.signature(member).parameters) == parameters, f"{owner.__name__}.{name} changed"


def test_the_faust_attributes_the_batch_path_reads() -> None:
    source = inspect.getsource(faust_consumer.Consumer)
    for attribute in (
        "self._buffered_partitions",
        "self._read_offset",
        "self.flow_active",
        "self.suspend_flow",
    ):
        assert attribute in source, attribute
    assert faust_aiokafka.Transport.Consumer is faust_aiokafka.Consumer
    from faust.app.base import App
    from faust.sensors.monitor import Monitor

    assert isinstance(inspect.getattr_static(App, "consumer_generation_id"), int)  # a class default
    assert "stream_inbound_time" in Monitor.__annotations__ and hasattr(Monitor, "track_tp_end_offset")
    assert "_stop_fetcher" in inspect.getsource(App) and "wait_empty" in inspect.getsource(App)


# --- the fetch wait (FETCH_MAX_WAIT_MS): the fetches of the consumer Faust builds for a worker ------


def test_the_worker_consumer_faust_builds_sends_fetches_with_the_short_wait() -> None:
    """Down the path Faust's consumer thread takes when it starts, to the fetch request aiokafka
    builds; no broker (bootstrap, topic metadata and the group coordinator are stood in for)."""

    async def fetch_wait() -> int:
        app = create_app(Settings())
        consumer = app.consumer._thread._create_consumer(loop=asyncio.get_running_loop())

        async def nothing(*args: object, **kwargs: object) -> None:
            return None

        with (
            mock.patch.object(consumer._client, "bootstrap", nothing),
            mock.patch.object(consumer, "_wait_topics", nothing),
            mock.patch.object(aiokafka_consumer, "GroupCoordinator", mock.MagicMock()),
        ):
            await consumer.start()
        try:
            position = types.SimpleNamespace(has_valid_position=True, paused=False, position=0)
            assignment = types.SimpleNamespace(tps={MESSAGES}, state_value=lambda tp: position)
            with mock.patch.object(consumer._client.cluster, "leader_for_partition", lambda tp: 0):
                requests, *_ = consumer._fetcher._get_actions_per_node(assignment)
            ((_, request),) = requests
            return int(request._max_wait_ms)
        finally:
            await consumer._fetcher.close()
            await consumer._client.close()
            consumer._closed = True

    assert asyncio.run(fetch_wait()) == FETCH_MAX_WAIT_MS < 1500  # Faust's own is 1.5 s


def test_a_moved_fetch_wait_attribute_fails_loudly() -> None:
    with pytest.raises(RuntimeError, match="_fetch_max_wait_ms"):
        shorten_fetch_wait(types.SimpleNamespace(), 100)
