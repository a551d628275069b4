"""The dispatcher on a fake clock with the in-memory ledger: dedup, folding, retries, quiet hours."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from agents.store.notify_store import MemoryNotifyLedger
from config.secret import Secret
from config.settings import ChannelConfig, Settings, ShopSettings
from streams.contract.alerts import AlertEvent
from streams.notify.alertmanager import RuleAlert
from streams.notify.dispatch import Dispatcher, Ticket
from streams.notify.folding import MINUTE_MS
from streams.notify.metrics import NotifyMetrics
from streams.notify.robots import Delivery
from streams.render.notices import Notice

from .conftest import StillClock

START_MS = 1_772_334_000_000  # 2026-03-01 11:00 in Shanghai
CHANNEL = ChannelConfig(type="webhook", name="ops", url=Secret("http://127.0.0.1:1/hook?token=t0ken"))


class FakeClock:
    def __init__(self, now_ms: int = START_MS) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    async def sleep_until(self, ms: int) -> None:
        self.now = max(self.now, ms)
        await asyncio.sleep(0)


def synchronous(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


@dataclass
class Robot:
    """Records each message with the fake time; `answer` decides what it says."""

    clock: FakeClock
    answer: Callable[[int], Delivery] = lambda now: Delivery("sent", 200, "HTTP 200")
    received: list[tuple[int, Notice]] = field(default_factory=list)

    async def send(self, channel: ChannelConfig, notice: Notice, now_ms: int) -> Delivery:
        delivery = self.answer(now_ms)
        if delivery.outcome == "sent":
            self.received.append((now_ms, notice))
        return delivery


@dataclass
class Rig:
    clock: FakeClock
    robot: Robot
    ledger: MemoryNotifyLedger
    registry: CollectorRegistry
    dispatcher: Dispatcher
    dead: list[tuple[Ticket, str]]

    async def run(self, events: Sequence[AlertEvent]) -> list[Ticket]:
        tickets = [Ticket(0, n, None, b"{}", event) for n, event in enumerate(events)]
        await self.dispatcher.accept(tickets)
        done: list[Ticket] = []
        for _ in range(200_000):
            await self.dispatcher.retry_busy()
            done += await self.dispatcher.settle_done()
            if len(done) == len(tickets):
                return done
            await asyncio.sleep(0)
            if self.dispatcher.in_flight() == self.dispatcher.busy():  # only others' claims left: time passes
                self.clock.now += 1000
        raise AssertionError(f"{len(tickets) - len(done)} tickets never finished")

    def counted(self, outcome: str, channel: str = "ops") -> float:
        value = self.registry.get_sample_value(
            "kefu_notifications_total", {"channel": channel, "outcome": outcome}
        )
        return value or 0.0


def rig(
    settings: Settings | None = None, ledger: MemoryNotifyLedger | None = None, clock: FakeClock | None = None
) -> Rig:
    from streams.notify.routes import Routes

    clock = clock or FakeClock()
    robot = Robot(clock)
    ledger = ledger or MemoryNotifyLedger(clock.now_ms)
    registry = CollectorRegistry()
    dead: list[tuple[Ticket, str]] = []

    async def dead_letter(ticket: Ticket, reason: str, detail: str) -> None:
        dead.append((ticket, reason))

    channel = CHANNEL
    if settings is not None and settings.shops.get("s1") and settings.shops["s1"].notify:
        channel = ChannelConfig(type="webhook", name="ops", url=CHANNEL.url, quiet_hours="23:00-08:00")
    routes = Routes(settings or Settings(), {"": (channel,)})
    dispatcher = Dispatcher(routes, ledger, robot.send, clock, NotifyMetrics.create(registry), dead_letter)
    return Rig(clock, robot, ledger, registry, dispatcher, dead)


def alert(agent: str, state: str = "firing", ts: int = START_MS, episode: int = 1) -> AlertEvent:
    return AlertEvent(
        alert="BuyerWaitingTooLong",
        state=state,  # type: ignore[arg-type]
        shop_id="s1",
        agent_id=agent,
        value=23.0,
        threshold=15.0,
        ts=ts,
        alert_id=f"BuyerWaitingTooLong|s1|{agent}|{episode}",
    )


@synchronous
async def test_one_message_per_alert_and_state_also_after_a_restart() -> None:
    first = rig()
    await first.run([alert("a"), alert("a", "resolved")])
    await first.dispatcher.close()
    assert [n.title for _, n in first.robot.received] == [
        "【客服预警】s1 · a：买家已等待 23 秒（阈值 15 秒）",
        "【客服预警】s1 · a：已恢复",
    ]
    again = rig(ledger=first.ledger, clock=first.clock)  # a new process, the same Redis
    await again.run([alert("a"), alert("a", "resolved"), alert("a")])
    await again.dispatcher.close()
    assert again.robot.received == []
    assert (
        again.registry.get_sample_value(
            "kefu_notifications_total", {"channel": "none", "outcome": "duplicate"}
        )
        == 3
    )


@synchronous
async def test_a_flood_is_at_most_twenty_messages_a_minute_naming_every_agent() -> None:
    flood = rig()
    agents = [f"agent{n:04d}" for n in range(5000)]
    # Alerts arrive over two minutes, in many batches, while earlier messages go out.
    for start in range(0, 5000, 250):
        await flood.dispatcher.accept(
            [Ticket(0, n, None, b"{}", alert(a)) for n, a in enumerate(agents[start : start + 250], start)]
        )
        await asyncio.sleep(0)
        flood.clock.now += 6000
    done: list[Ticket] = []
    while len(done) < 5000:
        done += await flood.dispatcher.settle_done()
        await asyncio.sleep(0)
    await flood.dispatcher.close()
    times = [at for at, _ in flood.robot.received]
    assert 1 < len(times) < 60
    assert max(sum(1 for t in times if start <= t < start + MINUTE_MS) for start in times) <= 20
    text = "\n".join(n.text for _, n in flood.robot.received)
    assert [a for a in agents if a not in text] == []


@synchronous
async def test_a_robot_back_within_retry_seconds_gets_the_message_once() -> None:
    down = rig()
    back_at = START_MS + 100_000
    down.robot.answer = lambda now: (
        Delivery("sent", 200, "ok") if now >= back_at else Delivery("retry", None, "refused")
    )
    await down.run([alert("a")])
    await down.dispatcher.close()
    assert len(down.robot.received) == 1 and down.dead == []
    assert down.counted("retry") >= 5 and down.counted("sent") == 1


@synchronous
async def test_a_robot_down_past_retry_seconds_gives_a_dead_letter_with_the_reason() -> None:
    down = rig()
    down.robot.answer = lambda now: Delivery("retry", 503, "HTTP 503")
    await down.run([alert("a")])
    await down.dispatcher.close()
    assert [reason for _, reason in down.dead] == ["notify: robot unreachable for 180 s"]
    assert down.clock.now - START_MS >= 180_000
    assert down.counted("dead_letter") == 1


@synchronous
async def test_a_refused_message_is_a_dead_letter_at_once() -> None:
    refused = rig()
    refused.robot.answer = lambda now: Delivery("refused", 200, "errcode 310000: sign not match")
    await refused.run([alert("a")])
    await refused.dispatcher.close()
    assert [reason for _, reason in refused.dead] == ["notify: robot refused the message"]
    assert refused.counted("retry") == 0


@synchronous
async def test_a_claim_held_by_a_process_that_died_is_taken_over_after_its_ttl() -> None:
    clock = FakeClock()
    ledger = MemoryNotifyLedger(clock.now_ms)
    await ledger.claim([(alert("a").alert_id, "firing")])  # the dead process's claim
    heir = rig(ledger=ledger, clock=clock)
    await heir.run([alert("a")])
    await heir.dispatcher.close()
    assert len(heir.robot.received) == 1
    assert clock.now - START_MS >= ledger.pending_ms


@synchronous
async def test_quiet_hours_hold_a_notice_and_drop_a_pair_that_resolved_meanwhile() -> None:
    settings = _quiet_settings()
    night = FakeClock(START_MS + 12 * 3600 * 1000)  # 23:00 in Shanghai
    quiet = rig(settings, clock=night)
    now = night.now
    await quiet.run([alert("a", ts=now), alert("a", "resolved", ts=now), alert("b", ts=now)])
    await quiet.dispatcher.close()
    assert [n.title for _, n in quiet.robot.received] == [
        "【客服预警】s1 · b：买家已等待 23 秒（阈值 15 秒）"
    ]
    sent_at = quiet.robot.received[0][0]
    assert sent_at == START_MS + 21 * 3600 * 1000  # 08:00 the next morning
    assert quiet.counted("dropped_quiet") == 2


def _quiet_settings() -> Settings:
    from config.settings import settings_from_yaml

    return settings_from_yaml("shops:\n  s1:\n    notify: {retry_seconds: 180}\n")


@synchronous
async def test_messages_planned_behind_a_retrying_one_keep_their_claims() -> None:
    """Three alerts, three messages; the robot fails the first for 90 s. The two planned behind
    it keep their claims past the pending TTL, so no other process can take and send them."""
    r = rig()
    r.robot.answer = lambda now: (
        Delivery("retry", 503, "HTTP 503") if now < START_MS + 90_000 else Delivery("sent", 200, "HTTP 200")
    )
    tickets = [Ticket(0, n, None, b"{}", alert(f"a{n}")) for n in range(3)]
    await r.dispatcher.accept(tickets)
    while r.clock.now <= START_MS + 30_000:  # past the pending TTL; the backoff moves the clock
        await asyncio.sleep(0)
        await r.dispatcher.keep_claims()  # as the service does, at least every 10 s
    assert await r.ledger.claim([t.ledger_key for t in tickets]) == ["busy"] * 3


@synchronous
async def test_a_kefu_alert_read_a_day_late_is_history_but_alertmanagers_day_old_alert_is_sent() -> None:
    """Alertmanager posts what fires now, with `startsAt` as its time: a rule firing for 26 h
    that notify first hears of (deployed late, a channel just added) was counted `stale` and
    never sent, while the webhook answered 200."""
    day_old = START_MS - 26 * 3600 * 1000
    late = rig()
    await late.run([alert("a", ts=day_old)])  # a record of kefu.alerts: a replay from the start
    assert late.robot.received == [] and late.registry.get_sample_value(
        "kefu_notifications_total", {"channel": "none", "outcome": "stale"}
    )
    firing = rig()
    rule = RuleAlert(
        alert="KefuInputMisrouted",
        state="firing",
        shop_id="s1",
        agent_id="",
        value=1.0,
        threshold=0.0,
        ts=day_old,
        alert_id="am|c0ffee|2026-02-28T09:00:00Z",
        summary="输入分区错误",
    )
    await firing.dispatcher.accept_events([rule])
    for _ in range(1000):
        if firing.robot.received:
            break
        await asyncio.sleep(0)
        await firing.dispatcher.settle_done()
    await firing.dispatcher.close()
    assert [n.title for _, n in firing.robot.received] and "KefuInputMisrouted" not in str(firing.dead)


@synchronous
async def test_shops_sharing_one_robot_share_its_twenty_a_minute() -> None:
    """Every shop without a `notify:` of its own posts to the defaults' robot: each (shop,
    channel) kept its own 20 a minute, so three shops posted 36 in a minute to a robot that
    takes 20 (DingTalk then throttles it for ten minutes, and the alerts were dead-lettered)."""
    shops = ("s1", "s2", "s3")
    shared = rig(Settings(shops={shop: ShopSettings(name=shop) for shop in shops}))
    events = [
        msgspec.structs.replace(
            alert(f"{shop}:agent{n}"), shop_id=shop, alert_id=f"BuyerWaitingTooLong|{shop}|{n}|1"
        )
        for n in range(12)
        for shop in shops
    ]
    done = await shared.run(events)
    await shared.dispatcher.close()
    first_minute = [notice for at, notice in shared.robot.received if at < START_MS + MINUTE_MS]
    assert len(done) == 36 and shared.dead == []
    assert len(first_minute) <= 20 < 36, len(first_minute)
    named = " ".join(notice.text for _, notice in shared.robot.received)
    assert all(f"{shop}:agent{n}" in named for shop in shops for n in range(12)), "every alert is told"


async def _pump(dispatcher: Dispatcher, clock: StillClock, seconds: int) -> list[Ticket]:
    """The consumer loop's bookkeeping, a second of fake time a turn: settle; keep the claims
    alive and retry busy tickets every 10 s."""
    done: list[Ticket] = []
    for second in range(seconds):
        await asyncio.sleep(0.002)
        done += await dispatcher.settle_done()
        if second % 10 == 9:
            await dispatcher.keep_claims()
            await dispatcher.retry_busy()
        clock.now += 1000
    await asyncio.sleep(0.002)
    return done + await dispatcher.settle_done()


@synchronous
async def test_a_restart_while_one_robot_holds_an_alert_sends_it_only_to_the_robots_that_lack_it() -> None:
    """23:30 a buyer waits: `ding` takes the 预警 and the 已恢复 at once; `night` holds both
    through its quiet hours, so the claims stay pending and the offsets uncommitted. 01:00 notify
    is stopped and started again (an upgrade): the claims lapse, the new process takes them and
    posted the finished episode to `ding` a second time."""
    from streams.notify.routes import Routes

    clock = StillClock(START_MS + 12 * 3600 * 1000 + 30 * 60_000)  # 23:30 in Shanghai
    ledger = MemoryNotifyLedger(clock.now_ms)
    ding = ChannelConfig(type="webhook", name="ding", url=Secret("http://127.0.0.1:1/ding?token=d1ng"))
    night = ChannelConfig(
        type="webhook",
        name="night",
        url=Secret("http://127.0.0.1:1/night?token=n1ght"),
        quiet_hours="23:00-08:00",
    )
    received: list[tuple[str, str]] = []

    async def send(channel: ChannelConfig, notice: Notice, now_ms: int) -> Delivery:
        received.append((channel.name, notice.title))
        return Delivery("sent", 200, "HTTP 200")

    def process() -> Dispatcher:
        async def dead_letter(ticket: Ticket, reason: str, detail: str) -> None:
            raise AssertionError(reason)

        metrics = NotifyMetrics.create(CollectorRegistry())
        return Dispatcher(Routes(Settings(), {"": (ding, night)}), ledger, send, clock, metrics, dead_letter)

    episode = [alert("a", ts=clock.now), alert("a", "resolved", ts=clock.now + 40_000)]
    first = process()
    await first.accept([Ticket(0, 7, None, b"{}", episode[0])])
    await _pump(first, clock, 40)
    await first.accept([Ticket(0, 8, None, b"{}", episode[1])])
    assert await _pump(first, clock, 60) == []  # held on `night`: not done, not committed
    await first.close()
    clock.now += 90 * 60_000  # 01:00: the first process's claims have lapsed
    second = process()
    await second.accept([Ticket(0, 7, None, b"{}", episode[0]), Ticket(0, 8, None, b"{}", episode[1])])
    await _pump(second, clock, 60)
    await second.close()
    assert [name for name, _ in received] == ["ding", "ding"], received


@pytest.mark.parametrize("ending", ["clean_stop", "crash"])
def test_after_a_restart_the_resolution_never_reaches_the_group_before_its_firing(ending: str) -> None:
    """11:00:00 the 预警's robot answers 500 and notify retries; 11:00:05 notify stops; the new
    process reads both records, and the agent replies at 11:00:10. The 已恢复 was claimed at once
    while the 预警's claim was still the stopped process's: the group read 已恢复, then "buyer
    waiting 23 s", as its last word. A clean stop now lets its claims go; after a crash the
    已恢复 waits for its 预警."""

    async def scenario() -> list[tuple[int, str]]:
        from streams.notify.routes import Routes

        clock = StillClock(START_MS)
        ledger = MemoryNotifyLedger(clock.now_ms)
        received: list[tuple[int, str]] = []
        down_until = START_MS + 5_000

        async def send(channel: ChannelConfig, notice: Notice, now_ms: int) -> Delivery:
            if now_ms < down_until:
                return Delivery("retry", 500, "HTTP 500")
            received.append((now_ms, notice.title))
            return Delivery("sent", 200, "HTTP 200")

        def process() -> Dispatcher:
            async def dead_letter(ticket: Ticket, reason: str, detail: str) -> None:
                raise AssertionError(reason)

            metrics = NotifyMetrics.create(CollectorRegistry())
            return Dispatcher(Routes(Settings(), {"": (CHANNEL,)}), ledger, send, clock, metrics, dead_letter)

        firing, resolved = alert("a", ts=START_MS), alert("a", "resolved", ts=START_MS + 10_000)
        first = process()
        await first.accept([Ticket(0, 7, None, b"{}", firing)])
        await _pump(first, clock, 5)
        if ending == "clean_stop":
            await first.close()
        else:
            for task in first._tasks:  # gone, its claims left pending until they lapse
                task.cancel()
        second = process()
        await second.accept([Ticket(0, 7, None, b"{}", firing)])
        await _pump(second, clock, 5)
        await second.accept([Ticket(0, 8, None, b"{}", resolved)])
        await _pump(second, clock, 60)
        await second.close()
        return received

    said = asyncio.run(scenario())
    assert [title for _, title in said] == [
        "【客服预警】s1 · a：买家已等待 23 秒（阈值 15 秒）",
        "【客服预警】s1 · a：已恢复",
    ]
    if ending == "crash":  # both wait for the lapsed claim, then go together
        assert said[1][0] - said[0][0] < 2_000, "the 已恢复 goes with its 预警, not a retry round later"


@synchronous
async def test_one_shops_retried_message_never_holds_another_shops_alert_on_the_same_robot() -> None:
    """The robot's budget is shared; its retries are not: s1's message that the robot answers
    500 to is retried for up to retry_seconds, and s2's alert goes meanwhile."""
    from streams.notify.routes import Routes

    clock = StillClock(START_MS)
    received: list[str] = []

    async def send(channel: ChannelConfig, notice: Notice, now_ms: int) -> Delivery:
        if "s1 · a" in notice.title:
            return Delivery("retry", 500, "HTTP 500")
        received.append(notice.title)
        return Delivery("sent", 200, "HTTP 200")

    async def dead_letter(ticket: Ticket, reason: str, detail: str) -> None:
        return None

    settings = Settings(shops={"s1": ShopSettings(name="s1"), "s2": ShopSettings(name="s2")})
    routes = Routes(settings, {"": (CHANNEL,)})
    metrics = NotifyMetrics.create(CollectorRegistry())
    dispatcher = Dispatcher(routes, MemoryNotifyLedger(clock.now_ms), send, clock, metrics, dead_letter)
    other = msgspec.structs.replace(alert("b"), shop_id="s2", alert_id="BuyerWaitingTooLong|s2|b|1")
    await dispatcher.accept([Ticket(0, 0, None, b"{}", alert("a"))])
    await _pump(dispatcher, clock, 2)  # s1's message is being retried
    await dispatcher.accept([Ticket(0, 1, None, b"{}", other)])
    await _pump(dispatcher, clock, 3)
    await dispatcher.close()
    assert received == ["【客服预警】s2 · b：买家已等待 23 秒（阈值 15 秒）"]
