"""`kefu-pulse demo`: the main job on a laptop, on a local real stack.

Starts what is missing of Kafka and Redis (deploy/local/stack), creates the topics, runs
a worker, `notify` and simulated traffic, prints where to look. `notify` sends the alerts to
a stand-in robot (streams/notify/standin.py) that prints each message on the demo's console.
Ctrl-C stops what it started and nothing else: a stack that was already running stays up.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Coroutine
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import faust
import msgspec
import yaml
from faust.cli import AppCommand
from rich.console import Console
from rich.markup import escape

from agents.worker.runtime import Runtime
from config.errors import KefuError
from config.settings import Settings, config_path
from streams.commands.base import Command
from streams.notify.standin import StandInRobot
from streams.simulation.simulate import (
    days_since_last_month,
    history_start_ms,
    local_today,
    produce_history,
    run_simulation,
)
from streams.simulation.traffic import RATING_SHARE, TrafficShape
from streams.wire.topics import create_topics

# In a checkout of the repository; an installed package has no deploy/ (`require_checkout`).
ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy" / "local" / "stack"
WORKER_LOG = ROOT / ".stack" / "demo-worker.log"
NOTIFY_LOG = ROOT / ".stack" / "demo-notify.log"
# The config `notify` runs with: the user's, its channels on the stand-in robot (`_notify_config`).
NOTIFY_CONFIG = ROOT / ".stack" / "demo-notify.yaml"
# Where `notify` finds the stand-in robot: the environment, as for any robot (never in the file).
ROBOT_URL_ENV, ROBOT_SECRET_ENV = "KEFU_DEMO_ROBOT_URL", "KEFU_DEMO_ROBOT_SECRET"


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
    """Run `work` until it ends or SIGINT/SIGTERM arrives (Faust's own handlers would swallow them),
    or SIGHUP: a closed terminal window stops what the demo started, as Ctrl-C does (it left the
    local stack running)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
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
# 24-hour wait limit (metrics.md); `kefu-pulse simulate` keeps those buyers while it runs. When
# either stops, it answers whoever is still waiting, so a second demo opens on a calm floor.
# Buyers rate (满意度) and agents log in, take breaks (挂起) and log out, so the floor and the
# dashboards show every v3 figure. The history has them too: it is Kafka traffic like the rest.
DEMO_TRAFFIC = TrafficShape(
    shops=2,
    agents=6,
    rate=10.0,
    reply_median_s=3.0,
    reply_spread=0.5,
    unanswered_share=0.0,
    rating_share=RATING_SHARE,
    agent_shifts=True,
)


# The past the reports show on a first run: a quiet shop (about 110 consultations per agent and
# day), back to the first day of last month, so last month's payroll and yesterday's 日报 exist.
HISTORY_RATE = 0.08


async def _history(settings: Settings, traffic: TrafficShape, env: dict[str, str], console: Console) -> bool:
    """Fresh topics: simulate the past, then restore it the way operators do, with `rebuild`
    (the live worker counts only what is younger than the `28d` window)."""
    zone = settings.defaults.timezone
    now = int(time.time() * 1000)
    days = days_since_last_month(zone, now)
    console.print(f"first run: simulating the last {days} days for the reports…")
    await produce_history(
        settings, replace(traffic, rate=HISTORY_RATE), history_start_ms(zone, days, now), now, 7
    )
    rebuilt = subprocess.run(
        [sys.executable, "-m", "streams", "rebuild"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if rebuilt.returncode != 0:
        console.print(f"[red]rebuilding the history failed:[/red]\n{escape(rebuilt.stderr)}")
        return False
    console.print(rebuilt.stderr.strip().splitlines()[-1], markup=False)
    return True


def _last_month(settings: Settings) -> tuple[str, str]:
    today = local_today(settings.defaults.timezone, int(time.time() * 1000))
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1).isoformat(), last.isoformat()


def _yesterday(settings: Settings) -> str:
    today = local_today(settings.defaults.timezone, int(time.time() * 1000))
    return (today - timedelta(days=1)).isoformat()


def register(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    @app.command(base=Command)
    async def demo(self: AppCommand) -> None:
        """Run a local real stack, a worker and simulated traffic; Ctrl-C stops all."""
        raise SystemExit(await run_demo(settings))


class NeedsCheckout(KefuError):
    pass


def require_checkout() -> None:
    """The demo runs deploy/local/stack, which only a checkout of the repository has."""
    if not STACK.is_file():
        raise NeedsCheckout(
            f"demo needs a checkout of the repository: it starts Kafka and Redis with "
            f"deploy/local/stack, which an installed kefu-pulse does not include ({STACK} is missing); "
            "clone the repository and run `.venv/bin/kefu-pulse demo` from the checkout"
        )


async def run_demo(settings: Settings, traffic: TrafficShape = DEMO_TRAFFIC) -> int:
    require_checkout()
    console = Console(stderr=True)
    was_running = _stack("env").returncode == 0
    console.print(
        "[bold]kefu-pulse demo[/bold]: "
        + ("reusing the running local stack" if was_running else "starting a local Kafka (KRaft) and Redis…")
    )
    up = _stack("up")
    if up.returncode != 0:
        _explain_stack_failure(console, up.stderr)
        return 1
    children: list[subprocess.Popen[bytes]] = []
    robot = StandInRobot(lambda line: _robot_line(console, line), secrets.token_hex(16))
    try:
        env = _exports(up.stdout)
        settings = _on_local_stack(settings, env)
        worker_env = dict(os.environ, **env, KEFU_WEB_PORT=str(settings.web.port))
        created = create_topics(settings)
        fresh = created[settings.kafka.topics.messages].startswith("created")
        if fresh and not await _history(settings, traffic, worker_env, console):
            return 1
        children.append(_start_worker(worker_env))
        if not _wait_healthy(settings.web.port):
            console.print(f"[red]the worker did not become healthy; see {escape(str(WORKER_LOG))}[/red]")
            return 1
        children.append(_start_notify(worker_env, settings, robot.start()))
        _show_where_to_look(console, settings, was_running, children[-1].pid)
        await _until_interrupted(run_simulation(settings, traffic, None, seed=int(time.time())))
    finally:
        _stop(console, children, was_running)
        robot.stop()
    return 0


def _robot_line(console: Console, line: str) -> None:
    """A robot's message on a line of its own: in a terminal the simulator's progress line is
    still open (it redraws itself with a carriage return), and ids are text, not highlights."""
    console.print(("\n" if console.is_terminal else "") + line, markup=False, highlight=False)


def _explain_stack_failure(console: Console, stderr: str) -> None:
    console.print(f"[red]could not start the local stack:[/red]\n{escape(stderr)}")
    console.print(
        "A half-started stack is repaired by the next start: run `kefu-pulse demo` again. "
        "If it fails the same way, `deploy/local/stack down` stops what runs, "
        "`deploy/local/stack status` shows each part, and the logs named above say why."
    )


def _on_local_stack(settings: Settings, env: dict[str, str]) -> Settings:
    """The settings with the local stack's Kafka and Redis (`deploy/local/stack env`)."""
    return msgspec.structs.replace(
        settings,
        kafka=msgspec.structs.replace(settings.kafka, bootstrap=env["KEFU_KAFKA_BOOTSTRAP"]),
        redis=msgspec.structs.replace(settings.redis, url=env["KEFU_REDIS_URL"]),
    )


def _start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    with WORKER_LOG.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "streams", "worker", "-l", "info"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _notify_config(settings: Settings) -> Path:
    """The user's config with every shop's alerts on the stand-in robot (a webhook channel whose
    URL and secret `notify` reads from the environment) and links to this demo's floor."""
    data = yaml.safe_load(config_path().read_text(encoding="utf-8")) or {}
    defaults = data["defaults"] = data.get("defaults") or {}
    channel = {
        "type": "webhook",
        "name": "stand-in",
        "url_env": ROBOT_URL_ENV,
        "secret_env": ROBOT_SECRET_ENV,
    }
    floor_url = f"http://127.0.0.1:{settings.web.port}"
    defaults["notify"] = {**(defaults.get("notify") or {}), "channels": [channel], "floor_url": floor_url}
    for shop in (data.get("shops") or {}).values():
        if isinstance(shop, dict) and isinstance(shop.get("notify"), dict):
            shop["notify"].pop("channels", None)  # a shop's own list would replace the stand-in
            shop["notify"].pop("floor_url", None)
    NOTIFY_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    NOTIFY_CONFIG.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return NOTIFY_CONFIG


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_notify(env: dict[str, str], settings: Settings, robot: StandInRobot) -> subprocess.Popen[bytes]:
    """`kefu-pulse notify` on the stand-in robot, its /metrics on a free port (a second demo's
    notify, or a test's, may hold the default one)."""
    notify_env = dict(env, KEFU_CONFIG=str(_notify_config(settings)))
    notify_env |= {ROBOT_URL_ENV: robot.url, ROBOT_SECRET_ENV: robot.secret or ""}
    with NOTIFY_LOG.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "streams", "notify", "--port", str(_free_port())],
            env=notify_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _show_where_to_look(console: Console, settings: Settings, was_running: bool, notify_pid: int) -> None:
    port = settings.web.port
    shops = sorted(settings.shops) or ["shop0"]
    shop = urllib.parse.quote(shops[0], safe="")  # an id from the config: text, never markup
    console.print(f"floor display (大屏): http://127.0.0.1:{port}/floor?shop={shop}", markup=False)
    console.print(f"metrics:              http://127.0.0.1:{port}/metrics")
    console.print(f"floor API:            http://127.0.0.1:{port}/api/v1/floor?shop={shop}", markup=False)
    console.print(
        f"report (日报):         http://127.0.0.1:{port}/report?shop={shop} "
        "(each number links to its list, 明细)",
        markup=False,
    )
    console.print(f"worker log:           {WORKER_LOG}", markup=False)
    console.print(
        f"group robots:         notify (pid {notify_pid}) sends each alert to a stand-in robot, "
        f"printed here as robot ▸ lines; notify log: {NOTIFY_LOG}",
        markup=False,
    )
    first, last = _last_month(settings)
    console.print(
        'last month\'s payroll: eval "$(deploy/local/stack env)" && .venv/bin/kefu-pulse report '
        f"--shop {shlex.quote(shops[0])} --from {first} --to {last} --format xlsx --output payroll.xlsx",
        markup=False,
    )
    yesterday = _yesterday(settings)
    console.print(
        'a pay dispute:        eval "$(deploy/local/stack env)" && .venv/bin/kefu-pulse details '
        f"--shop {shlex.quote(shops[0])} --kind lost --from {yesterday} --to {yesterday} --format csv",
        markup=False,
    )
    console.print(
        "Ctrl-C stops the simulator (it answers the buyers still waiting first, so the next run "
        "starts calm), the worker and notify" + ("" if was_running else " and the local stack")
    )


def _stop(console: Console, children: list[subprocess.Popen[bytes]], was_running: bool) -> None:
    """Stop what the demo started, and nothing else: a stack that was already running stays up.
    The worker first, then notify, so that notify may still send what the worker said last."""
    for child in children:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if not was_running:
        _stack("down")
    console.print("demo stopped")
