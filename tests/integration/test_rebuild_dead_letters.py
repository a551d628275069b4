"""A rebuild's dead letters: each rejected record's goes to kefu.deadletter once, whoever read it
first. The workers send those of what they read; records that came while they were stopped (an
upgrade's rebuild) are read first by the rebuild, which sends theirs, and only theirs."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.integration.harness import Deployment


def events(prefix: str, now_ms: int) -> list[dict[str, Any] | tuple[str, bytes | None, bytes]]:
    good: list[dict[str, Any] | tuple[str, bytes | None, bytes]] = [
        {"event_id": f"{prefix}m{n}", "type": "message", "shop_id": "s1", "buyer_id": f"{prefix}b{n}",
         "agent_id": "s1:a", "sender": "buyer", "ts": now_ms - 60_000 + n}
        for n in range(20)
    ]  # fmt: skip
    bad: list[dict[str, Any] | tuple[str, bytes | None, bytes]] = [
        ("messages", f"s1:{prefix}x{n}".encode(), f"not json {prefix}{n}".encode()) for n in range(3)
    ]
    return good + bad


def where(record: Any) -> tuple[str, int]:
    letter = json.loads(record.value)
    return letter["raw"], letter["offset"]


def test_the_workers_letters_are_not_sent_again_and_what_no_worker_read_gets_its_own(
    deployment: Deployment,
) -> None:
    deployment.create_topics()
    now = time.time_ns() // 1_000_000
    deployment.start_worker()
    deployment.wait_applied(deployment.produce(events("w", now)))
    assert len(deployment.read_topic("deadletter", expected=3, timeout=30)) == 3  # the worker's
    deployment.stop_workers()
    deployment.produce(events("r", now))  # while the workers are stopped
    done = deployment.rebuild()
    assert done.returncode == 0, done.stderr
    letters = sorted(where(r) for r in deployment.read_topic("deadletter", expected=7, timeout=10))
    raws = [raw for raw, _ in letters]
    assert raws == sorted([*(f"not json w{n}" for n in range(3)), *(f"not json r{n}" for n in range(3))])
