"""Faust wiring: the batch agent, the leader's once-a-second duties, the HTTP views.

Everything here is thin; the work happens in `Runtime` and below.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any, cast

import faust
from aiohttp.web import Response as AiohttpResponse
from aiohttp.web import StreamResponse
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from agents.core.alerts import AlertEvent
from agents.exposure.page import FLOOR_PAGE
from agents.processing import wall_clock_ms
from agents.redis_access import check_redis_access
from agents.resume import resume_from_redis
from agents.runtime import Runtime
from config.settings import Settings
from config.watch import ConfigWatcher
from streams.app import input_topic, output_topic
from streams.batch_consumer import route_batches
from streams.deadletter import DeadLetter

log = logging.getLogger(__name__)


def install(app: faust.App, settings: Settings) -> Runtime:
    source = input_topic(app, settings)
    dead_letter_topic = output_topic(app, settings.kafka.topics.deadletter)

    async def send_dead_letters(letters: Sequence[DeadLetter]) -> None:
        pending = [await dead_letter_topic.send(key=letter.key, value=letter.payload()) for letter in letters]
        await asyncio.gather(*pending)

    alert_topic = output_topic(app, settings.kafka.topics.alerts)

    async def send_alerts(events: Sequence[AlertEvent]) -> None:
        pending = [
            await alert_topic.send(
                key=f"{e.shop_id}:{e.agent_id}".encode(), value=json.dumps(e.as_json()).encode()
            )
            for e in events
        ]
        await asyncio.gather(*pending)

    runtime = Runtime.create(settings, send_dead_letters, send_alerts)
    # No agent on the input topics: each fetch goes to the runtime whole (streams/batch_consumer.py).
    route_batches(app, source, runtime.apply_until_done)

    input_topics = {settings.kafka.topics.messages, settings.kafka.topics.orders}

    async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        # First, before any await: Faust has already told its recovery service to seek the new
        # partitions, and that runs as soon as this yields. Installed later, the first seek
        # goes to Kafka's committed offsets, which can be ahead of Redis: records skipped.
        resume_from_redis(app, runtime.store, input_topics)
        # Redis is first needed right after this (resuming from its offsets). A wrong password
        # or an untrusted certificate stops the worker here, saying so; an outage does not,
        # since the batch loop retries through it.
        await check_redis_access(runtime.store)

    cast(Any, app.on_partitions_assigned).connect(on_assigned)  # mode's stub types lag its API

    @app.timer(1.0)
    async def publish_floor() -> None:
        try:
            await runtime.update_lag(highwaters(app, input_topics))
        except (RedisError, OSError) as exc:
            log.warning("lag update failed: %s", exc)
        if not app.is_leader():
            runtime.clear_snapshot()
            return
        try:
            await runtime.refresh_snapshot()
        except (RedisError, OSError) as exc:
            log.warning("floor refresh failed: %s", exc)

    watcher = ConfigWatcher(settings, runtime.policies.update)

    @app.timer(2.0)
    async def reload_configuration() -> None:
        watcher.poll()

    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, runtime.registry)
        return cast(Response, AiohttpResponse(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST}))

    @app.page("/api/v1/floor")
    async def floor_api(web: View, request: Request) -> Response:
        shop = request.query.get("shop")
        if not shop:
            return web.json({"error": "missing query parameter: shop"}, status=400)
        return web.json(await runtime.reader.floor(shop, wall_clock_ms()))

    @app.page("/api/v1/floor/stream")
    async def floor_stream(web: View, request: Request) -> Response:
        """Server-Sent Events: the floor JSON once a second, until the client goes away."""
        shop = request.query.get("shop")
        if not shop:
            return web.json({"error": "missing query parameter: shop"}, status=400)
        stream = StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await stream.prepare(cast(Any, request))
        try:
            while True:
                try:
                    payload = json.dumps(
                        await runtime.reader.floor(shop, wall_clock_ms()), ensure_ascii=False
                    )
                    await stream.write(f"retry: 1000\ndata: {payload}\n\n".encode())
                except (RedisError, OSError) as exc:
                    if isinstance(exc, ConnectionResetError):
                        raise
                    await stream.write(f"event: degraded\ndata: {json.dumps(str(exc))}\n\n".encode())
                await asyncio.sleep(1.0)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return cast(Response, stream)

    @app.page("/floor")
    async def floor_page(web: View, request: Request) -> Response:
        return web.html(FLOOR_PAGE)

    @app.page("/healthz")
    async def healthz(web: View, request: Request) -> Response:
        problems = await health_problems(runtime, settings)
        if problems:
            return web.json({"status": "unhealthy", "problems": problems}, status=503)
        return web.json({"status": "ok"})

    return runtime


def highwaters(app: faust.App, topics: set[str]) -> dict[tuple[str, int], int]:
    consumer = app.consumer
    out: dict[tuple[str, int], int] = {}
    for tp in consumer.assignment():
        if tp.topic not in topics:
            continue
        highwater = consumer.highwater(tp)
        if highwater is not None and highwater >= 0:
            out[(tp.topic, tp.partition)] = int(highwater)
    return out


async def health_problems(runtime: Runtime, settings: Settings) -> list[str]:
    problems: list[str] = []
    try:
        await asyncio.wait_for(runtime.store.ping(), timeout=2)
    except (RedisError, OSError, TimeoutError) as exc:
        problems.append(f"redis unreachable: {type(exc).__name__}")
    if not await kafka_reachable(settings.kafka.bootstrap):
        problems.append("kafka unreachable: no bootstrap server accepts connections")
    return problems


async def kafka_reachable(bootstrap: str, timeout: float = 2.0) -> bool:
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host or "127.0.0.1", int(port)), timeout
            )
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        return True
    return False
