"""Whole fetches to one handler, under Faust's own consumer lifecycle.

Faust delivers every record through `wait_first(callback(record), suspend_flow.wait())`, the
conductor, a channel, the stream iterator and an ack: about 60 µs a record here, where aiokafka
reads and decodes one in 5 µs (`../shared/notes/faust-consumer-internals.md`). This consumer
keeps everything else of Faust (group membership, rebalance callbacks, leader election, timers,
the web server) and replaces only the drain loop that its Fetcher service runs: the records of
the routed topics that one fetch returns go to the handler as one batch (a topic routed to a
handler of its own, `kefu.agents`, goes to that one: each handler gets one batch of its topics
per fetch, one after the other); every other topic (Faust's own leader election) keeps the
per-record path.

What it keeps, and how:
- Nothing fetched before a flow stop (a rebalance) is delivered after it: the flow and the
  consumer generation are checked after every fetch, with no await between the check and the
  start of the batch, and a stopped flow re-seeks as Faust's `getmany` does.
- Revocation waits for the batch in flight: `wait_empty`, which Faust awaits on every revoke
  and on shutdown, first waits until no batch runs.
- Kafka's committed offsets stay behind what the handler applied: only offsets whose batch
  returned are committed (as a hint; Redis holds the truth).
- The livelock detector stays quiet: each batch marks its partitions' inbound time.
- An exception from the handler crashes the consumer service, which stops the worker with the
  error logged, instead of leaving the fetcher dead and the worker silently idle.

And one thing it changes: how long the broker may hold a fetch that finds nothing new
(`FETCH_MAX_WAIT_MS`, below).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.wire.records import KafkaRecord

BATCH_IN_FLIGHT = "revocation waits for the batch in flight"

# aiokafka keeps one fetch in flight per broker node, for the partitions with nothing buffered,
# and a fetch that finds nothing new waits on the broker up to fetch_max_wait_ms, which Faust
# fixes at 1.5 s. Quiet partitions (Faust's leader topic, a quiet `kefu.agents`) are always
# fetchable: while busy partitions drain, a fetch of only those is the node's one fetch in flight,
# and every busy partition drained meanwhile waits behind it. Measured (bench/run's latency
# phase, 15-20k events/s offered, one broker): once a hiccup let a backlog build, the worker fell
# into rounds of every partition with a 1.5 s gap between, and visibility settled at ~2 s with
# the worker a third idle. 100 ms bounds that gap to about 0.1 s, plus a round trip and aiokafka's
# 0.1 s prefetch backoff; an idle worker asks each broker ten times a second.
FETCH_MAX_WAIT_MS = 100

BatchHandler = Callable[[Sequence[KafkaRecord]], Awaitable[None]]


@dataclass(slots=True)
class BatchRoute:
    """Which topics go to the batch handler, and the handler; topics with a handler of their own."""

    topics: frozenset[str]
    handler: BatchHandler
    applied: dict[TP, int] = field(default_factory=dict)  # tp -> next offset to read (committable)
    handlers: dict[str, BatchHandler] = field(default_factory=dict)  # topic -> its own handler
    # What a handler leaves running after it returns (the worker's apply behind), given its time
    # on revocation and shutdown.
    finish: Callable[[], Awaitable[None]] | None = None

    def add(self, topics: frozenset[str], handler: BatchHandler) -> None:
        """Route `topics` to `handler` instead, under the same delivery guarantees."""
        self.topics |= topics
        self.handlers.update(dict.fromkeys(topics, handler))

    def handler_of(self, topic: str) -> BatchHandler:
        return self.handlers.get(topic, self.handler)


class BatchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        shorten_fetch_wait(consumer, FETCH_MAX_WAIT_MS)
        return consumer


def shorten_fetch_wait(consumer: AIOKafkaConsumer, wait_ms: int) -> None:
    """Before `start`, which hands the value to the consumer's fetcher (aiokafka 0.14)."""
    if not isinstance(getattr(consumer, "_fetch_max_wait_ms", None), int):
        raise RuntimeError(
            "aiokafka no longer keeps AIOKafkaConsumer._fetch_max_wait_ms: "
            "streams/wire/batch_consumer.py must set the fetch wait another way"
        )
    consumer._fetch_max_wait_ms = wait_ms


class BatchConsumer(faust_aiokafka.Consumer):
    _batch_idle_event: asyncio.Event | None = None

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return BatchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    @property
    def route(self) -> BatchRoute | None:
        return getattr(self.transport, "batch_route", None)

    @property
    def _batch_idle(self) -> asyncio.Event:
        if self._batch_idle_event is None:  # made on the running loop, on first use
            self._batch_idle_event = asyncio.Event()
            self._batch_idle_event.set()
        return self._batch_idle_event

    async def _drain_messages(self, fetcher: Any) -> None:
        route = self.route
        if route is None:  # nothing routed: Faust's own path, unchanged
            await super()._drain_messages(fetcher)
            return
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                records, active = await self._wait_next_records(1.0)
                await self.sleep(0)
                if not records or self.should_stop:
                    continue
                if not self.flow_active:
                    await self.perform_seek()  # fetched across a flow stop: drop, re-read later
                    continue
                await self._deliver(route, records, active)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def _deliver(self, route: BatchRoute, records: Any, active: set[TP] | None) -> None:
        generation = self.app.consumer_generation_id
        batches: dict[BatchHandler, list[KafkaRecord]] = {}
        last: dict[TP, int] = {}
        others: list[tuple[TP, Any]] = []
        buffered = self._buffered_partitions
        for tp, fetched in records.items():
            if active is not None and tp not in active and tp not in buffered:
                continue
            if tp.topic not in route.topics:
                others.extend((tp, record) for record in fetched)
                continue
            # aiokafka's records as they are: no copy per record
            batches.setdefault(route.handler_of(tp.topic), []).extend(fetched)
            last[tp] = fetched[-1].offset
        if batches:
            # No await between this check and clearing the idle flag: a revocation that starts
            # after it waits for these batches; one that started before it is seen here.
            if not self.flow_active or self.app.consumer_generation_id != generation:
                await self.perform_seek()
                return
            self._batch_idle.clear()
            try:
                for handler, batch in batches.items():
                    await handler(batch)
            except Exception as exc:
                size = sum(len(batch) for batch in batches.values())
                self.log.exception("processing a batch of %d records failed, stopping: %r", size, exc)
                await self.crash(exc)
                raise
            finally:
                self._batch_idle.set()
            self._mark_applied(route, last)
        for tp, record in others:  # Faust's own topics: the stock per-record delivery
            if not self.flow_active:
                break
            await self.wait_first(self.callback(self._to_message(tp, record)), self.suspend_flow.wait())
            self._read_offset[tp] = record.offset

    def _mark_applied(self, route: BatchRoute, last: dict[TP, int]) -> None:
        now = time.monotonic()
        inbound = self.app.monitor.stream_inbound_time
        for tp, offset in last.items():
            self._read_offset[tp] = offset
            route.applied[tp] = offset + 1
            inbound[tp] = now
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))

    async def wait_empty(self) -> None:
        """Revocation and shutdown: let the batch in flight finish, commit it, then Faust's own."""
        if not self._batch_idle.is_set():
            self.log.info(BATCH_IN_FLIGHT)
            await self._batch_idle.wait()
        route = self.route
        if route is not None and route.finish is not None:
            await route.finish()
        await self.commit_applied()
        await super().wait_empty()

    async def commit(self, *args: Any, **kwargs: Any) -> bool:
        """Faust's periodic commit (its acks are bypassed): commit what the handler applied."""
        committed = await self.commit_applied()
        return bool(await super().commit(*args, **kwargs)) or committed

    async def commit_applied(self) -> bool:
        route = self.route
        if route is None or not route.applied:
            return False
        offsets, route.applied = route.applied, {}
        return bool(await self._commit_offsets(offsets))


class BatchTransport(faust_aiokafka.Transport):
    Consumer = BatchConsumer
    batch_route: BatchRoute | None = None


def use_batch_transport(app: Any) -> None:
    """Give the app a transport whose consumer can hand whole fetches to a handler."""
    app.transport = BatchTransport(app.conf.broker_consumer, app)


def route_batches(
    app: Any, topic: Any, handler: BatchHandler, finish: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Subscribe `topic` without an agent and send its fetches to `handler` in whole batches.
    Called again with other topics, it routes those to their own handler. `finish`, if given,
    is awaited on revocation and shutdown after the batch in flight."""
    if not isinstance(app.transport, BatchTransport):
        raise TypeError("route_batches needs the app built with use_batch_transport(app)")
    app.topics.add(topic)
    topics = frozenset(topic.topics)
    if app.transport.batch_route is None:
        app.transport.batch_route = BatchRoute(topics, handler)
    else:
        app.transport.batch_route.add(topics, handler)
    if finish is not None:
        app.transport.batch_route.finish = finish
