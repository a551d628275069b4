"""Exactly once against the real stack: a SIGKILLed worker, and two workers sharing partitions,
must give the numbers of one uninterrupted worker on the same records."""

from __future__ import annotations

import itertools
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from streams.traffic import SimRecord, TrafficModel, TrafficShape
from tests.integration.harness import Deployment, Stack, wait_for

SHOPS = ("shop0", "shop1", "shop2")
EVENTS = 12_000


def dataset() -> list[SimRecord]:
    start = time.time_ns() // 1_000_000 - 3 * 3_600_000  # three hours ago: inside today/28d, no future ts
    model = TrafficModel(TrafficShape(shops=len(SHOPS), agents=6, rate=200), seed=7)
    return list(itertools.islice(model.records(start), EVENTS))


def comparable(floor: dict[str, Any]) -> dict[str, Any]:
    """Drop what depends on the moment of reading, keep every count and average."""
    return {
        row["agent"]: {
            "waiting": row["waiting_buyers"],
            "today": row["windows"]["today"],
            "28d": row["windows"]["28d"],
        }
        for row in floor["agents"]
    } | {"_totals": floor["totals"]["windows"]["28d"]}


def run(
    deployment: Deployment, records: list[SimRecord], workers: int = 1, kill_at: float | None = None
) -> dict[str, Any]:
    deployment.create_topics()
    last = deployment.produce((r.kind, r.key, r.value) for r in records)
    total = sum(offset + 1 for offset in last.values())
    for _ in range(workers):
        deployment.start_worker()
    if kill_at is not None:

        def applied() -> int:
            return sum(o + 1 for tp, o in deployment.applied_offsets().items() if tp in last)

        wait_for(lambda: applied() >= total * kill_at, timeout=120, what="half the records applied")
        deployment.stop_workers(signal.SIGKILL)
        at_kill = applied()
        assert at_kill < total, "the worker finished before the kill: the test would prove nothing"
        deployment.start_worker()
    deployment.wait_applied(last, timeout=240)
    return {shop: comparable(deployment.stats(shop)) for shop in SHOPS}


@pytest.fixture(scope="module")
def records() -> list[SimRecord]:
    return dataset()


@pytest.fixture(scope="module")
def reference(
    stack: Stack, records: list[SimRecord], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    deployment = Deployment(stack, tmp_path_factory.mktemp("reference"), redis_db=10)
    try:
        return run(deployment, records)
    finally:
        deployment.close()


def test_sigkill_halfway_then_restart_equals_an_uninterrupted_run(
    stack: Stack, records: list[SimRecord], reference: dict[str, Any], tmp_path: Path
) -> None:
    deployment = Deployment(stack, tmp_path, redis_db=11)
    try:
        assert run(deployment, records, kill_at=0.5) == reference
        assert reference["shop0"]["_totals"]["consultations"] > 100  # the comparison is not vacuous
    finally:
        deployment.close()


def test_two_workers_equal_one(
    stack: Stack, records: list[SimRecord], reference: dict[str, Any], tmp_path: Path
) -> None:
    deployment = Deployment(stack, tmp_path, redis_db=12)
    try:
        assert run(deployment, records, workers=2) == reference
    finally:
        deployment.close()


def test_every_redis_key_expires(stack: Stack, reference: dict[str, Any]) -> None:
    import redis

    client = redis.Redis.from_url(stack.redis_url.rsplit("/", 1)[0] + "/10")
    keys = list(client.scan_iter(count=1000))
    assert keys
    without_ttl = [k for k in keys if client.pttl(k) < 0]
    assert without_ttl == []
