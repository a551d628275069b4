"""Does the floor page's memory stay flat on a wall screen? Chromium's JS heap (after a forced
garbage collection) and the DOM's node count, early against late, on a real worker fed with
simulated traffic. Prints one JSON line; `late / early` near 1 is flat.

    .venv/bin/python -m bench.floor_memory [--early-minutes 10] [--late-minutes 60] [--agents 60]

Brings up its own local stack (prefix `bench`) and stops all it started.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.stack import bench_stack_env

ROOT = Path(__file__).resolve().parents[1]
KEFU = ROOT / ".venv" / "bin" / "kefu-pulse"


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return int(response.status) == 200
    except OSError:
        return False


def heap(page: Any) -> dict[str, int]:
    session = page.context.new_cdp_session(page)
    session.send("HeapProfiler.collectGarbage")
    usage = session.send("Runtime.getHeapUsage")
    nodes = page.evaluate("() => document.getElementsByTagName('*').length")
    session.detach()
    return {"heap_bytes": int(usage["usedSize"]), "dom_nodes": int(nodes)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--early-minutes", type=float, default=10)
    parser.add_argument("--late-minutes", type=float, default=60)
    parser.add_argument("--agents", type=int, default=60)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from tests.integration.browser import ARGS, CHROMIUM

    env = dict(os.environ, **bench_stack_env())
    work = Path(tempfile.mkdtemp(prefix="kefu-floor-memory-"))
    config = work / "kefu.yaml"
    name = f"fm{int(time.time())}"
    topics = {k: f"{name}.{k}" for k in ("messages", "orders", "alerts", "deadletter")}
    config.write_text(f"kafka:\n  group: {name}\n  partitions: 4\n  topics: {json.dumps(topics)}\n")
    port = 6190
    env.update(KEFU_CONFIG=str(config), KEFU_WEB_PORT=str(port))
    subprocess.run([str(KEFU), "topics", "create"], env=env, check=True, capture_output=True)
    started: list[subprocess.Popen[bytes]] = []
    try:
        log = (work / "worker.log").open("wb")
        started.append(
            subprocess.Popen(
                [str(KEFU), "worker", "-l", "warn"],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        )
        deadline = time.monotonic() + 90
        while not healthy(port):
            if time.monotonic() > deadline or started[0].poll() is not None:
                raise SystemExit(f"the worker did not become healthy: {work / 'worker.log'}")
            time.sleep(0.5)
        simulate = [
            str(KEFU),
            "simulate",
            "--shops",
            "1",
            "--agents",
            str(args.agents),
            "--rate",
            str(args.rate),
        ]
        started.append(
            subprocess.Popen(
                simulate,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(f"http://127.0.0.1:{port}/floor?shop=shop0")
            began = time.monotonic()
            time.sleep(max(0.0, args.early_minutes * 60 - (time.monotonic() - began)))
            early = heap(page)
            time.sleep(max(0.0, args.late_minutes * 60 - (time.monotonic() - began)))
            late = heap(page)
            browser.close()
        print(
            json.dumps(
                {
                    "agents": args.agents,
                    "early_minutes": args.early_minutes,
                    "late_minutes": args.late_minutes,
                    "early": early,
                    "late": late,
                    "heap_late_over_early": round(late["heap_bytes"] / early["heap_bytes"], 3),
                }
            )
        )
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        subprocess.run([str(ROOT / "deploy/local/stack"), "down", "--prefix", "bench"], capture_output=True)


if __name__ == "__main__":
    main()
