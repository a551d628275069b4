"""A real worker on real Redis against hostile HTTP: bad ids are refused before Redis sees a key,
an unknown shop's report names no other shop, an oversized report is refused with the way
round it, and `/metrics` answers while report pages render (matplotlib and all)."""

from __future__ import annotations

import concurrent.futures
import json
import time
import urllib.error
import urllib.request
from datetime import date

from config.calendar import calendar_for
from tests.integration.harness import Deployment, chat_message

AGENTS = 6


def fetch(port: int, path: str, timeout: float = 60) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def test_hostile_requests_on_a_real_worker(deployment: Deployment) -> None:
    deployment.config.write_text(
        deployment.config.read_text() + "web: {max_report_cells: 30}\nshops: {s1: {}, secret_shop: {}}\n"
    )
    deployment.create_topics()
    now = time.time_ns() // 1_000_000
    last = deployment.produce(
        [chat_message(f"m{i}", f"buyer{i}", ts=now - 1000, agent=f"s1:a{i}") for i in range(AGENTS)]
    )
    _, port = deployment.start_worker()
    deployment.wait_applied(last)
    keys_before = deployment.redis.dbsize()

    for route in (
        "/api/v1/floor",
        "/api/v1/floor/trend",
        "/api/v1/floor/stream",
        "/api/v1/report",
        "/report",
    ):
        status, body = fetch(port, f"{route}?shop={'x' * 7000}")
        assert status == 400 and "at most 64" in body, (route, body)
        assert fetch(port, f"{route}?shop=s1%00")[0] == 400
    assert deployment.redis.dbsize() == keys_before  # nothing was written for them

    status, body = fetch(port, "/api/v1/report?shop=nobody")
    assert status == 400 and "secret_shop" not in body and "s1" not in body, body

    today = date.fromordinal(calendar_for("Asia/Shanghai").day(now))  # the default time zone
    week = f"from={date.fromordinal(today.toordinal() - 6)}&to={today}"
    status, body = fetch(port, f"/api/v1/report?shop=s1&{week}&by=day")  # 6 agents x 7 days = 42
    error = json.loads(body)["error"]
    assert status == 400 and "web.max_report_cells" in error and "--format csv" in error, body
    assert fetch(port, f"/api/v1/report?shop=s1&from={today}&to={today}")[0] == 200  # 6 x 1

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        pages = [pool.submit(fetch, port, f"/report?shop=s1&from={today}&to={today}") for _ in range(8)]
        status, metrics = fetch(port, "/metrics", timeout=30)
        assert status == 200 and "kefu_events_total" in metrics
        assert all(page.result()[0] in (200, 503) for page in pages)
        assert any(page.result()[0] == 200 and "<html" in page.result()[1] for page in pages)
