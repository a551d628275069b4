"""`kefu-pulse notify`: alert notices to the shops' group robots; `--test SHOP` tries each one.

The composition root of streams/notify: the robots' URLs and secrets read (one sentence when
one is missing), Redis's ledger, Kafka's consumer and producer, and on `--port` both /metrics
and Alertmanager's webhook `POST /alertmanager` (streams/notify/alertmanager.py).
"""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
import faust
from aiohttp import web
from faust.cli import AppCommand, option
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from agents.store.connect import RedisClient, connect
from agents.store.notify_store import RedisNotifyLedger
from agents.worker.runtime import Runtime
from agents.worker.views import IDLE_CONNECTION_SECONDS
from config.errors import KefuError
from config.secret import mask_secrets
from config.settings import ChannelConfig, Settings, WebSettings, resolve_channels, shop_notify
from streams.commands.base import Command, require_redis
from streams.notify.alertmanager import AlertmanagerIntake, bearer_guard, require_notify_binding
from streams.notify.clock import SystemClock
from streams.notify.digest import LedgerDigestClaim, ReportSource, digest_plans, report_fetcher
from streams.notify.dispatch import Dispatcher
from streams.notify.metrics import NotifyMetrics
from streams.notify.robots import Delivery, deliver
from streams.notify.routes import Routes
from streams.notify.schedule import DigestScheduler
from streams.notify.service import DeadLetters, Digests, NotifyService, kafka_links, notify_group
from streams.render.notices import Notice, floor_link, names_for, test_notice
from streams.wire.preflight import require_kafka

DEFAULT_PORT = 6067


class NoChannels(KefuError, LookupError):
    """`--test SHOP` for a shop with no channel to send to."""


class TestFailed(KefuError):
    """Some channel did not accept the test message (each answer was printed)."""


class PortInUse(KefuError, OSError):
    pass


def register(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    @app.command(
        option("--test", "test_shop", default=None, metavar="SHOP", help="send one test message per channel"),
        option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="port of /metrics"),
        base=Command,
    )
    async def notify(self: AppCommand, test_shop: str | None, port: int) -> None:
        """Send alerts to the shops' DingTalk, WeCom, Feishu or webhook robots."""
        if test_shop is not None:
            await runtime.close()  # the worker's Redis store: a test message reads no report
            await send_tests(settings, test_shop)
            return
        try:
            await run_notify(settings, port, runtime.reports)  # the digests read the reports
        finally:
            await runtime.close()


def all_channels(settings: Settings) -> dict[str, tuple[ChannelConfig, ...]]:
    """Every configured shop's channels, and under "" the defaults' (for any other shop).
    A missing variable or unreadable file ends the start-up with one sentence (ConfigError)."""
    channels = {"": resolve_channels(settings, "")}
    for shop_id in settings.shops:
        channels[shop_id] = resolve_channels(settings, shop_id)
    return channels


async def send_tests(settings: Settings, shop: str) -> None:
    channels = resolve_channels(settings, shop)
    if not channels:
        raise NoChannels(
            f"notify --test: shop {shop!r} has no channels (defaults.notify.channels is empty too)"
        )
    notice = test_notice(
        shop, names_for(settings, shop, "").shop, floor_link(shop_notify(settings, shop).floor_url, shop)
    )
    failed = 0
    async with aiohttp.ClientSession() as session:
        for channel in channels:
            delivery = await deliver(session, channel, notice, SystemClock().now_ms())
            status = "" if delivery.status is None else f" HTTP {delivery.status}"
            print(
                mask_secrets(
                    f"{channel.name} ({channel.type}): {delivery.outcome}{status}: {delivery.detail}"
                )
            )
            failed += delivery.outcome != "sent"
    sys.stdout.flush()
    if failed:
        raise TestFailed(
            f"notify --test: {failed} of {len(channels)} channel(s) did not accept the test message"
        )


async def run_notify(settings: Settings, port: int, reports: ReportSource) -> None:
    require_notify_binding(settings.web)
    channels = all_channels(settings)
    routes = Routes(settings, channels)
    await require_kafka(settings)
    client = connect(settings.redis.url)
    await require_redis(settings, _Pingable(client))
    registry = CollectorRegistry()
    intake = AlertmanagerIntake()
    runner = await serve_metrics(registry, settings.web.host, port, intake, settings.web)
    links = kafka_links(settings)
    clock = SystemClock()
    try:
        async with aiohttp.ClientSession() as session:

            async def send(channel: ChannelConfig, notice: Notice, now_ms: int) -> Delivery:
                return await deliver(session, channel, notice, now_ms)

            ledger = RedisNotifyLedger(client)
            metrics = NotifyMetrics.create(registry)
            metrics.watch({channel.name for shop_channels in channels.values() for channel in shop_channels})
            dead = DeadLetters(settings, links.producer)
            dispatcher = Dispatcher(routes, ledger, send, clock, metrics, dead)
            intake.attach(dispatcher)
            scheduler = DigestScheduler(digest_plans(settings), LedgerDigestClaim(ledger), clock.now_ms())
            digests = Digests(scheduler, report_fetcher(reports, clock.now_ms), dispatcher)
            service = NotifyService(settings, dispatcher, links, digests)
            print(started_line(settings, routes, port), flush=True)
            await until_stopped(service)
    finally:
        await runner.cleanup()
        await client.aclose()


class _Pingable:
    def __init__(self, client: RedisClient) -> None:
        self.client = client

    async def ping(self) -> bool:
        return bool(await self.client.ping())


def started_line(settings: Settings, routes: Routes, port: int) -> str:
    shops = [shop for shop in settings.shops if routes.channels(shop)]
    default = len(routes.channels("__any other shop__"))
    return (
        f"kefu-pulse notify: group {notify_group(settings)}, {len(shops)} configured shop(s) with channels, "
        f"{default} default channel(s); metrics on http://{settings.web.host}:{port}/metrics"
    )


async def until_stopped(service: NotifyService) -> None:
    """Run until SIGINT or SIGTERM (Faust's own handlers would swallow them), then stop cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await service.run(stop)


async def serve_metrics(
    registry: CollectorRegistry,
    host: str,
    port: int,
    intake: AlertmanagerIntake | None = None,
    tokens: WebSettings | None = None,
) -> web.AppRunner:
    """/metrics, /healthz and (with `intake`) POST /alertmanager; with `tokens`, each behind its
    Bearer token (streams/notify/alertmanager.py, `bearer_guard`)."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")  # for probes, which carry no token

    app = web.Application(middlewares=[bearer_guard(tokens)] if tokens is not None else [])
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    if intake is not None:
        app.router.add_post("/alertmanager", intake.handle)
    # aiohttp's default holds an idle or half-sent connection an hour (agents/worker/views.py).
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=IDLE_CONNECTION_SECONDS)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise PortInUse(
            f"notify: cannot serve /metrics on {host}:{port} ({exc.strerror}); choose --port"
        ) from exc
    return runner
