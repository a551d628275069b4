"""The worker's HTTP pages (interfaces.md): metrics, the floor API and stream, the page, health.

The floor is a typed value up to here; these turn it into JSON, the only place that does.
Every parameter is checked before anything is read (http_params.py), a bad one is a 400 with
one sentence, and an outage is a 503 that names the dependency in words, never its address.
Reports take turns in a small pool of processes (report_pool.py); `/metrics` renders on a thread
of its own, from text written once per floor snapshot, so a scrape never waits behind them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import faust
import msgspec
from aiohttp.web import AppRunner, BaseRequest, StreamResponse
from aiohttp.web import Response as AiohttpResponse
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST

from agents.core.clock import wall_clock_ms
from agents.core.report_range import day_text, oldest_kept_day
from agents.exposure.page import FLOOR_PAGE
from agents.exposure.report import ReportParts, UnknownReportShop
from agents.worker.access import NOBODY, Access, access_middleware, grant_of
from agents.worker.bodies import send_body
from agents.worker.details_views import install_details_views
from agents.worker.floor_stream import FloorStreams, SlowReader, StreamsFull, drop
from agents.worker.health import Health
from agents.worker.http_params import (
    BadRequest,
    Query,
    ReportParams,
    check_floor_page,
    report_params,
    shop_param,
)
from agents.worker.refusals import Refusal, attempt, html_refusal, html_sentence, json_refusal, unknown_shop
from agents.worker.report_pool import ReportPool
from agents.worker.report_render import report_json_bytes, report_page_bytes
from agents.worker.runtime import Runtime
from config.secret import REDACTED, Secret, mask_secrets
from config.settings import Settings
from streams.contract.floor import floor_json
from streams.contract.report import ReportRequestError

# How long a connection may stay open with no request under way: one that never completes its
# request is closed then too. A browser, or Prometheus between scrapes, opens another.
IDLE_CONNECTION_SECONDS = 30.0
EVENT_STREAM_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-store"}


async def _shop_json(view: View, request: Request, read: Callable[[str], Awaitable[Any]]) -> Response:
    """A shop's JSON from `read`: a bad `shop` is a 400 with its sentence, Redis away a 503."""
    body = await attempt(lambda: read(shop_param(_query(request))))
    if isinstance(body, Refusal):
        return json_refusal(view, body)
    return view.json(body)


def install_views(app: faust.App, runtime: Runtime, access: Access = NOBODY) -> None:
    """The pages, behind `access` (the worker's, from `load_access`; other commands serve none)."""
    web = runtime.settings.web
    reports = ReportPool(web.report_processes, web.report_queue)

    async def stop_render_processes(_: object) -> None:
        reports.close()

    web_app = app.web.web_app  # type: ignore[attr-defined]  # faust's aiohttp driver
    # Faust's runner keeps aiohttp's defaults: a connection that sends nothing, or half a
    # request, held a file descriptor (which Redis and Kafka need too) for an hour, before any
    # token was checked. Replaced before the server starts, with the idle limit bounded.
    app.web._runner = AppRunner(web_app, access_log=None, keepalive_timeout=IDLE_CONNECTION_SECONDS)  # type: ignore[attr-defined]
    web_app.on_cleanup.append(stop_render_processes)
    # Every route below is checked by this one middleware against agents/worker/access.py's table.
    web_app.middlewares.append(access_middleware(access))
    web_app.on_response_prepare.append(_not_stored)
    _install_metrics(app, runtime)
    _install_floor(
        app,
        runtime,
        FloorStreams(web.max_streams, web.stream_write_timeout_seconds, per_shop=web.max_streams_per_shop),
    )
    _install_reports(app, _Reports(runtime, reports))
    install_details_views(app, runtime, reports)
    _install_health(app, Health(runtime, app))
    _install_config(app, runtime)


async def _not_stored(request: BaseRequest, response: StreamResponse) -> None:
    """Every answer is live, and most are a token's: a kiosk link's `?token=` carries no
    Authorization header to keep a shared cache from storing what it read."""
    response.headers.setdefault("Cache-Control", "no-store")


def _install_metrics(app: faust.App, runtime: Runtime) -> None:
    scrapes = ThreadPoolExecutor(1, thread_name_prefix="kefu-metrics")

    @app.page("/metrics")
    async def metrics(view: View, request: Request) -> Response:
        body = await asyncio.get_running_loop().run_in_executor(scrapes, runtime.exposition)
        return cast(Response, AiohttpResponse(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST}))


def _install_floor(app: faust.App, runtime: Runtime, streams: FloorStreams) -> None:
    @app.page("/api/v1/floor")
    async def floor_api(view: View, request: Request) -> Response:
        async def read(shop: str) -> Any:
            return floor_json(await runtime.reader.floor(shop, wall_clock_ms()))

        return await _shop_json(view, request, read)

    @app.page("/api/v1/floor/stream")
    async def floor_stream(view: View, request: Request) -> Response:
        """Server-Sent Events: the floor JSON once a second, until the client goes away."""
        try:
            shop = shop_param(_query(request))
        except BadRequest as exc:
            return view.json({"error": str(exc)}, status=400)
        stream = StreamResponse(headers=EVENT_STREAM_HEADERS)
        try:
            if cast(BaseRequest, request).method == "HEAD":  # the headers alone: a stream has no end
                await stream.prepare(cast(Any, request))
                await stream.write_eof()
                return cast(Response, stream)
            with streams.slot(shop):
                await stream.prepare(cast(Any, request))
                try:
                    await streams.serve(stream, shop, lambda: runtime.reader.floor(shop, wall_clock_ms()))
                except SlowReader:
                    drop(cast(BaseRequest, request).transport)
                return cast(Response, stream)
        except ConnectionError:  # gone before its headers were sent (a reload): no server error
            return cast(Response, stream)
        except StreamsFull as full:  # the worker's limit, or the shop's share of it
            return view.json({"error": str(full)}, status=503, headers={"Retry-After": "5"})

    @app.page("/api/v1/floor/trend")
    async def floor_trend(view: View, request: Request) -> Response:
        """The last hour for the floor's sparklines and arrows; the page polls it once a minute."""

        async def read(shop: str) -> Any:
            return msgspec.to_builtins(await runtime.trends.trend(shop, wall_clock_ms()))

        return await _shop_json(view, request, read)

    @app.page("/floor")
    async def floor_page(view: View, request: Request) -> Response:
        try:
            check_floor_page(_query(request))
        except BadRequest as exc:
            return view.html(html_sentence(str(exc)), status=400)
        return view.html(FLOOR_PAGE)


# What sends a rendered body to its client (agents/worker/bodies.py), inside the report's turn.
Send = Callable[[bytes], Awaitable[Response]]


@dataclass
class _Reports:
    """A report's body, rendered in its turn in the small pool of render processes, and sent
    in that turn too: a body is tens of MB at the cell limit, so the bodies in flight are as
    many as the turns, and a client that stops reading is dropped (bodies.py), not kept."""

    runtime: Runtime
    pool: ReportPool

    async def send_json(self, asked: ReportParams, send: Send) -> Response:
        async with self.pool.turn():
            parts = await self._parts(asked)
            return await send(await self.pool.run(report_json_bytes, parts))

    async def send_page(self, asked: ReportParams, send: Send) -> Response:
        async with self.pool.turn():
            parts = await self._parts(asked)
            now_ms, max_cells = wall_clock_ms(), self.runtime.settings.web.max_report_cells
            previous = await self.runtime.reports.previous_parts(asked.shop, parts.days, now_ms, max_cells)
            policy = parts.policy
            lists_from = day_text(oldest_kept_day(policy.calendar.day(now_ms), policy.details_days))
            body = await self.pool.run(
                report_page_bytes, parts, previous, policy.alert_threshold_seconds, lists_from
            )
            return await send(body)

    async def _parts(self, asked: ReportParams) -> ReportParts:
        max_cells = self.runtime.settings.web.max_report_cells
        try:
            return await self.runtime.reports.request_parts(
                asked.shop, asked.first, asked.last, asked.by, wall_clock_ms(), max_cells
            )
        except UnknownReportShop:
            raise ReportRequestError(unknown_shop(asked.shop)) from None


def _install_reports(app: faust.App, reports: _Reports) -> None:
    write_timeout = reports.runtime.settings.web.stream_write_timeout_seconds

    def sender(request: Request, content_type: str) -> Send:
        return lambda body: send_body(request, body, content_type, write_timeout)

    @app.page("/api/v1/report")
    async def report_api(view: View, request: Request) -> Response:
        send = sender(request, "application/json")
        answer = await attempt(lambda: reports.send_json(report_params(_query(request)), send))
        if isinstance(answer, Refusal):
            return json_refusal(view, answer)
        return answer

    @app.page("/report")
    async def report_page(view: View, request: Request) -> Response:
        """The report as the page a manager reads or prints (日报/周报/月报)."""
        send = sender(request, "text/html; charset=utf-8")
        answer = await attempt(lambda: reports.send_page(report_params(_query(request)), send))
        if isinstance(answer, Refusal):
            return html_refusal(view, answer)
        return answer


def _install_health(app: faust.App, health: Health) -> None:
    @app.page("/healthz")
    async def healthz(view: View, request: Request) -> Response:
        problems = await health.problems()
        if problems:
            return view.json({"status": "unhealthy", "problems": problems}, status=503)
        return view.json({"status": "ok"})


def _install_config(app: faust.App, runtime: Runtime) -> None:
    @app.page("/api/v1/config")
    async def config_status(view: View, request: Request) -> Response:
        """The effective settings (admin only), every secret masked, only the shops one may see."""
        grant = grant_of(request)
        settings = _effective_settings(runtime)
        shown = msgspec.structs.replace(
            settings, shops={k: v for k, v in settings.shops.items() if grant.may_see(k)}
        )
        text = msgspec.json.encode(shown, enc_hook=_masked_secret).decode()
        return view.bytes(mask_secrets(text).encode(), content_type="application/json")


def _effective_settings(runtime: Runtime) -> Settings:
    """What runs now: the start-up settings, with the sections a reload applies live (defaults
    and shops, config/watch.py) as last reloaded; the others need a restart to change."""
    live = runtime.policies.settings
    return msgspec.structs.replace(runtime.settings, defaults=live.defaults, shops=live.shops)


def _masked_secret(value: object) -> object:
    if isinstance(value, Secret):
        return REDACTED
    raise NotImplementedError(f"cannot show {type(value).__name__}")


def _query(request: Request) -> Query:
    return cast(BaseRequest, request).query  # faust types it as a plain mapping
