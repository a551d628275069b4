"""`promtool check metrics` over the worker's own /metrics exposition: the registry a worker
serves (Runtime.create), with every family holding samples, as a leader past the agent cap
exports it. promtool lints only families with samples, so an empty registry would prove
nothing; the test checks that every family has some."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Sequence

import pytest

from agents.core.alerts import AlertEvent
from agents.core.projection import WIDTH
from agents.core.values import team_values, window_values
from agents.core.windows import WINDOWS
from agents.exposure.collector import FloorSnapshot, cap_agents
from agents.worker.runtime import Runtime
from config.settings import Settings
from streams.contract.floor import AgentRow, ShopFloor, Totals
from streams.wire.deadletter import DeadLetter

TARGETS = (15, 180)
BUSY = [3] * WIDTH  # every numerator and denominator non-zero: every ratio has a value


def busy_floor(shop: str, agents: int) -> ShopFloor:
    rows = [
        AgentRow(
            agent=f"{shop}:a{i}",
            name=None,
            waiting_buyers=1,
            oldest_wait_seconds=20.0,
            alert=True,
            oldest_waiting_buyer="tb_***1",
            agent_status="unknown",
            windows={w: window_values(BUSY, TARGETS) for w in WINDOWS},
            sums={w: tuple(BUSY) for w in WINDOWS},
        )
        for i in range(agents)
    ]
    return ShopFloor(
        shop=shop,
        name=None,
        as_of=0,
        alert_threshold_seconds=15.0,
        in_service_hours=True,
        response_targets_seconds=list(TARGETS),
        agents=rows,
        totals=Totals(
            waiting_buyers=agents,
            oldest_wait_seconds=20.0,
            windows={w: team_values([3 * agents] * WIDTH, BUSY, TARGETS) for w in WINDOWS},
        ),
    )


def worker_exposition() -> tuple[str, set[str]]:
    """A leader's /metrics body, and the names of the families without a sample."""

    async def nowhere(_: Sequence[DeadLetter] | Sequence[AlertEvent]) -> None:
        return None

    runtime = Runtime.create(Settings(), nowhere, nowhere)
    try:
        floor = cap_agents(busy_floor("s1", 4), max_agents=3)  # with an `_other`
        runtime.collector.snapshot = FloorSnapshot(
            [floor], {("s1", row.agent): {"0": 2, "3": 1, "sum": 9_000} for row in floor.agents}, 2
        )
        metrics = runtime.metrics
        metrics.filtered.labels("s1").inc()
        metrics.lag.labels("c.messages", "0").set(4)
        metrics.batch_seconds.observe(0.02)
        metrics.event_lag_seconds.observe(0.4)
        for name in ("batches", "conflicts", "redis_errors"):
            getattr(metrics, name).inc()
        families = [*runtime.registry.collect(), *runtime.collector.collect()]
        empty = {f.name for f in families if not f.samples}
        return runtime.exposition().decode(), empty
    finally:
        asyncio.run(runtime.close())


def test_the_worker_exposition_passes_promtool_check_metrics() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    body, empty = worker_exposition()
    assert not empty, f"families without samples are not linted: {sorted(empty)}"
    assert 'agent="_other"' in body and "kefu_oldest_wait_seconds" in body
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"promtool check metrics:\n{result.stdout}{result.stderr}"
