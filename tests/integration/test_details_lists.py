"""The lists (明细) against the report, through real Redis and the worker's own web views.

A generated month of traffic (test_details_identity.py's, applied day by day through the
worker's BatchProcessor) lands in Redis db 12 of this test's stack. Then, in process, the
worker's views (`install_views`) serve `/api/v1/report` and the lists:
for every kind, per agent and for the team, the list's row count over all its pages is the
number the report shows for it; `kefu-pulse details --format csv` gives the API's CSV rows; and
headless Chromium goes from a number on the report page to its list and on to the CSV.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestServer

from agents.core.report_range import day_text
from agents.store.connect import connect
from agents.store.redis_store import RedisStore
from agents.worker.access import Access, load_access
from agents.worker.views import install_views
from config.settings import Settings, WebSettings
from streams.wire.app import create_app
from tests.integration import test_details_identity as identity
from tests.integration.harness import Stack
from tests.integration.test_details_identity import AGENTS, SHOP, live
from tests.unit.worker.web import FakeRuntime

DB = 12  # this test's alone
FROM = TO = ""  # details_days (31) back from today, as the module starts (business_day)
pytestmark = pytest.mark.one_business_day(seconds=120)


@pytest.fixture(scope="module", autouse=True)
def business_day() -> None:
    """Today as the module starts: the month `live` writes ends on it, and the lists asked for too."""
    global FROM, TO
    identity.begin_day(time.time_ns() // 1_000_000)
    FROM, TO = day_text(identity.TODAY - 30), day_text(identity.TODAY)


@pytest.fixture(scope="module")
def url(stack: Stack) -> str:
    url = f"{stack.redis_url.rsplit('/', 1)[0]}/{DB}"
    redis.Redis.from_url(url).flushdb()
    store = RedisStore(connect(url))

    async def fill() -> None:
        try:
            await live(store.batches)
        finally:
            await store.close()

    asyncio.run(fill())
    return url


class Served:
    """The worker's views over `url` on a real port, in a thread of their own (so a browser or
    urllib can call them while the test waits)."""

    def __init__(self, url: str, access: Access | None = None) -> None:
        self.url = url
        self.access = access or load_access(WebSettings(), {})  # no file: local, open
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        settings = Settings()
        runtime: Any = FakeRuntime(settings, RedisStore(connect(self.url)))  # type: ignore[arg-type]
        app = create_app(settings)
        install_views(app, runtime, self.access)
        web_app: web.Application = app.web.web_app  # type: ignore[attr-defined]
        self.server = TestServer(web_app, port=0)
        await self.server.start_server()
        self.port = self.server.port or 0

    def __enter__(self) -> Served:
        self.thread.start()
        self.ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def get(self, path: str) -> tuple[int, bytes]:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=60) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def _now() -> int:
    from agents.core.clock import wall_clock_ms

    return wall_clock_ms()


@pytest.fixture
def served(url: str) -> Iterator[Served]:
    with Served(url) as running:
        yield running


def all_rows(served: Served, **asked: str) -> list[dict[str, Any]]:
    import json

    rows: list[dict[str, Any]] = []
    query = {"shop": SHOP, "from": FROM, "to": TO, "limit": "7", **asked}
    for _ in range(1000):
        status, body = served.get("/api/v1/details?" + urlencode(query))
        assert status == 200, body
        page = json.loads(body)
        rows += page["rows"]
        if page["next_cursor"] is None:
            return rows
        query["cursor"] = page["next_cursor"]
    raise AssertionError("the cursor never ended")


def explained(metrics: dict[str, Any], kind: str, target: int | None = None) -> int:
    if kind == "unreplied":
        return int(metrics["consultations"] - metrics["replied_consultations"])
    if kind == "slow":
        within = round(metrics["replied_within_ratio"][str(target)] * metrics["consultations"])
        return int(metrics["replied_consultations"] - within)
    counts = {
        "lost": metrics["inquiries"] - metrics["ordered_inquiries"],
        "ordered_unpaid": metrics["ordered_inquiries"] - metrics["paid_inquiries"],
        "paid": metrics["paid_inquiries"],
        "assisted": metrics["assisted_paid"],
        "dissatisfied": metrics["dissatisfied_consultations"],
        "silent_orders": metrics.get("silent_orders"),
    }
    return int(counts[kind])


KINDS = ("unreplied", "lost", "ordered_unpaid", "paid", "assisted", "dissatisfied")


def test_every_list_counts_what_the_report_shows_per_agent_and_for_the_team(served: Served) -> None:
    import json

    status, body = served.get("/api/v1/report?" + urlencode({"shop": SHOP, "from": FROM, "to": TO}))
    assert status == 200, body
    report = json.loads(body)
    subjects = [(row["agent"], row["metrics"]) for row in report["agents"]] + [
        (None, report["totals"]["metrics"])
    ]
    assert {agent for agent, _ in subjects} == {*AGENTS, None}
    nonzero = set()
    for agent, metrics in subjects:
        who = {"agent": agent} if agent else {}
        for kind in KINDS:
            rows = all_rows(served, kind=kind, **who)
            assert len(rows) == explained(metrics, kind), f"{kind} of {agent or 'the team'}"
            assert [r["start_ms"] for r in rows] == sorted((r["start_ms"] for r in rows), reverse=True)
            nonzero |= {kind} if rows else set()
        for target in report["response_targets_seconds"]:
            rows = all_rows(served, kind="slow", over=str(target), **who)
            assert len(rows) == explained(metrics, "slow", target), f"slow {target} of {agent or 'the team'}"
        refunds = sum(r["refund_yuan"] for r in all_rows(served, kind="refunded", **who))
        assert round(refunds, 2) == metrics["refunded_sales_yuan"], f"refunds of {agent or 'the team'}"
    silent = all_rows(served, kind="silent_orders")
    assert len(silent) == explained(report["totals"]["metrics"], "silent_orders") > 0
    assert nonzero == set(KINDS), "every kind had rows to count"


def test_the_command_lines_csv_has_the_apis_rows(served: Served, url: str, tmp_path: Path) -> None:
    query = urlencode({"shop": SHOP, "kind": "paid", "from": FROM, "to": TO})
    status, api_csv = served.get(f"/api/v1/details.csv?{query}")
    assert status == 200
    target = tmp_path / "paid.csv"
    kefu_pulse = str(Path(sys.executable).parent / "kefu-pulse")
    command = [kefu_pulse, "details", "--shop", SHOP, "--kind", "paid"]
    command += ["--from", FROM, "--to", TO, "--format", "csv", "--output", str(target)]
    environment = {**os.environ, "KEFU_REDIS_URL": url, "KEFU_CONFIG": str(tmp_path / "none.yaml")}
    (tmp_path / "none.yaml").write_text("{}\n")
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    from_cli = list(csv.reader(io.StringIO(target.read_text("utf-8-sig"))))
    from_api = list(csv.reader(io.StringIO(api_csv.decode("utf-8-sig"))))
    # The API's local grant reveals buyers; the command masks them unless --reveal-buyers.
    assert len(from_cli) == len(from_api) > 1 and from_cli[0] == from_api[0]
    assert [line[1:] for line in from_cli] == [line[1:] for line in from_api]
    assert all("***" in line[0] for line in from_cli[1:])


def column_sum(served: Served, kind: str, header: str) -> float:
    status, body = served.get(
        "/api/v1/details.csv?" + urlencode({"shop": SHOP, "kind": kind, "from": FROM, "to": TO})
    )
    assert status == 200, body
    lines = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    return round(sum(float(line[header] or 0) for line in lines), 2)


def test_the_money_columns_a_payroll_sheet_sums_add_up_to_the_report(served: Served) -> None:
    """The paid list's 客服销售额 column is the report's 客服销售额, and the refunded list's
    退款金额 its refunds: not what the orders of each line came to (an order never paid, or paid
    to another inquiry's credit)."""
    import json

    status, body = served.get("/api/v1/report?" + urlencode({"shop": SHOP, "from": FROM, "to": TO}))
    assert status == 200, body
    team = json.loads(body)["totals"]["metrics"]
    assert column_sum(served, "paid", "客服销售额 sales_yuan") == team["attributed_sales_yuan"] > 0
    assert column_sum(served, "refunded", "退款金额 refund_yuan") == team["refunded_sales_yuan"] > 0


@pytest.mark.browser
def test_a_number_on_the_report_opens_its_list_and_its_csv(url: str, tmp_path: Path) -> None:
    """As a manager reads it from a link that carries the token (no header to send): the report
    page, a number on it, its list, the list's CSV, each answered, never a 401."""
    from tests.integration.browser import chromium_page

    token = "manager-" + os.urandom(12).hex()
    access_file = tmp_path / "access.yaml"
    access_file.write_text(
        f"tokens:\n  - name: lead\n    role: manager\n    shops: [{SHOP}]\n    token: {token}\n"
    )
    guarded = load_access(WebSettings(host="0.0.0.0", access_file=str(access_file)), {})
    with Served(url, guarded) as served, chromium_page(1280, 900) as opened:
        from playwright.sync_api import Page

        page = opened
        assert isinstance(page, Page)
        base = f"http://127.0.0.1:{served.port}"
        assert served.get("/report?" + urlencode({"shop": SHOP, "from": FROM, "to": TO}))[0] == 401
        page.goto(f"{base}/report?" + urlencode({"shop": SHOP, "from": FROM, "to": TO, "token": token}))
        agent = AGENTS[0]
        link = page.locator(f'tr[data-agent="{agent}"] a.list[href*="kind=paid"]').first
        shown = int(link.inner_text().replace(",", ""))
        link.click()
        page.wait_for_url("**/details?**")
        assert "kind=paid" in page.url and f"agent={agent.replace(':', '%3A')}" in page.url
        assert page.locator("#rows tbody tr").count() == shown > 0
        with page.expect_download() as downloading:
            page.locator("a#csv").click()
        lines = Path(downloading.value.path()).read_text("utf-8-sig").splitlines()
        assert lines[0].startswith("买家 buyer,") and len(lines) == shown + 1
