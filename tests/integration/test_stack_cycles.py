"""The local stack's first run cannot race: fresh prefixes come up and go down again and again,
several at once; two `up` calls on one prefix agree; a half-up stack is repaired by the next `up`.
Each check reads /proc for what is left, not only the pid files."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from tests.integration.harness import ROOT, STACK
from tests.survivors import survivors

# A fresh `up` formats Kafka and makes TLS and SCRAM material: about 15 s of CPU on this 2-core
# machine. CI runs one round of 3 at once (about 35 s: the race is between the ups of one
# round; a second round only sampled it again, for 30 s of the 20-minute CI budget);
# `KEFU_STACK_CYCLES=20` runs twenty by hand (about 6 minutes here).
CYCLES = int(os.environ.get("KEFU_STACK_CYCLES", "3"))
AT_ONCE = 3  # prefixes brought up side by side: their first runs choose ports at the same time
# Three Kafka JVMs starting at once beside the suite's own stack can need more than the 90 s a
# lone first start is given: what is tested here is that concurrent ups agree, not their speed.
KAFKA_READY_SECONDS = "300"


def stack(command: str, prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(STACK), command, "--prefix", prefix],
        capture_output=True,
        text=True,
        timeout=420,
        cwd=ROOT,
        env=os.environ | {"KEFU_STACK_KAFKA_READY_SECONDS": KAFKA_READY_SECONDS},
    )


def exports(output: str) -> dict[str, str]:
    pairs = (
        line.removeprefix("export ").split("=", 1)
        for line in output.splitlines()
        if line.startswith("export ")
    )
    return dict(pairs)  # type: ignore[arg-type]


def left_of(prefix: str) -> list[str]:
    marker = f"/.stack/{prefix}"
    return [s.command for s in survivors() if marker in s.command or prefix in s.command]


def cycle(prefix: str) -> str | None:
    """One fresh up, a PING through the printed URL, one down; what went wrong, or None."""
    try:
        up = stack("up", prefix)
        if up.returncode != 0:
            return f"{prefix}: up failed: {up.stderr[-500:]}"
        found = exports(up.stdout)
        client = redis.Redis.from_url(found["KEFU_REDIS_URL"])
        pong = client.ping()
        client.close()
        if not pong or not found.get("KEFU_KAFKA_BOOTSTRAP"):
            return f"{prefix}: up printed {sorted(found)}"
        down = stack("down", prefix)
        if down.returncode != 0:
            return f"{prefix}: down failed: {down.stderr[-500:]}"
        state = ROOT / ".stack" / prefix
        if any(state.glob("*.pid")) and any(_alive(p) for p in state.glob("*.pid")):
            return f"{prefix}: a pid file still names a live process"
        return None
    finally:
        stack("down", prefix)
        shutil.rmtree(ROOT / ".stack" / prefix, ignore_errors=True)


def _alive(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


@pytest.mark.timeout(1200)
def test_fresh_prefixes_come_up_and_down_several_at_once() -> None:
    run = uuid.uuid4().hex[:6]
    prefixes = [f"test-cycle-{run}-{i}" for i in range(CYCLES)]
    with ThreadPoolExecutor(AT_ONCE) as pool:
        failures = [f for f in pool.map(cycle, prefixes) if f is not None]
    assert failures == []
    assert [s.command for s in survivors() if f"test-cycle-{run}" in s.command] == []


def test_two_ups_at_once_on_one_prefix_agree() -> None:
    prefix = f"test-cycle-{uuid.uuid4().hex[:6]}-same"
    try:
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(lambda _: stack("up", prefix), range(2))
        assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
        assert exports(first.stdout) == exports(second.stdout)  # one set of ports, one set of secrets
    finally:
        stack("down", prefix)
        shutil.rmtree(ROOT / ".stack" / prefix, ignore_errors=True)
    assert left_of(prefix) == []


def test_a_half_up_stack_is_repaired_by_the_next_up() -> None:
    prefix = f"test-cycle-{uuid.uuid4().hex[:6]}-half"
    state = ROOT / ".stack" / prefix
    try:
        first = stack("up", prefix)
        assert first.returncode == 0, first.stderr
        os.kill(int((state / "redis.pid").read_text()), signal.SIGKILL)  # as if it had crashed
        again = stack("up", prefix)
        assert again.returncode == 0, again.stderr
        assert exports(again.stdout) == exports(first.stdout)
        client = redis.Redis.from_url(exports(again.stdout)["KEFU_REDIS_URL"])
        assert client.ping()
        client.close()
    finally:
        stack("down", prefix)
        shutil.rmtree(state, ignore_errors=True)
    assert left_of(prefix) == []
