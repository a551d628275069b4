"""Does a scrape of `/metrics` stay fast while reports render? Its latency (p50, p99) on a real
worker, idle and then while 50 report pages (200 agents × 31 days each, with the previous month
to compare) are requested at once, over and over: once the first report is through, at least
`--seconds` of scrapes 20 ms apart, then 20 scrapes 1.1 s apart, each of which finds a new
floor snapshot to write out, as Prometheus's scrapes do. Goal: p99 ≤ 100 ms under load.

    .venv/bin/python bench/metrics_under_reports.py [--scrapes 200] [--seconds 30] [--reports 50]

Runs on the local stack of prefix KEFU_BENCH_STACK (default `bench`), in its own topics and
Redis db 14; prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench.report as history
from agents.core.policy import PolicyBook
from agents.exposure.report import ReportReader
from agents.store.redis_store import RedisStore
from config.settings import settings_from_yaml
from tests.integration.harness import Deployment, stack_up

REDIS_DB = 14
REPORT_DAYS = 31
FRESH_SCRAPES = 20


async def write_history(redis_url: str, now_ms: int) -> None:
    history.AGENTS, history.HISTORY_DAYS = 200, 2 * REPORT_DAYS + 1
    client = aioredis.Redis.from_url(redis_url)
    reader = ReportReader(RedisStore(client), PolicyBook(settings_from_yaml("")))
    await history.write_history(client, reader, now_ms)
    await client.aclose()


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49], 1), "p99_ms": round(cuts[98], 1), "max_ms": round(max(samples_ms), 1)}


async def scrape_times(
    session: aiohttp.ClientSession, base: str, scrapes: int, seconds: float, gap: float = 0.02
) -> list[float]:
    """`scrapes` scrapes `gap` seconds apart, and more until `seconds` have passed."""
    times: list[float] = []
    until = time.perf_counter() + seconds
    while len(times) < scrapes or time.perf_counter() < until:
        started = time.perf_counter()
        async with session.get(f"{base}/metrics") as response:
            await response.read()
            assert response.status == 200
        times.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(gap)
    return times


async def keep_rendering(
    session: aiohttp.ClientSession, url: str, answers: list[tuple[float, int]], stop: asyncio.Event
) -> None:
    """One client asking for the page again and again; told busy, it waits as Retry-After says."""
    while not stop.is_set():
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=600)) as response:
            await response.read()
            answers.append((time.perf_counter(), response.status))
            if response.status == 503:
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))


async def measure(
    port: int, report_url: str, scrapes: int, seconds: float, reports: int
) -> dict[str, object]:
    base = f"http://127.0.0.1:{port}"
    connector = aiohttp.TCPConnector(limit=reports + 8)
    async with aiohttp.ClientSession(connector=connector) as session:
        idle = await scrape_times(session, base, scrapes, 0)
        answers: list[tuple[float, int]] = []
        stop = asyncio.Event()
        renderers = [
            asyncio.ensure_future(keep_rendering(session, report_url, answers, stop)) for _ in range(reports)
        ]
        while not answers:  # steady state: the first reports are through, the rest in flight
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        loaded = await scrape_times(session, base, scrapes, seconds)
        ended = time.perf_counter()
        # As Prometheus scrapes (every 15 s): each scrape finds a new floor snapshot to write.
        fresh = await scrape_times(session, base, FRESH_SCRAPES, 0, gap=1.1)
        stop.set()
        await asyncio.gather(*renderers)
    within = [status for at, status in answers if started <= at <= ended]
    return {
        "idle": percentiles(idle),
        "while_reports_render": percentiles(loaded),
        "while_reports_render_each_scrape_a_new_snapshot": percentiles(fresh),
        "scrapes_under_load": len(loaded),
        "window_s": round(ended - started, 1),
        "concurrent_reports": reports,
        "report_answers_in_window": {str(s): within.count(s) for s in sorted(set(within))},
        "reports_per_s": round(within.count(200) / (ended - started), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0, help="least time under load")
    parser.add_argument("--reports", type=int, default=50)
    parser.add_argument("--report-processes", type=int, default=None, help="web.report_processes")
    args = parser.parse_args()
    web = f"web: {{report_processes: {args.report_processes}}}\n" if args.report_processes else ""
    stack = stack_up(os.environ.get("KEFU_BENCH_STACK", "bench"))
    work = Path(tempfile.mkdtemp(prefix="kefu-metrics-bench-"))
    deployment = Deployment(stack, work, shops_yaml=web, redis_db=REDIS_DB)
    try:
        now_ms = time.time_ns() // 1_000_000
        asyncio.run(write_history(deployment.redis_url, now_ms))
        deployment.create_topics()
        _, port = deployment.start_worker()
        today = PolicyBook(settings_from_yaml(""))("s1").calendar.day(now_ms)
        first, last = date.fromordinal(today - REPORT_DAYS), date.fromordinal(today - 1)
        report_url = f"http://127.0.0.1:{port}/report?shop=s1&from={first}&to={last}"
        figures = asyncio.run(measure(port, report_url, args.scrapes, args.seconds, args.reports))
        figures |= {"agents": history.AGENTS, "report_days": REPORT_DAYS, "goal_p99_ms": 100}
        figures["report_processes"] = args.report_processes or "default"
        figures["load_average_1m"] = round(os.getloadavg()[0], 2)  # the machine is shared
        print(json.dumps(figures))
    finally:
        deployment.close()


if __name__ == "__main__":
    main()
