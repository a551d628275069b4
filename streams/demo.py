"""`kefu-pulse demo`: the main job on a laptop, on a local real stack.

Starts what is missing of Kafka and Redis (deploy/local/stack), creates the topics, runs
a worker and simulated traffic, prints where to look. Ctrl-C stops what it started and
nothing else: a stack that was already running stays up.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console

from config.settings import Settings
from streams.simulate import run_simulation
from streams.topics import create_topics
from streams.traffic import TrafficShape

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "deploy" / "local" / "stack"


def _stack(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(STACK), *args], capture_output=True, text=True)


def _exports(stdout: str) -> dict[str, str]:
    pairs = (
        line.removeprefix("export ").split("=", 1)
        for line in stdout.splitlines()
        if line.startswith("export ")
    )
    return dict(pairs)


def _wait_healthy(port: int, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


async def _until_interrupted(work: Coroutine[Any, Any, Any]) -> None:
    """Run `work` until it ends or SIGINT/SIGTERM arrives (Faust's own handlers would swallow them)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    for pending in (task, waiter):
        pending.cancel()
    await asyncio.gather(task, waiter, return_exceptions=True)


# A floor where an agent turns red now and then, not always: measured offline on this model,
# some tile of the 12 is red about a third of the time and each agent about 3 % of it. Nobody
# is left unanswered here, because an unanswered buyer keeps an agent red for the whole
# 24-hour wait limit (metrics.md); `kefu-pulse simulate` keeps those buyers.
DEMO_TRAFFIC = TrafficShape(
    shops=2, agents=6, rate=10.0, reply_median_s=3.0, reply_spread=0.5, unanswered_share=0.0
)


async def run_demo(settings: Settings, traffic: TrafficShape = DEMO_TRAFFIC) -> int:
    console = Console(stderr=True)
    was_running = _stack("env").returncode == 0
    console.print(
        "[bold]kefu-pulse demo[/bold]: "
        + ("reusing the running local stack" if was_running else "starting a local Kafka (KRaft) and Redis…")
    )
    up = _stack("up")
    if up.returncode != 0:
        console.print(f"[red]could not start the local stack:[/red]\n{up.stderr}")
        console.print(
            "A half-started stack is repaired by the next start: run `kefu-pulse demo` again. "
            "If it fails the same way, `deploy/local/stack down` stops what runs, "
            "`deploy/local/stack status` shows each part, and the logs named above say why."
        )
        return 1
    worker: subprocess.Popen[bytes] | None = None
    try:
        env = _exports(up.stdout)
        settings = msgspec.structs.replace(
            settings,
            kafka=msgspec.structs.replace(settings.kafka, bootstrap=env["KEFU_KAFKA_BOOTSTRAP"]),
            redis=msgspec.structs.replace(settings.redis, url=env["KEFU_REDIS_URL"]),
        )
        create_topics(settings)
        port = settings.web.port
        worker_env = dict(os.environ, **env, KEFU_WEB_PORT=str(port))
        log_path = ROOT / ".stack" / "demo-worker.log"
        with log_path.open("ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "streams", "worker", "-l", "info"],
                env=worker_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not _wait_healthy(port):
            console.print(f"[red]the worker did not become healthy; see {log_path}[/red]")
            return 1
        shops = sorted(settings.shops) or ["shop0"]
        console.print(f"floor display (大屏): http://127.0.0.1:{port}/floor?shop={shops[0]}")
        console.print(f"metrics:              http://127.0.0.1:{port}/metrics")
        console.print(f"floor API:            http://127.0.0.1:{port}/api/v1/floor?shop={shops[0]}")
        console.print(f"worker log:           {log_path}")
        console.print(
            "Ctrl-C stops the simulator and the worker" + ("" if was_running else " and the local stack")
        )
        await _until_interrupted(run_simulation(settings, traffic, None, seed=int(time.time())))
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
        if not was_running:
            _stack("down")
        console.print("demo stopped")
    return 0
