"""Numbers a shop can stake pay on: the whole-path simulation (tests/whole_path/).

The real BatchProcessor on real Redis (no Kafka), a driven clock through at least 40 simulated
days, and every read path (floor, trend, reports, gauges, alerts) compared with
tests/reference.py at about ten moments a day, most of them on edges. Longer or other runs:
KEFU_SIM_DAYS=120 KEFU_SIM_SEED=7 KEFU_SIM_GRID=1 (see tests/whole_path/simulation.py).
KEFU_SIM_REDIS_URL runs it on any Redis instead of the test stack's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.integration.harness import Stack, emptied
from tests.whole_path.simulation import SimConfig, run_simulation

# Not used by any other test (conftest.py and the tests that pin theirs); flushed before and after.
SIMULATION_DB = 13


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    url = os.environ.get("KEFU_SIM_REDIS_URL")
    if url is None:
        stack: Stack = request.getfixturevalue("stack")
        url = f"{stack.redis_url.rsplit('/', 1)[0]}/{SIMULATION_DB}"
    with emptied(url) as emptied_url:
        yield emptied_url


@pytest.mark.timeout(3600)
def test_every_read_path_matches_the_reference_through_simulated_days(redis_url: str) -> None:
    config = SimConfig.from_environment(redis_url)
    started = time.perf_counter()
    findings, stats = run_simulation(config)
    print(
        f"seed {config.seed}: {config.days} days, {stats.records} records in {stats.batches} batches, "
        f"{stats.moments} moments, outcomes {dict(stats.outcomes)}, {time.perf_counter() - started:.0f} s"
    )
    assert (
        stats.outcomes["applied"] > 100 * config.days
        and stats.outcomes["late"]
        and stats.outcomes["duplicate"]
    )
    assert not findings, (
        f"the whole path differs from the reference (rerun: KEFU_SIM_SEED={config.seed} "
        f"KEFU_SIM_DAYS={config.days}):\n{findings.report()}"
    )
