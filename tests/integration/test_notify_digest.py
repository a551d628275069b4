"""The daily digest through notify's own parts, in process: the claim in real Redis, the channels'
outboxes, real HTTP to the stand-in robots (tests/robots.py, which check each signature).

Two notify "processes" (each its own dispatcher, scheduler and Redis claim owner) are asked at
the minutes around a shop's 09:00 in Asia/Kathmandu (UTC+05:45, so no whole hour of UTC); the
schedulers are given that time, the robots sign with the real one. Only the digest's report is
a sample (no worker runs here). Redis db 14 (test_notify.py's), only this test's shop's keys.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import date
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import aiohttp
from prometheus_client import CollectorRegistry

from agents.store.connect import RedisClient, connect
from agents.store.notify_store import RedisNotifyLedger, ledger_key
from config.calendar import calendar_for
from config.settings import ChannelConfig, Settings, resolve_channels, settings_from_yaml
from streams.contract.floor import TeamWindowValues
from streams.contract.report import Report
from streams.notify.clock import SystemClock
from streams.notify.digest import LedgerDigestClaim, digest_ledger_key, digest_plans
from streams.notify.dispatch import Dispatcher, Ticket
from streams.notify.metrics import NotifyMetrics
from streams.notify.robots import Delivery, deliver
from streams.notify.routes import Routes
from streams.notify.schedule import DigestScheduler, local_instant_ms
from streams.notify.service import Digests
from streams.render.notices import Notice
from tests.integration.harness import Stack
from tests.report_samples import sample_report
from tests.robots import RobotServer

DB = 14
ZONE = "Asia/Kathmandu"
SECRETS = {"dingtalk": "SECdigest0a1b2c3d4e5f60718293a4b5c6", "webhook": "hook-digest-5d1e9a7c3b"}
MINUTE = 60_000
DAY_MS = 24 * 3_600_000


def settings_for(shop: str) -> Settings:
    return settings_from_yaml(f"""
defaults:
  notify:
    floor_url: http://wall.example:6066
    channels:
      - {{type: dingtalk, url_env: KEFU_TEST_ROBOT_DINGTALK_URL, secret_env: KEFU_TEST_ROBOT_DINGTALK_SECRET}}
      - {{type: webhook, url_env: KEFU_TEST_ROBOT_WEBHOOK_URL, secret_env: KEFU_TEST_ROBOT_WEBHOOK_SECRET}}
shops:
  {shop}: {{name: 加德满都店, timezone: {ZONE}}}
""")


async def fetch(shop: str, day: int) -> tuple[Report, TeamWindowValues | None]:
    report = sample_report(days=1, agents=3)
    report.shop = shop
    report.from_ = report.to = date.fromordinal(day).isoformat()
    return report, None


def notify_process(
    settings: Settings, shop: str, channels: tuple[ChannelConfig, ...], client: RedisClient, now_ms: int
) -> tuple[Digests, aiohttp.ClientSession]:
    session = aiohttp.ClientSession()

    async def send(channel: ChannelConfig, notice: Notice, at_ms: int) -> Delivery:
        return await deliver(session, channel, notice, at_ms)

    async def dead_letter(ticket: Ticket, reason: str, detail: str) -> None:
        raise AssertionError(f"a dead letter: {reason}: {detail}")

    routes = Routes(settings, {shop: channels})
    metrics = NotifyMetrics.create(CollectorRegistry())
    ledger = RedisNotifyLedger(client)  # its own owner: another process's
    dispatcher = Dispatcher(routes, ledger, send, SystemClock(), metrics, dead_letter)
    scheduler = DigestScheduler(digest_plans(settings), LedgerDigestClaim(ledger), now_ms)
    return Digests(scheduler, fetch, dispatcher), session


async def two_processes_around_nine(
    settings: Settings, shop: str, channels: tuple[ChannelConfig, ...], redis_url: str, nine: int
) -> tuple[int, float]:
    """Both processes asked at 08:59:30, 08:59:59, 09:00:00 and 09:01; (digests sent, the ledger's
    `sent` TTL in s)."""
    client = connect(redis_url)
    claim = ledger_key(*digest_ledger_key(shop, calendar_for(ZONE).day(nine) - 1))
    processes = [notify_process(settings, shop, channels, client, nine - 30_000) for _ in range(2)]
    sent = 0
    try:
        for now in (nine - 30_000, nine - 1, nine, nine + MINUTE):
            for digests, _ in processes:
                sent += await digests.tick(now)
        deadline = time.monotonic() + 10
        while any(d.dispatcher.in_flight() for d, _ in processes) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for digests, _ in processes:
            await digests.dispatcher.settle_done()  # as the service's next round does
        return sent, await client.pttl(claim) / 1000
    finally:
        for digests, session in processes:
            await digests.dispatcher.close()
            await session.close()
        await client.delete(claim)
        await client.aclose()


def test_two_notify_processes_send_the_digest_once_at_the_shops_nine_to_each_robot(stack: Stack) -> None:
    shop = f"digest-{uuid.uuid4().hex[:8]}"
    settings = settings_for(shop)
    today = calendar_for(ZONE).day(int(time.time() * 1000))
    nine = local_instant_ms(date.fromordinal(today), clock_time(9, 0), ZoneInfo(ZONE))
    redis_url = stack.redis_url.rsplit("/", 1)[0] + f"/{DB}"
    with RobotServer(SECRETS) as robots:  # type: ignore[arg-type]
        channels = resolve_channels(settings, shop, robots.environ())
        sent, ttl_s = asyncio.run(two_processes_around_nine(settings, shop, channels, redis_url, nine))
        received = robots.messages()
    yesterday = date.fromordinal(today - 1).isoformat()
    title = f"【客服日报】加德满都店 · {yesterday}"
    assert sent == 1
    assert sorted((m.robot, m.text.splitlines()[0].strip("*")) for m in received) == [
        ("dingtalk", title),
        ("webhook", title),
    ]
    link = f"http://wall.example:6066/report?shop={shop}&from={yesterday}&to={yesterday}"
    assert all(link in m.text for m in received), [m.text for m in received]
    assert 2 * DAY_MS / 1000 < ttl_s <= 3 * DAY_MS / 1000  # sent: it outlives any restart's catch-up
