"""Faults against the real stack (issue: faults). Each run is compared with an uninterrupted
run of the same records; the difference in final numbers must be zero."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from streams.traffic import SimRecord
from tests.integration.harness import STACK, Deployment, Stack, wait_for
from tests.integration.test_exactly_once import SHOPS, dataset, run


@pytest.fixture(scope="module")
def records() -> list[SimRecord]:
    return dataset()


@pytest.fixture(scope="module")
def reference(
    stack: Stack, records: list[SimRecord], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    deployment = Deployment(stack, tmp_path_factory.mktemp("reference"), redis_db=13)
    try:
        return run(deployment, records)
    finally:
        deployment.close()


def numbers(deployment: Deployment) -> dict[str, Any]:
    from tests.integration.test_exactly_once import comparable

    return {shop: comparable(deployment.stats(shop)) for shop in SHOPS}


def applied(deployment: Deployment) -> int:
    return sum(offset + 1 for offset in deployment.applied_offsets().values())


def test_state_lost_then_rebuild_from_retention(
    stack: Stack, records: list[SimRecord], reference: dict[str, Any], tmp_path: Path
) -> None:
    deployment = Deployment(stack, tmp_path, redis_db=14)
    try:
        assert run(deployment, records) == reference
        deployment.stop_workers()
        deployment.redis.flushdb()  # Redis state lost
        results: list[subprocess.CompletedProcess[str]] = []

        def rebuilt() -> bool:
            results.append(deployment.cli("rebuild", timeout=300))
            return "worker(s)" not in results[-1].stderr  # the group empties after the session timeout

        wait_for(rebuilt, timeout=60, what="the consumer group to empty")
        assert results[-1].returncode == 0, results[-1].stderr
        assert numbers(deployment) == reference, results[-1].stderr
    finally:
        deployment.close()


def test_state_lost_while_stopped_workers_resume_from_redis(
    stack: Stack, records: list[SimRecord], reference: dict[str, Any], tmp_path: Path
) -> None:
    """Kafka's committed offsets are at the end, Redis is empty: a restarted worker must re-read
    from the beginning (it resumes from Redis), not trust Kafka."""
    deployment = Deployment(stack, tmp_path, redis_db=15)
    try:
        assert run(deployment, records) == reference
        deployment.stop_workers()
        deployment.redis.flushdb()
        deployment.start_worker()
        wait_for(
            lambda: numbers(deployment) == reference, timeout=120, what="numbers rebuilt by a plain restart"
        )
    finally:
        deployment.close()


def test_sigterm_finishes_the_batch_and_exits_within_10s(
    deployment: Deployment, records: list[SimRecord], reference: dict[str, Any]
) -> None:
    deployment.create_topics()
    last = deployment.produce((r.kind, r.key, r.value) for r in records)
    proc, _ = deployment.start_worker()
    wait_for(lambda: deployment.applied_offsets(), timeout=60, what="the worker to apply something")
    assert applied(deployment) < len(records), "finished before the signal: the test would prove nothing"
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert time.monotonic() - started < 10
    deployment.workers.clear()
    deployment.start_worker()
    deployment.wait_applied(last, timeout=120)
    assert numbers(deployment) == reference


def test_redis_restart_mid_stream(
    stack: Stack, records: list[SimRecord], reference: dict[str, Any], tmp_path: Path
) -> None:
    deployment = Deployment(stack, tmp_path, redis_db=9)
    try:
        deployment.create_topics()
        last = deployment.produce((r.kind, r.key, r.value) for r in records)
        deployment.start_worker()
        wait_for(lambda: deployment.applied_offsets(), timeout=60, what="the worker to apply something")
        assert applied(deployment) < len(records), "finished before the restart: the test would prove nothing"
        subprocess.run([str(STACK), "restart-redis", "--prefix", "test"], check=True, capture_output=True)
        deployment.wait_applied(last, timeout=180)
        assert numbers(deployment) == reference
    finally:
        deployment.close()
