"""The worker's HTTP pages (interfaces.md): metrics, the floor API and stream, the page, health.

The floor is a typed value up to here; these turn it into JSON, the only place that does.
"""

from __future__ import annotations

import asyncio
import html
import json
from typing import Any, cast

import faust
import msgspec
from aiohttp.web import Response as AiohttpResponse
from aiohttp.web import StreamResponse
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agents.clock import wall_clock_ms
from agents.exposure.page import FLOOR_PAGE
from agents.runtime import Runtime
from agents.store.errors import STORE_ERRORS
from agents.worker.health import Health
from streams.floor_model import floor_json
from streams.report_model import Report, ReportRequestError, report_json
from streams.report_output import encode_report

MISSING_SHOP = {"error": "missing query parameter: shop"}


def install_views(app: faust.App, runtime: Runtime) -> None:
    health = Health(runtime, app)

    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, runtime.registry)
        return cast(Response, AiohttpResponse(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST}))

    @app.page("/api/v1/floor")
    async def floor_api(web: View, request: Request) -> Response:
        shop = request.query.get("shop")
        if not shop:
            return web.json(MISSING_SHOP, status=400)
        return web.json(floor_json(await runtime.reader.floor(shop, wall_clock_ms())))

    @app.page("/api/v1/floor/stream")
    async def floor_stream(web: View, request: Request) -> Response:
        """Server-Sent Events: the floor JSON once a second, until the client goes away."""
        shop = request.query.get("shop")
        if not shop:
            return web.json(MISSING_SHOP, status=400)
        stream = StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await stream.prepare(cast(Any, request))
        try:
            while True:
                try:
                    floor = await runtime.reader.floor(shop, wall_clock_ms())
                    payload = json.dumps(floor_json(floor), ensure_ascii=False)
                    await stream.write(f"retry: 1000\ndata: {payload}\n\n".encode())
                except STORE_ERRORS as exc:
                    if isinstance(exc, ConnectionResetError):
                        raise
                    await stream.write(f"event: degraded\ndata: {json.dumps(str(exc))}\n\n".encode())
                await asyncio.sleep(1.0)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return cast(Response, stream)

    @app.page("/api/v1/floor/trend")
    async def floor_trend(web: View, request: Request) -> Response:
        """The last hour for the floor's sparklines and arrows; the page polls it once a minute."""
        shop = request.query.get("shop")
        if not shop:
            return web.json(MISSING_SHOP, status=400)
        return web.json(msgspec.to_builtins(await runtime.trends.trend(shop, wall_clock_ms())))

    @app.page("/floor")
    async def floor_page(web: View, request: Request) -> Response:
        return web.html(FLOOR_PAGE)

    async def requested_report(request: Request) -> tuple[Report, bool]:
        query = request.query
        shop = query.get("shop")
        if not shop:
            raise ReportRequestError("missing query parameter: shop")
        return await runtime.reports.request(
            shop, query.get("from"), query.get("to"), query.get("by"), wall_clock_ms()
        )

    @app.page("/api/v1/report")
    async def report_api(web: View, request: Request) -> Response:
        try:
            report, by_day = await requested_report(request)
        except ReportRequestError as exc:
            return web.json({"error": str(exc)}, status=400)
        except STORE_ERRORS as exc:
            return web.json({"error": f"the store is unavailable: {exc}"}, status=503)
        return web.json(report_json(report, by_day=by_day))

    @app.page("/report")
    async def report_page(web: View, request: Request) -> Response:
        """The report as the page a manager reads or prints (日报/周报/月报)."""
        try:
            report, _ = await requested_report(request)
            previous = await runtime.reports.previous_team(report, wall_clock_ms())
        except ReportRequestError as exc:
            return web.html(f"<!doctype html><meta charset=utf-8><p>{html.escape(str(exc))}</p>", status=400)
        except STORE_ERRORS as exc:
            problem = html.escape(f"the store is unavailable: {exc}")
            return web.html(f"<!doctype html><meta charset=utf-8><p>{problem}</p>", status=503)
        threshold = runtime.policies(report.shop).alert_threshold_seconds
        # matplotlib takes a moment per chart: off the loop, so the worker keeps applying.
        page = await asyncio.get_running_loop().run_in_executor(
            None,
            lambda: encode_report(
                report, "html", by_day=True, previous=previous, threshold_seconds=threshold
            ),
        )
        return web.html(page.decode())

    @app.page("/healthz")
    async def healthz(web: View, request: Request) -> Response:
        problems = await health.problems()
        if problems:
            return web.json({"status": "unhealthy", "problems": problems}, status=503)
        return web.json({"status": "ok"})
