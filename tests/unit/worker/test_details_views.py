"""The lists over HTTP in process (a real Faust app, a fake store): 400 sentences, 503, masking
by the request's grant, the whole list as CSV, the page's links."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agents.core.policy import PolicyBook
from agents.worker.access import GRANT_KEY, LOCAL_GRANT, Grant
from agents.worker.details_views import install_details_views
from agents.worker.report_pool import ReportPool
from config.settings import settings_from_yaml
from streams.wire.app import create_app
from tests.details_samples import FakeDetails, consultation
from tests.unit.worker.web import REDIS_DOWN

CONFIG = "shops:\n  s1:\n    agents: {'s1:A': {name: 小美}}\n"
LIST = "/api/v1/details?shop=s1&kind=unreplied&from={day}&to={day}"


@dataclass
class Runtime:
    store: FakeDetails
    config: str = CONFIG

    def __post_init__(self) -> None:
        self.settings = settings_from_yaml(self.config)
        self.policies = PolicyBook(self.settings)


def filled(count: int) -> tuple[FakeDetails, str]:
    from agents.core.clock import wall_clock_ms

    policy = PolicyBook(settings_from_yaml(CONFIG))("s1")
    yesterday = policy.calendar.day(wall_clock_ms()) - 1
    store = FakeDetails()
    start = policy.calendar.day_start_ms(yesterday)
    for index in range(count):
        store.put("s1", "s1:A", yesterday, f"tb_buyer{index:03d}", consultation(start + index * 1000))
    from agents.core.report_range import day_text

    return store, day_text(yesterday)


@asynccontextmanager
async def served(
    store: FakeDetails,
    grant: Grant | None = LOCAL_GRANT,
    turns: ReportPool | None = None,
    config: str = CONFIG,
) -> AsyncIterator[TestClient[Any, Any]]:
    """The list views behind a stand-in of the access middleware that grants `grant` (by
    default what it grants without an access file; None: it grants nothing)."""
    app = create_app(settings_from_yaml(CONFIG))
    install_details_views(app, Runtime(store, config), turns or ReportPool(1, 2))  # type: ignore[arg-type]
    web_app = app.web.web_app  # type: ignore[attr-defined]
    if grant is not None:

        @web.middleware
        async def as_grant(request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
            request[GRANT_KEY] = grant
            return await handler(request)

        web_app.middlewares.append(as_grant)
    async with TestClient(TestServer(web_app)) as client:
        yield client


def get(store: FakeDetails, path: str, grant: Grant | None = LOCAL_GRANT) -> tuple[int, str, str]:
    async def run() -> tuple[int, str, str]:
        async with served(store, grant) as client:
            response = await client.get(path)
            return response.status, response.headers.get("Content-Type", ""), await response.text()

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("query", "sentence"),
    [
        ("kind=unreplied", "missing query parameter: shop"),
        ("shop=s1", "missing query parameter: kind"),
        ("shop=s1&kind=late", "kind 'late' is not a list: choose one of"),
        ("shop=s1&kind=unreplied&limit=0", "the query parameter limit is a page size: 1 to 1000 rows"),
        ("shop=s1&kind=unreplied&limit=abc", "the query parameter limit is a page size"),
        ("shop=s1&kind=slow&over=fast", "the query parameter over is not a number of seconds"),
        ("shop=s1&kind=unreplied&cursor=%00", "the query parameter cursor is not one this list gave"),
        ("shop=s1&kind=unreplied&cursor=AAAA", "the cursor is not one this list gave"),
        ("shop=s1&kind=unreplied&cursor=k89AAAAAAAAAAKFhAQ", "the cursor is not one this list gave"),
        ("shop=s1&kind=unreplied&from=2020-01-01", "from 2020-01-01 is outside the retention"),
        ("shop=s1&kind=unreplied&agent=", "the query parameter agent is empty"),
        ("shop=s1&kind=unreplied&kind=slow", "give the query parameter kind once, not 2 times"),
        ("shop=nobody&kind=unreplied", "unknown shop 'nobody'"),
    ],
)
def test_a_bad_parameter_is_a_400_with_its_sentence(query: str, sentence: str) -> None:
    store, _ = filled(1)
    status, content_type, body = get(store, f"/api/v1/details?{query}")
    assert status == 400 and content_type.startswith("application/json")
    assert sentence in body
    status, content_type, body = get(store, f"/details?{query}")
    assert status == 400 and content_type.startswith("text/html")
    assert sentence.replace("'", "&#x27;") in body


def test_redis_away_is_a_503() -> None:
    store, day = filled(1)

    async def down(keys: object) -> list[dict[str, bytes]]:
        raise REDIS_DOWN

    store.details = down  # type: ignore[method-assign]
    status, _, body = get(store, LIST.format(day=day))
    assert status == 503 and "10.20.30.40" not in body


def test_buyers_are_masked_unless_the_grant_reveals_them() -> None:
    store, day = filled(3)
    _, _, manager = get(store, LIST.format(day=day), Grant("manager", frozenset({"s1"})))
    assert "tb_buyer" not in manager and "tb***02" in manager
    _, _, admin = get(store, LIST.format(day=day), Grant("admin", None))
    assert "tb_buyer002" in admin


def test_the_csv_is_the_whole_list_not_one_page() -> None:
    store, day = filled(250)
    status, content_type, body = get(
        store, LIST.format(day=day).replace("details?", "details.csv?") + "&limit=10"
    )
    assert status == 200 and content_type.startswith("text/csv")
    lines = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert lines[0][0] == "买家 buyer" and len(lines) == 251
    assert len({line[0] for line in lines[1:]}) == 250  # revealed locally: every buyer once


def test_the_page_shows_a_page_and_links_the_next_one_and_the_csv() -> None:
    store, day = filled(12)
    status, _, page = get(store, LIST.format(day=day).replace("/api/v1/details", "/details") + "&limit=5")
    assert status == 200 and page.count("<tr>") == 6  # the header and five rows
    assert 'id="next" href="/details?shop=s1&amp;kind=unreplied' in page and "cursor=" in page
    assert f'href="/api/v1/details.csv?shop=s1&amp;kind=unreplied&amp;from={day}&amp;to={day}"' in page


def test_an_agent_with_the_longest_id_events_allow_pages_through_its_list() -> None:
    """events.md: agent_id is 1..128 characters. A page ending on such an agent (four-byte
    characters: the longest cursor) gives a next_cursor the same API takes back."""
    from agents.core.clock import wall_clock_ms
    from agents.core.report_range import day_text

    agent = "😀" * 128
    policy = PolicyBook(settings_from_yaml(CONFIG))("s1")
    yesterday = policy.calendar.day(wall_clock_ms()) - 1
    start = policy.calendar.day_start_ms(yesterday)
    store = FakeDetails()
    for index in range(5):
        store.put("s1", agent, yesterday, f"tb_buyer{index:03d}", consultation(start + index * 1000))
    listed = LIST.format(day=day_text(yesterday)) + "&limit=2"

    async def pages() -> list[tuple[int, int]]:
        seen, cursor = [], ""
        async with served(store) as client:
            for _ in range(4):
                response = await client.get(listed + (f"&cursor={cursor}" if cursor else ""))
                body = await response.json()
                seen.append((response.status, len(body.get("rows", []))))
                cursor = body.get("next_cursor") or ""
                if not cursor:
                    break
        return seen

    assert asyncio.run(pages()) == [(200, 2), (200, 2), (200, 1)]


def test_a_request_no_middleware_granted_sees_buyers_masked() -> None:
    """`grant_of` fails closed: without a grant a view reveals nothing."""
    store, day = filled(3)
    status, _, body = get(store, LIST.format(day=day), None)
    assert status == 200 and "tb***" in body and "tb_buyer" not in body


def test_a_whole_list_waits_for_a_report_turn_and_past_the_queue_is_busy() -> None:
    """Whole lists are held in memory until sent: they take the reports' turns, so a flood of
    downloads is a 503 with Retry-After, not a worker out of memory."""
    store, day = filled(3)
    turns = ReportPool(1, 0)  # one turn, no queue
    csv_path = LIST.format(day=day).replace("details?", "details.csv?")

    async def run() -> tuple[int, str, str | None, int]:
        async with served(store, turns=turns) as client:
            async with turns.turn():  # another download (or a report) holds the only turn
                busy = await client.get(csv_path)
                status, body, retry = busy.status, await busy.text(), busy.headers.get("Retry-After")
            return status, body, retry, (await client.get(csv_path)).status

    status, body, retry, after = asyncio.run(run())
    assert (status, retry, after) == (503, "5", 200)
    assert "busy" in body


def test_a_whole_list_is_sorted_and_made_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A month of a big team is hundreds of thousands of rows: made on a thread (the loop keeps
    serving scrapes and batches meanwhile); a page's few rows are made in place."""
    from agents.exposure import details

    made_on: list[bool] = []
    shown_rows = details._shown_rows

    def recorded(*args: Any) -> Any:
        made_on.append(threading.current_thread() is threading.main_thread())
        return shown_rows(*args)

    monkeypatch.setattr(details, "_shown_rows", recorded)
    store, day = filled(30)
    status, _, body = get(store, LIST.format(day=day).replace("details?", "details.csv?"))
    assert status == 200 and len(body.strip().splitlines()) == 31
    assert made_on == [False]
    assert get(store, LIST.format(day=day))[0] == 200 and made_on == [False, True]


def test_a_download_whose_client_stops_reading_gives_its_turn_back() -> None:
    """A client that sends the request and reads nothing would hold its report turn for as long
    as it stalls (two of them, every report of the worker): past the write timeout it is dropped."""
    store, day = filled(100_000)  # more than the socket buffers hold
    turns = ReportPool(1, 0)
    csv_path = LIST.format(day=day).replace("details?", "details.csv?")

    async def until(condition: Callable[[], bool]) -> bool:
        deadline = asyncio.get_running_loop().time() + 60
        while not condition() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return condition()

    async def run() -> tuple[bool, bool, int]:
        config = CONFIG + "web: {stream_write_timeout_seconds: 0.5}\n"
        async with served(store, turns=turns, config=config) as client:
            _, stalled = await asyncio.open_connection(client.server.host, client.server.port)
            stalled.write(f"GET {csv_path} HTTP/1.1\r\nHost: kefu\r\n\r\n".encode())
            taken = await until(lambda: turns.running == 1)
            given_back = await until(lambda: turns.running == 0)
            status = (await client.get(csv_path)).status
            stalled.close()
            return taken, given_back, status

    assert asyncio.run(run()) == (True, True, 200)


class HeldDetails(FakeDetails):
    """A store whose list reads wait until released, counting those in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.in_flight = self.peak = 0

    async def details(self, keys: Any) -> list[dict[str, bytes]]:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self.release.wait()
            return await super().details(keys)
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize("path", ["/api/v1/details", "/details"])
def test_pages_in_flight_are_bounded_by_the_report_turns(path: str) -> None:
    """A sparse list's page reads as much as the whole list: pages took no turn, and 40 at once
    read 40 ranges at once. Past the turns and the queue, a page is told busy."""
    _, day = filled(0)
    store = HeldDetails()
    query = LIST.format(day=day).replace("/api/v1/details", path)

    async def run() -> tuple[list[int], int]:
        async with served(store, turns=ReportPool(1, 1)) as client:
            asked = [asyncio.create_task(client.get(query)) for _ in range(6)]
            while store.in_flight < 1:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            store.release.set()
            return sorted([(await response).status for response in asked]), store.peak

    statuses, peak = asyncio.run(run())
    assert peak == 1 and statuses == [200, 200, 503, 503, 503, 503]
