"""Exactly once against the real stack: a SIGKILLed worker, and two workers sharing partitions,
must give the numbers of one uninterrupted worker on the same records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.simulation.traffic import SimRecord
from tests.integration.differential import REFERENCE_DB, run
from tests.integration.harness import Deployment, Stack


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

    client = redis.Redis.from_url(stack.redis_url.rsplit("/", 1)[0] + f"/{REFERENCE_DB}")
    keys = list(client.scan_iter(count=1000))
    assert keys
    without_ttl = [k for k in keys if client.pttl(k) < 0]
    assert without_ttl == []
