"""`kefu-pulse demo` run twice, as a new user does: the second run must open on a live-looking
floor, not on the buyers the first run's simulator left waiting when it was stopped. Each run
starts `notify` beside its worker (on the demo's stand-in robot) and stops it on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
from pathlib import Path
from typing import Any

import redis

from tests.integration.harness import KEFU, ROOT, STACK_PREFIX, Deployment, free_port, http_get, wait_for

DEMO_DB = 0  # the demo always uses the stack's own URL, db 0: no other test writes there


def _demo(deployment: Deployment, port: int, log: Path) -> subprocess.Popen[bytes]:
    # The demo reuses the running test stack (KEFU_STACK_DIR) and, with the deployment's topics
    # already created, skips the first run's history: only the live part is under test.
    env = deployment.env(KEFU_WEB_PORT=str(port), KEFU_STACK_DIR=str(ROOT / ".stack" / STACK_PREFIX))
    return subprocess.Popen(
        [str(KEFU), "demo"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=deployment.tmp,
        start_new_session=True,
    )


def _stop(demo: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGINT) -> None:
    demo.send_signal(sig)
    try:
        demo.wait(timeout=60)
    except subprocess.TimeoutExpired:
        demo.kill()
        demo.wait()
        raise


def _notify_pid(log: Path) -> int:
    found = re.search(r"notify \(pid (\d+)\)", log.read_text())
    assert found is not None, log.read_text()
    return int(found[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


NOTIFY_LOG = ROOT / ".stack" / "demo-notify.log"  # the demo's own, appended to by every run


def _notify_log_size() -> int:
    return NOTIFY_LOG.stat().st_size if NOTIFY_LOG.is_file() else 0


def _notify_started_after(offset: int) -> bool:
    with NOTIFY_LOG.open("rb") as log:
        log.seek(offset)
        return b"kefu-pulse notify: group" in log.read()


def _floors(port: int) -> list[dict[str, Any]]:
    """The floors of the simulated shops that have had traffic (an unknown shop is a 4xx)."""
    floors = []
    for shop in ("shop0", "shop1"):
        try:
            floors.append(json.loads(http_get(port, f"/api/v1/floor?shop={shop}")))
        except urllib.error.HTTPError:
            continue
    return floors


def _oldest_wait(port: int) -> float:
    return max(
        (agent["oldest_wait_seconds"] for floor in _floors(port) for agent in floor["agents"]), default=0
    )


def test_a_second_demo_opens_on_a_calm_floor(deployment: Deployment) -> None:
    db = redis.Redis.from_url(deployment.stack.redis_url.rsplit("/", 1)[0] + f"/{DEMO_DB}")
    db.flushdb()
    deployment.create_topics()
    port = free_port()
    first_log, second_log = deployment.tmp / "demo-1.log", deployment.tmp / "demo-2.log"
    notify_log_before = _notify_log_size()
    first = _demo(deployment, port, first_log)
    try:
        # The robots' line comes after the floor's, in a print of its own: wait for it, not the floor's.
        wait_for(lambda: "notify (pid" in first_log.read_text(), timeout=90, what="its notify line")
        notify = _notify_pid(first_log)
        wait_for(
            lambda: _notify_started_after(notify_log_before), timeout=60, what="the demo's notify started"
        )
        wait_for(lambda: _oldest_wait(port) > 0, timeout=30, what="buyers waiting on the first floor")
        time.sleep(5)
        assert _alive(notify), "the demo's notify ended while the demo ran"
    finally:
        _stop(first)
    said = first_log.read_text()
    assert re.search(r"answered the \d+ buyers? still waiting", said), said
    assert not _alive(notify), "the demo's notify outlived the demo"

    started = time.monotonic()
    second = _demo(deployment, port, second_log)
    try:
        wait_for(
            lambda: "floor display" in second_log.read_text(), timeout=90, what="the second demo's floor"
        )
        # Every wait on the floor is one of this run's: none older than this run. Without the
        # answers, the first run's buyers would wait on for the whole 24-hour limit.
        wait_for(
            lambda: _oldest_wait(port) <= time.monotonic() - started,
            timeout=60,
            what="only this run's buyers waiting",
        )
        floors = _floors(port)
        assert all(not agent["alert"] for floor in floors for agent in floor["agents"]), floors
        notify = _notify_pid(second_log)
    finally:
        # Its terminal closed (SIGHUP): it stops what it started, as Ctrl-C does.
        _stop(second, signal.SIGHUP)
        db.flushdb()
        db.close()
    assert "demo stopped" in second_log.read_text(), second_log.read_text()[-2000:]
    assert not _alive(notify), "the second demo's notify outlived the demo"
