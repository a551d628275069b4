"""Bounds on what one HTTP client can make the worker do, and what an error tells it.

Reports: a size cap, a few at a time in render processes, 503 "busy" past the queue, and
`/metrics` never behind them. Streams: a connection cap, a write timeout for a client that
stops reading, cancellation passed on. Errors: the dependency in words, never its address.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import ClientConnectionResetError
from aiohttp.test_utils import make_mocked_request
from redis.exceptions import ConnectionError as RedisConnectionError

from agents.worker import bodies
from agents.worker import views as views_module
from tests.unit.worker import render_doubles
from tests.unit.worker.web import (
    INTERNAL_ADDRESS,
    REDIS_DOWN,
    FakeRuntime,
    HealthyApp,
    ReadStore,
    served,
    settings,
    web_app,
)

WAIT = 10.0  # seconds; only ever reached when the behaviour under test is missing


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# --- report size ---------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["/api/v1/report", "/report"])
def test_a_report_past_the_cell_limit_is_refused_before_the_day_buckets_are_read(route: str) -> None:
    store = ReadStore(agents_by_shop={"s1": [f"s1:a{i}" for i in range(10)]})
    runtime = FakeRuntime(settings(max_report_cells=50), store)

    async def scenario() -> tuple[int, str]:
        async with served(runtime) as client:
            response = await client.get(f"{route}?shop=s1&from=2026-01-01&to=2026-01-10&by=day")
            return response.status, await response.text()

    original = store.day_vectors
    store.day_vectors = None  # type: ignore[assignment,method-assign]  # any read of buckets fails
    status, body = run_with_today(scenario)
    store.day_vectors = original  # type: ignore[method-assign]
    assert status == 400, body
    assert "web.max_report_cells" in body and "50" in body
    assert "--by day --format csv" in body


def run_with_today(scenario: Any) -> Any:
    """A fixed wall clock (2026-02-01), so the range is inside the retention."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(views_module, "wall_clock_ms", lambda: 1_769_904_000_000)
        return run(scenario())


def test_a_report_within_the_limit_is_served() -> None:
    runtime = FakeRuntime(settings(max_report_cells=20), ReadStore())  # 2 agents x 10 days

    async def scenario() -> tuple[int, Any]:
        async with served(runtime) as client:
            response = await client.get("/api/v1/report?shop=s1&from=2026-01-01&to=2026-01-10&by=day")
            return response.status, await response.json()

    status, body = run_with_today(scenario)
    assert (
        status == 200 and len(body["days"]) == 10 and [a["agent"] for a in body["agents"]] == ["s1:A", "s1:B"]
    )


# --- reports off the loop, /metrics never behind them ---------------------------------------


@pytest.fixture
def held_renders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Page rendering, in the render processes, that waits for `release` (render_doubles.py)."""
    monkeypatch.setenv(render_doubles.RENDER_DIR, str(tmp_path))
    monkeypatch.setattr(views_module, "report_page_bytes", render_doubles.held_page)
    yield tmp_path
    (tmp_path / "release").touch()


def renders_started(folder: Path) -> list[Path]:
    return list(folder.glob("started-*"))


def test_metrics_and_healthz_answer_while_every_render_process_is_busy(
    held_renders: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    HealthyApp.install(monkeypatch)
    runtime = FakeRuntime(settings(), ReadStore())

    async def scenario() -> tuple[int, int, str, list[int]]:
        async with served(runtime) as client:
            pages = [asyncio.ensure_future(client.get("/report?shop=s1")) for _ in range(12)]
            while len(renders_started(held_renders)) < 2:  # both processes hold a page
                await asyncio.sleep(0.01)
            metrics = await asyncio.wait_for(client.get("/metrics"), WAIT / 2)
            text = await metrics.text()
            health = await asyncio.wait_for(client.get("/healthz"), WAIT / 2)
            (held_renders / "release").touch()
            return metrics.status, health.status, text, [(await page).status for page in pages]

    metrics_status, health_status, text, pages = run(scenario())
    assert pages == [200] * 12
    assert metrics_status == 200 and "kefu_test_scrapes_total 1.0" in text
    assert health_status in (200, 503)  # answered; the fake app is in no consumer group
    render_pids = {int(path.name.split("-")[1]) for path in renders_started(held_renders)}
    assert len(render_pids) == 2 and os.getpid() not in render_pids


def test_reports_past_the_queue_are_told_busy(held_renders: Path) -> None:
    runtime = FakeRuntime(settings(report_processes=1, report_queue=1), ReadStore())

    async def scenario() -> list[int]:
        async with served(runtime) as client:
            first = asyncio.ensure_future(client.get("/report?shop=s1"))
            while not renders_started(held_renders):
                await asyncio.sleep(0.01)
            second = asyncio.ensure_future(client.get("/api/v1/report?shop=s1"))
            await asyncio.sleep(0.1)  # queued behind the first
            third = await asyncio.wait_for(client.get("/api/v1/report?shop=s1"), WAIT / 2)
            (held_renders / "release").touch()
            return [(await first).status, (await second).status, third.status]

    assert run(scenario()) == [200, 200, 503]


def test_the_json_report_is_encoded_in_another_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views_module, "report_json_bytes", render_doubles.process_of_json)
    runtime = FakeRuntime(settings(), ReadStore())

    async def scenario() -> tuple[int, Any]:
        async with served(runtime) as client:
            response = await client.get("/api/v1/report?shop=s1")
            return response.status, await response.json()

    status, body = run(scenario())
    assert status == 200 and body["pid"] != os.getpid()


# --- floor streams ---------------------------------------------------------------------------


def test_streams_past_the_cap_are_refused() -> None:
    runtime = FakeRuntime(settings(max_streams=2), ReadStore())

    async def scenario() -> list[int]:
        async with served(runtime) as client:
            first = await client.get("/api/v1/floor/stream?shop=s1")
            second = await client.get("/api/v1/floor/stream?shop=s1")
            third = await asyncio.wait_for(client.get("/api/v1/floor/stream?shop=s1"), WAIT / 2)
            statuses = [first.status, second.status, third.status]
            for response in (first, second, third):
                response.close()
            return statuses

    assert run(scenario()) == [200, 200, 503]


def test_one_shop_takes_its_share_of_the_streams_and_leaves_the_rest_to_the_others() -> None:
    """One shop's token (or a screen reloading without end) holds at most max_streams_per_shop:
    another shop's wall screen still gets a stream, and a closed one frees its shop's place."""
    runtime = FakeRuntime(settings(max_streams=4, max_streams_per_shop=2), ReadStore())

    async def scenario() -> tuple[list[int], str, list[int]]:
        async with served(runtime) as client:
            opened = [await client.get("/api/v1/floor/stream?shop=s1") for _ in range(2)]
            refused = await asyncio.wait_for(client.get("/api/v1/floor/stream?shop=s1"), WAIT / 2)
            reason = (await refused.json())["error"] if refused.status == 503 else "a stream"  # never read
            other = await client.get("/api/v1/floor/stream?shop=s2")
            opened[0].close()
            await asyncio.sleep(0.2)  # the server sees the first one go
            again = await client.get("/api/v1/floor/stream?shop=s1")
            statuses = [*(r.status for r in opened), refused.status, other.status]
            for response in (*opened, refused, other, again):
                response.close()
            return statuses, reason, [again.status]

    statuses, reason, again = run(scenario())
    assert statuses == [200, 200, 503, 200]
    assert "max_streams_per_shop" in reason
    assert again == [200]


def stream_handler(runtime: FakeRuntime, path: str = "/api/v1/floor/stream") -> Any:
    """A route's handler (the floor stream's), to call with a mocked request (no socket)."""
    from streams.wire.app import create_app

    app = create_app(runtime.settings)
    views_module.install_views(app, runtime)  # type: ignore[arg-type]
    for route in web_app(app).router.routes():
        if route.method == "GET" and route.resource and route.resource.canonical == path:
            return route.handler
    raise AssertionError(f"no route {path}")


class StuckWriter:
    """A payload writer whose peer stopped reading: the first write is taken, the rest block."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.blocked = asyncio.Event()

    async def write(self, data: bytes, *args: Any, **kwargs: Any) -> None:
        self.chunks.append(bytes(data))
        if len(self.chunks) > 1:
            self.blocked.set()
            await asyncio.Event().wait()

    async def write_headers(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def drain(self) -> None:
        return None

    async def write_eof(self, *args: Any) -> None:
        return None

    def enable_compression(self, *args: Any) -> None:
        return None

    def enable_chunking(self) -> None:
        return None

    def send_headers(self, *args: Any) -> None:
        return None

    buffer_size = 0
    output_size = 0
    length = None


def test_a_client_that_stops_reading_is_dropped() -> None:
    runtime = FakeRuntime(settings(stream_write_timeout_seconds=0.2), ReadStore())

    async def scenario() -> Any:
        handler = stream_handler(runtime)
        writer = StuckWriter()
        request = make_mocked_request("GET", "/api/v1/floor/stream?shop=s1", writer=writer)
        await asyncio.wait_for(handler(request), WAIT)
        return writer, request.transport

    writer, transport = run(scenario())
    assert writer.blocked.is_set() and transport.abort.called


@pytest.mark.parametrize("path", ["/api/v1/report", "/report"])
def test_a_report_whose_client_stops_reading_is_dropped_not_kept(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report body is tens of MB at the cell limit: handed to aiohttp whole, it waited in the
    write buffer for as long as its client kept the connection open without reading."""
    monkeypatch.setattr(bodies, "CHUNK_BYTES", 256)  # the test report is small: many chunks
    runtime = FakeRuntime(settings(stream_write_timeout_seconds=0.2), ReadStore())

    async def scenario() -> Any:
        handler = stream_handler(runtime, path)
        writer = StuckWriter()
        request = make_mocked_request("GET", f"{path}?shop=s1", writer=writer)
        await asyncio.wait_for(handler(request), WAIT)
        return writer, request.transport

    writer, transport = run(scenario())
    assert writer.blocked.is_set() and transport.abort.called


class GoneWriter(StuckWriter):
    """A payload writer whose peer closed the connection after the first chunk."""

    async def write(self, data: bytes, *args: Any, **kwargs: Any) -> None:
        self.chunks.append(bytes(data))
        if len(self.chunks) > 1:
            raise ClientConnectionResetError("Cannot write to closing transport")


def test_a_client_that_goes_away_mid_body_ends_the_sending_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    """No error (aiohttp logs an escaped ConnectionResetError as one, with its traceback: any
    client allowed a download could fill the log with them)."""
    monkeypatch.setattr(bodies, "CHUNK_BYTES", 256)
    runtime = FakeRuntime(settings(), ReadStore())

    async def scenario() -> Any:
        handler = stream_handler(runtime, "/api/v1/report")
        request = make_mocked_request("GET", "/api/v1/report?shop=s1", writer=GoneWriter())
        await asyncio.wait_for(handler(request), WAIT)
        return request.transport

    assert run(scenario()).abort.called


class SlowWriter(StuckWriter):
    """A payload writer whose peer reads, but slowly: each chunk takes a while."""

    async def write(self, data: bytes, *args: Any, **kwargs: Any) -> None:
        self.chunks.append(bytes(data))
        await asyncio.sleep(0.05)


def test_a_report_read_too_slowly_is_dropped_and_gives_its_turn_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each chunk within the write timeout, but a few hundred bytes a second: it held its report
    turn for the body's chunks times the timeout (an hour for 25 MB)."""
    monkeypatch.setattr(bodies, "CHUNK_BYTES", 256)
    monkeypatch.setattr(bodies, "GRACE_SECONDS", 0.1)
    runtime = FakeRuntime(settings(), ReadStore())

    async def scenario() -> Any:
        handler = stream_handler(runtime, "/api/v1/report")
        writer = SlowWriter()
        request = make_mocked_request("GET", "/api/v1/report?shop=s1", writer=writer)
        await asyncio.wait_for(handler(request), WAIT)
        return writer, request.transport

    writer, transport = run(scenario())
    assert transport.abort.called and 2 <= len(writer.chunks) <= 6


@pytest.mark.parametrize("path", ["/api/v1/report", "/report"])
def test_a_head_request_gets_the_headers_and_no_body(path: str) -> None:
    """aiohttp leaves out the body of a HEAD answer only when it is not streamed: a streamed one
    followed the headers, and a keep-alive client read it as its next answer."""
    runtime = FakeRuntime(settings(), ReadStore())

    async def scenario() -> Any:
        handler = stream_handler(runtime, path)
        writer = StuckWriter()
        request = make_mocked_request("HEAD", f"{path}?shop=s1", writer=writer)
        response = await asyncio.wait_for(handler(request), WAIT)
        return writer, response

    writer, response = run(scenario())
    assert writer.chunks == [] and response.status == 200 and response.content_length > 0


def test_a_head_request_for_the_stream_gets_its_headers_and_ends() -> None:
    """The stream's HEAD sent events after its headers, unframed and without end: a keep-alive
    client read them as its next answer, and a request pipelined after it was never answered."""
    runtime = FakeRuntime(settings(), ReadStore())

    async def scenario() -> Any:
        handler = stream_handler(runtime)
        writer = StuckWriter()
        request = make_mocked_request("HEAD", "/api/v1/floor/stream?shop=s1", writer=writer)
        response = await asyncio.wait_for(handler(request), WAIT)
        return writer, response

    writer, response = run(scenario())
    assert writer.chunks == [] and response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")


class LostWriter(StuckWriter):
    """A payload writer whose peer vanished while a write waited: aiohttp's plain ConnectionError."""

    async def write(self, data: bytes, *args: Any, **kwargs: Any) -> None:
        self.chunks.append(bytes(data))
        if len(self.chunks) > 1:
            raise ConnectionError("Connection lost")


class GoneBeforeHeaders(StuckWriter):
    """A payload writer whose client left before the headers went out (a reload)."""

    async def write_headers(self, *args: Any, **kwargs: Any) -> None:
        raise ClientConnectionResetError("Cannot write to closing transport")


@pytest.mark.parametrize(
    ("writer_class", "chunks_taken"),
    [(GoneBeforeHeaders, 0), (LostWriter, 2)],
    ids=["gone_before_the_headers", "lost_while_a_write_waits"],
)
def test_a_stream_whose_client_goes_away_ends_quietly(
    writer_class: type[StuckWriter], chunks_taken: int
) -> None:
    """Only ConnectionResetError, and only once the headers were out, was taken as the client's
    going: a lost connection, or one gone before the headers (a reload on a busy loop),
    escaped, and aiohttp logged every wall screen's reload as a server error (found in review)."""
    runtime = FakeRuntime(settings(), ReadStore())

    async def scenario() -> Any:
        handler = stream_handler(runtime)
        writer = writer_class()
        request = make_mocked_request("GET", "/api/v1/floor/stream?shop=s1", writer=writer)
        await asyncio.wait_for(handler(request), WAIT)
        return writer

    assert len(run(scenario()).chunks) == chunks_taken


def test_a_cancelled_stream_passes_the_cancellation_on() -> None:
    runtime = FakeRuntime(settings(), ReadStore())

    async def scenario() -> None:
        handler = stream_handler(runtime)
        request = make_mocked_request("GET", "/api/v1/floor/stream?shop=s1")
        task = asyncio.ensure_future(handler(request))
        while runtime.store.reads == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT)

    run(scenario())


# --- what errors say -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/v1/floor?shop=s1", "/api/v1/floor/trend?shop=s1", "/api/v1/report?shop=s1", "/report?shop=s1"],
)
@pytest.mark.parametrize("error", [REDIS_DOWN, RedisConnectionError(REDIS_DOWN.args[0]), TimeoutError("x")])
def test_an_outage_is_a_503_naming_redis_in_words_never_its_address(path: str, error: BaseException) -> None:
    runtime = FakeRuntime(settings(), ReadStore(failure=error))

    async def scenario() -> tuple[int, str]:
        async with served(runtime) as client:
            response = await client.get(path)
            return response.status, await response.text()

    status, body = run(scenario())
    assert status == 503 and "Redis" in body, body
    assert INTERNAL_ADDRESS not in body and "Error 111" not in body


def test_the_stream_says_degraded_in_words() -> None:
    runtime = FakeRuntime(settings(), ReadStore(failure=REDIS_DOWN))

    async def scenario() -> str:
        async with served(runtime) as client:
            response = await client.get("/api/v1/floor/stream?shop=s1")
            chunk = await asyncio.wait_for(response.content.readuntil(b"\n\n"), WAIT)
            response.close()
            return chunk.decode()

    event = run(scenario())
    assert event.startswith("event: degraded\n") and "Redis" in event
    assert INTERNAL_ADDRESS not in event


@pytest.mark.parametrize(
    "url",
    [
        "redis://:p@ssw0rd@10.9.8.7:6379/0",
        "redis://kefu:s3cr3t:pw@10.9.8.7:6379/0",
        "redis://10.9.8.7:6379/0?password=s3cr3tpw",
        "rediss://kefu:s3cr3tpw@10.9.8.7:6380/1?ssl_ca_certs=/etc/ca.pem",
    ],
)
def test_healthz_names_redis_without_its_credentials(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    HealthyApp.install(monkeypatch)
    config = settings()
    config = msgspec.structs.replace(config, redis=msgspec.structs.replace(config.redis, url=url))
    runtime = FakeRuntime(config, ReadStore(failure=RedisConnectionError("Connection refused")))

    async def scenario() -> tuple[int, str]:
        async with served(runtime) as client:
            response = await client.get("/healthz")
            return response.status, await response.text()

    status, body = run(scenario())
    problems = json.loads(body)["problems"]
    assert status == 503 and any(p.startswith("redis: Redis is unreachable at ") for p in problems), body
    for secret in ("ssw0rd", "p@ss", "s3cr3t", "pw@"):
        assert secret not in body, body


def test_a_connection_that_never_completes_its_request_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Faust's runner kept aiohttp's hour: half-sent requests held the worker's file descriptors,
    before any token was checked, until Redis could not reconnect (EMFILE). Through the runner
    the worker starts, with the idle limit shortened for the test."""
    from aiohttp.web import TCPSite

    from streams.wire.app import create_app

    monkeypatch.setattr(views_module, "IDLE_CONNECTION_SECONDS", 0.5)
    runtime = FakeRuntime(settings(), ReadStore())

    async def scenario() -> bytes:
        app = create_app(runtime.settings)
        views_module.install_views(app, runtime)  # type: ignore[arg-type]
        runner = app.web._runner  # type: ignore[attr-defined]
        await runner.setup()
        try:
            site = TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            reader, writer = await asyncio.open_connection("127.0.0.1", runner.addresses[0][1])
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
            await writer.drain()
            try:
                return await asyncio.wait_for(reader.read(), WAIT)  # b"" once the worker closes it
            finally:
                writer.close()
        finally:
            await runner.cleanup()

    assert run(scenario()) == b""
