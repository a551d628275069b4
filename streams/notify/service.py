"""`kefu-pulse notify`: kefu.alerts → the shops' group robots, in a consumer group of its own.

The loop reads records, hands them to the `Dispatcher` (claims, channels, folding, retries)
and commits a partition's offset only up to the first record whose notices are not done yet
(sent, dead-lettered, deduplicated or dropped on purpose). A crash re-reads the rest, and the
ledger drops what had been sent. Several processes share the partitions; the ledger sees to
it that each notice goes out once. At each minute's turn the loop also asks for the daily
digests due (`Digests`); each goes on its shop's channels like an alert's notice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord

from config.settings import Settings
from streams.contract.alerts import BadAlert, decode_alert
from streams.notify.digest import Fetch, digest_ledger_key, digests_due_now
from streams.notify.dispatch import NO_RECORD, Dispatcher, Ticket
from streams.notify.offsets import OffsetTracker
from streams.notify.schedule import DigestScheduler
from streams.wire.deadletter import DeadLetter
from streams.wire.security import client_kwargs

log = logging.getLogger("kefu.notify")
FETCH_RECORDS = 2000
FETCH_TIMEOUT_MS = 200
KEEP_EVERY_MS = 10_000  # a third of the ledger's pending TTL
MINUTE_MS = 60_000  # digest times are HH:MM: asked at each minute's turn, they go on time


def notify_group(settings: Settings) -> str:
    return f"{settings.kafka.group}-notify"


@dataclass
class KafkaLinks:
    consumer: AIOKafkaConsumer
    producer: AIOKafkaProducer


def kafka_links(settings: Settings) -> KafkaLinks:
    kafka = settings.kafka
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap,
        group_id=notify_group(settings),
        client_id="kefu-pulse-notify",
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # a new group reads what is there; stale alerts are skipped
        **client_kwargs(kafka.security),
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap,
        client_id="kefu-pulse-notify",
        acks="all",
        **client_kwargs(kafka.security),
    )
    return KafkaLinks(consumer, producer)


def ticket_of(record: ConsumerRecord[bytes, bytes]) -> tuple[Ticket, str | None]:
    """The record as a ticket, and why it is not an alert event, if it is not."""
    raw = record.value or b""
    ticket = Ticket(record.partition, record.offset, record.key, raw)
    try:
        ticket.event = decode_alert(raw)
    except BadAlert as exc:
        return ticket, str(exc)
    return ticket, None


class DeadLetters:
    """A notice no robot took, as a dead letter on `kafka.topics.deadletter` (events.md's
    record: the reason says why, in words without the URL; `raw` is the alert record)."""

    def __init__(self, settings: Settings, producer: AIOKafkaProducer) -> None:
        self.topic, self.target = settings.kafka.topics.alerts, settings.kafka.topics.deadletter
        self.producer = producer

    async def __call__(self, ticket: Ticket, reason: str, detail: str) -> None:
        raw = ticket.raw.decode("utf-8", "backslashreplace")
        topic = "" if ticket.partition == NO_RECORD else self.topic  # a digest comes from no topic
        letter = DeadLetter(reason, topic, ticket.partition, ticket.offset, raw, detail, ticket.key)
        await self.producer.send_and_wait(self.target, key=ticket.key, value=letter.payload())
        log.warning(
            "notify: dead letter for %s[%d]@%d: %s", self.topic, ticket.partition, ticket.offset, reason
        )


class Digests:
    """The daily digests (日报): asked for at each minute's turn, each one won goes on its shop's
    channels (quiet hours, the minute's budget, retries, dead letter; dispatch.py)."""

    def __init__(self, scheduler: DigestScheduler, fetch: Fetch, dispatcher: Dispatcher) -> None:
        self.scheduler, self.fetch, self.dispatcher = scheduler, fetch, dispatcher
        self._ask_at = 0
        self._behind: asyncio.Task[int] | None = None

    def tick_behind(self, now_ms: int) -> None:
        """`tick`, beside the consumer loop: at 09:00 every shop's report is read (seconds
        each), and awaited in the loop that held every alert of the shops' opening rush back
        until the last digest was rendered, and let the alerts' claims go unrenewed."""
        if self._behind is None or self._behind.done():
            self.check()
            self._behind = asyncio.get_running_loop().create_task(self.tick(now_ms), name="notify digests")

    def check(self) -> None:
        """Raise what ended the last tick behind (a setting that cannot work), if anything did."""
        task = self._behind
        if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
            self._behind = None
            raise task.exception()  # type: ignore[misc]

    async def close(self) -> None:
        if self._behind is not None:
            self._behind.cancel()
            await asyncio.gather(self._behind, return_exceptions=True)

    async def tick(self, now_ms: int) -> int:
        """Send what is due, if a minute has turned since the last ask; how many digests went."""
        if now_ms < self._ask_at:
            return 0
        self._ask_at = (now_ms // MINUTE_MS + 1) * MINUTE_MS
        due = await digests_due_now(self.scheduler, self.fetch, now_ms)
        for digest, notice in due:
            claimed = digest_ledger_key(digest.shop, digest.day)
            channels = self.dispatcher.send_notice(digest.shop, notice, claimed)
            log.info("notify: %s on %d channel(s)", notice.title, channels)
        return len(due)


class NotifyService:
    def __init__(
        self, settings: Settings, dispatcher: Dispatcher, links: KafkaLinks, digests: Digests | None = None
    ) -> None:
        self.settings, self.dispatcher, self.links = settings, dispatcher, links
        self.digests = digests
        self.topic = settings.kafka.topics.alerts
        self.tracker = OffsetTracker()
        self._kept_at = 0

    async def run(self, stop: asyncio.Event) -> None:
        consumer = self.links.consumer
        await self.links.producer.start()
        consumer.subscribe([self.topic], listener=_Handover(self))
        await consumer.start()
        try:
            while not stop.is_set():
                await self.step()
            await self.commit_done()
        finally:
            if self.digests is not None:
                await self.digests.close()
            await self.dispatcher.close()
            await consumer.stop()
            await self.links.producer.stop()

    async def step(self) -> None:
        """One round: read, hand over, renew claims, settle and commit what is done."""
        fetched = await self.links.consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS, max_records=FETCH_RECORDS)
        tickets: list[Ticket] = []
        for tp, records in fetched.items():
            for record in records:
                ticket, problem = ticket_of(record)
                self.tracker.read(tp, record.offset)
                if problem is not None:
                    await self.dispatcher.dead_letter(ticket, "notify: not an alert event", problem)
                tickets.append(ticket)
        await self.dispatcher.accept(tickets)
        self.dispatcher.check()
        now = self.dispatcher.clock.now_ms()
        if self.digests is not None:
            self.digests.check()
            self.digests.tick_behind(now)
        if now - self._kept_at >= KEEP_EVERY_MS:
            # Both at the claims' own pace: asking every round for the records another process
            # holds would cost Redis a command per held record five times a second.
            self._kept_at = now
            await self.dispatcher.keep_claims()
            await self.dispatcher.retry_busy()
        await self.commit_done()

    async def commit_done(self, only: set[TopicPartition] | None = None) -> None:
        for ticket in await self.dispatcher.settle_done():
            self.tracker.done(TopicPartition(self.topic, ticket.partition), ticket.offset)
        offsets = self.tracker.committable()
        if only is not None:
            offsets = {tp: offset for tp, offset in offsets.items() if tp in only}
        if not offsets:
            return
        try:
            await self.links.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:  # a rebalance: the next round commits
            log.info("notify: commit deferred (%s)", type(exc).__name__)
            return
        self.tracker.committed(offsets)


class _Handover(ConsumerRebalanceListener):
    """Before partitions move to another process: commit what is done, then forget them (their
    notices in flight still go out once; the new owner finds them `busy`, then `sent`)."""

    def __init__(self, service: NotifyService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.service.commit_done(only=set(revoked))
        self.service.tracker.forget(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None
