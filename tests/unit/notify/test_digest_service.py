"""The daily digest in the notify service: `Digests` over the dispatcher, on a fake clock with the
in-memory ledger. It goes at the shop's local 09:00 to each of its channels, once (also after a
restart, and also when the process held it in quiet hours when it stopped), waits out a
channel's quiet hours, and a robot that refuses it is a dead letter."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from agents.store.notify_store import MemoryNotifyLedger
from config.secret import Secret
from config.settings import ChannelConfig, Settings, settings_from_yaml
from streams.contract.floor import TeamWindowValues
from streams.contract.report import Report
from streams.notify.digest import LedgerDigestClaim, digest_plans
from streams.notify.dispatch import NO_RECORD, Dispatcher, Ticket
from streams.notify.metrics import NotifyMetrics
from streams.notify.robots import Delivery
from streams.notify.routes import Routes
from streams.notify.schedule import DigestScheduler
from streams.notify.service import DeadLetters, Digests
from streams.render.notices import Notice
from tests.report_samples import sample_report

from .conftest import StillClock

SHOPS_YAML = """
defaults:
  notify:
    channels:
      - {type: webhook, url_env: KEFU_TEST_HOOK_URL}
shops:
  cn: {name: 旗舰店, timezone: Asia/Shanghai}
"""
SETTINGS = settings_from_yaml(SHOPS_YAML)
URL = Secret("http://127.0.0.1:1/hook?token=t0ken")
CHANNELS = (
    ChannelConfig(type="webhook", name="ops", url=URL),
    ChannelConfig(type="dingtalk", name="leads", url=URL),
)
NINE_IN_SHANGHAI = int(datetime(2026, 3, 7, 1, 0, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000
TITLE = "【客服日报】旗舰店 · 2026-03-06"


class FakeClock:
    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    async def sleep_until(self, ms: int) -> None:
        self.now = max(self.now, ms)
        await asyncio.sleep(0)


async def fetch(shop: str, day: int) -> tuple[Report, TeamWindowValues | None]:
    report = sample_report(days=1, agents=3)
    report.shop = shop
    report.from_ = report.to = date.fromordinal(day).isoformat()
    return report, None


@dataclass
class Rig:
    """One notify process: its dispatcher, its digests and what its robots received."""

    clock: FakeClock
    ledger: MemoryNotifyLedger  # shared by the processes of one test: it is Redis
    channels: tuple[ChannelConfig, ...] = CHANNELS
    answer: Callable[[int], Delivery] = lambda now: Delivery("sent", 200, "HTTP 200")
    received: list[tuple[str, int, str]] = field(default_factory=list)  # channel, time, title
    dead: list[tuple[Ticket, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        routes = Routes(SETTINGS, {"": self.channels})
        metrics = NotifyMetrics.create(CollectorRegistry())
        self.dispatcher = Dispatcher(routes, self.ledger, self.send, self.clock, metrics, self.dead_letter)
        scheduler = DigestScheduler(
            digest_plans(SETTINGS), LedgerDigestClaim(self.ledger), self.clock.now_ms()
        )
        self.digests = Digests(scheduler, fetch, self.dispatcher)

    async def send(self, channel: ChannelConfig, notice: Notice, now_ms: int) -> Delivery:
        delivery = self.answer(now_ms)
        if delivery.outcome == "sent":
            self.received.append((channel.name, now_ms, notice.title))
        return delivery

    async def dead_letter(self, ticket: Ticket, reason: str, detail: str) -> None:
        self.dead.append((ticket, reason, detail))

    async def run_until(self, end_ms: int) -> None:
        """The service loop's rounds, ten seconds of fake time apart."""
        while self.clock.now < end_ms:
            await self.digests.tick(self.clock.now)
            for _ in range(10):
                await asyncio.sleep(0)
            await self.dispatcher.keep_claims()  # as the service's rounds do
            await self.dispatcher.settle_done()
            self.clock.now += 10_000
        await self.dispatcher.close()


class StoppedClock(FakeClock):
    """A process's clock whose waits never end: it is stopped while it holds what it waits on."""

    async def sleep_until(self, ms: int) -> None:
        await asyncio.Event().wait()


def test_the_digest_goes_at_the_shops_nine_to_each_channel_once_also_after_a_restart() -> None:
    clock = FakeClock(NINE_IN_SHANGHAI - 30 * MINUTE)
    ledger = MemoryNotifyLedger(clock.now_ms)
    first = Rig(clock, ledger)
    asyncio.run(first.run_until(NINE_IN_SHANGHAI + 5 * MINUTE))
    assert first.received == [("ops", NINE_IN_SHANGHAI, TITLE), ("leads", NINE_IN_SHANGHAI, TITLE)]

    again = Rig(clock, ledger)  # a restart within the catch-up window: the ledger says it went
    asyncio.run(again.run_until(NINE_IN_SHANGHAI + 60 * MINUTE))
    assert again.received == []
    assert first.dead == again.dead == []


def test_a_channel_in_its_quiet_hours_gets_the_digest_when_they_end() -> None:
    clock = FakeClock(NINE_IN_SHANGHAI - MINUTE)
    quiet = ChannelConfig(type="webhook", name="ops", url=URL, quiet_hours="08:00-10:00")
    rig = Rig(clock, MemoryNotifyLedger(clock.now_ms), channels=(quiet,))
    asyncio.run(rig.run_until(NINE_IN_SHANGHAI + 90 * MINUTE))
    [(channel, at, title)] = rig.received
    assert (channel, title) == ("ops", TITLE)
    assert NINE_IN_SHANGHAI + 60 * MINUTE <= at < NINE_IN_SHANGHAI + 61 * MINUTE  # 10:00 in Shanghai


def test_a_digest_held_in_quiet_hours_by_a_process_that_stops_is_sent_by_the_next_one() -> None:
    """The claim was spent before any robot took the digest (SET NX for days): a notify stopped
    at 09:30 while it held the 09:00 digest for quiet hours until 10:00, and the restarted one
    found the claim and sent nothing. Now the claim is pending while held; it lapses with its
    holder, and the next process sends the digest, once."""
    quiet = ChannelConfig(type="webhook", name="ops", url=URL, quiet_hours="08:00-10:00")
    world = FakeClock(NINE_IN_SHANGHAI - MINUTE)
    ledger = MemoryNotifyLedger(world.now_ms)
    stopped = StoppedClock(world.now)
    first = Rig(stopped, ledger, channels=(quiet,))

    async def first_run() -> None:
        while stopped.now < NINE_IN_SHANGHAI + 30 * MINUTE:
            await first.digests.tick(stopped.now)
            for _ in range(10):
                await asyncio.sleep(0)
            await first.dispatcher.keep_claims()
            stopped.now += 10_000
            world.now = stopped.now
        await first.dispatcher.close()  # stopped, the digest still held

    asyncio.run(first_run())
    assert first.received == []
    restarted = Rig(world, ledger, channels=(quiet,))
    asyncio.run(restarted.run_until(NINE_IN_SHANGHAI + 90 * MINUTE))
    assert [(channel, title) for channel, _, title in restarted.received] == [("ops", TITLE)]
    assert restarted.received[0][1] >= NINE_IN_SHANGHAI + 60 * MINUTE  # after the quiet hours


def test_a_robot_that_refuses_the_digest_gives_a_dead_letter_from_no_topic() -> None:
    clock = FakeClock(NINE_IN_SHANGHAI - MINUTE)
    rig = Rig(clock, MemoryNotifyLedger(clock.now_ms), channels=CHANNELS[:1])
    rig.answer = lambda now: Delivery("refused", 404, "HTTP 404 no such hook")
    asyncio.run(rig.run_until(NINE_IN_SHANGHAI + 5 * MINUTE))
    assert [(t.partition, t.key, reason) for t, reason, _ in rig.dead] == [
        (NO_RECORD, b"cn", "notify: robot refused the message")
    ]
    ticket, reason, detail = rig.dead[0]
    assert detail == f"{TITLE}, channel ops (webhook): HTTP 404 no such hook"

    producer = Producer()
    asyncio.run(DeadLetters(Settings(), producer)(ticket, reason, detail))
    [(topic, letter)] = producer.sent
    assert topic == "kefu.deadletter"
    assert (letter["topic"], letter["partition"], letter["reason"]) == ("", NO_RECORD, reason)
    assert letter["raw"].startswith(f"**{TITLE}**")


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def send_and_wait(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.sent.append((topic, json.loads(value)))


def test_an_alert_at_nine_is_not_held_back_while_every_shops_digest_is_read() -> None:
    """At 09:00 each shop's report is read (seconds each): awaited inside the consumer loop, an
    alert of the shops' opening rush reached the group after the last digest, 40 s late with
    20 shops, and no claim was renewed meanwhile (PENDING_MS is 30 s)."""
    from types import SimpleNamespace

    from aiokafka import TopicPartition

    from streams.notify.service import KafkaLinks, NotifyService

    shops = [f"shop{n:02}" for n in range(20)]
    settings = settings_from_yaml(
        "defaults:\n  notify:\n    channels:\n      - {type: webhook, url_env: X}\nshops:\n"
        + "".join(f"  {shop}: {{timezone: Asia/Shanghai}}\n" for shop in shops)
    )

    clock = StillClock(NINE_IN_SHANGHAI - 1000)
    raised = NINE_IN_SHANGHAI + 1000
    received: list[tuple[int, str]] = []

    async def send(channel: ChannelConfig, notice: Notice, now_ms: int) -> Delivery:
        received.append((now_ms, notice.title))
        return Delivery("sent", 200, "HTTP 200")

    async def slow_fetch(shop: str, day: int) -> tuple[Report, TeamWindowValues | None]:
        for _ in range(20):  # two seconds of the report service's time
            clock.now += 100
            await asyncio.sleep(0.0005)
        return await fetch(shop, day)

    class Consumer:
        delivered = False

        async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
            await asyncio.sleep(0.001)
            if self.delivered or clock.now < raised:
                clock.now += 100
                return {}
            self.delivered = True
            event: dict[str, object] = {
                "alert": "BuyerWaitingTooLong",
                "state": "firing",
                "shop_id": "shop03",
            }
            event |= {"agent_id": "shop03:a", "value": 23.0, "threshold": 15.0, "ts": raised}
            value = json.dumps({**event, "alert_id": "w|shop03|a|1"}).encode()
            return {
                TopicPartition("kefu.alerts", 0): [
                    SimpleNamespace(partition=0, offset=0, key=b"k", value=value)
                ]
            }

        async def commit(self, offsets: Any) -> None:
            return None

    async def scenario() -> None:
        ledger = MemoryNotifyLedger(clock.now_ms)
        routes = Routes(settings, {"": (ChannelConfig(type="webhook", name="ops", url=URL),)})
        dispatcher = Dispatcher(
            routes, ledger, send, clock, NotifyMetrics.create(CollectorRegistry()), _no_letters
        )
        scheduler = DigestScheduler(digest_plans(settings), LedgerDigestClaim(ledger), clock.now_ms())
        service = NotifyService(
            settings, dispatcher, KafkaLinks(Consumer(), None), Digests(scheduler, slow_fetch, dispatcher)
        )
        while clock.now < NINE_IN_SHANGHAI + 2 * MINUTE:
            await service.step()
        await dispatcher.close()

    asyncio.run(scenario())
    alert_at = next(at for at, title in received if "shop03 · shop03:a" in title)
    assert sum("日报" in title for _, title in received) == 20
    assert alert_at - raised < 10_000, f"the alert reached the group {(alert_at - raised) / 1000:.0f} s late"


async def _no_letters(ticket: Ticket, reason: str, detail: str) -> None:
    raise AssertionError(reason)
