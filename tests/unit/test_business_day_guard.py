"""The integration tests' guard against straddling a business day's end (integration/business_day.py)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration import business_day
from tests.integration import conftest as integration_conftest
from tests.integration.business_day import MARGIN_SECONDS, wait_needed

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]


def utc_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("now", "budget", "zones", "wait"),
    [
        ("2026-12-06T15:57:00", 240, ("Asia/Shanghai",), 180 + MARGIN_SECONDS),  # 16:00 UTC is midnight there
        ("2026-12-06T15:55:59", 240, ("Asia/Shanghai",), 0),
        ("2026-12-06T16:00:01", 240, ("Asia/Shanghai",), 0),  # the day has begun: a whole day ahead
        ("2026-12-06T15:59:00", 30, ("Asia/Shanghai",), 0),  # a short test still fits
        ("2026-12-06T18:14:00", 120, ("Asia/Kathmandu",), 60 + MARGIN_SECONDS),  # UTC+5:45
        ("2026-12-06T18:14:00", 120, ("Asia/Shanghai", "Asia/Kathmandu"), 60 + MARGIN_SECONDS),
    ],
)
def test_a_test_waits_only_when_the_days_end_falls_inside_its_budget(
    now: str, budget: int, zones: tuple[str, ...], wait: int
) -> None:
    assert wait_needed(utc_ms(now), budget, zones) == wait


@pytest.mark.parametrize(
    ("args", "kwargs", "budget"),
    [
        ((), {"seconds": 90}, (90, ("Asia/Shanghai",))),
        ((90,), {}, (90, ("Asia/Shanghai",))),
        ((), {"seconds": 90, "zones": "Asia/Kathmandu"}, (90, ("Asia/Kathmandu",))),
        ((), {"seconds": 90, "zones": ["Asia/Kathmandu", "UTC"]}, (90, ("Asia/Kathmandu", "UTC"))),
    ],
)
def test_a_modules_budget_reads_its_marker_as_written(
    args: tuple[object, ...], kwargs: dict[str, object], budget: tuple[float, tuple[str, ...]]
) -> None:
    assert business_day.marked_budget(pytest.mark.one_business_day(*args, **kwargs).mark) == budget


def test_a_marker_without_seconds_says_so() -> None:
    with pytest.raises(TypeError, match="needs its seconds"):
        business_day.marked_budget(pytest.mark.one_business_day(zones="UTC").mark)


def test_the_integration_tests_have_the_guard() -> None:
    assert integration_conftest.pytest_runtest_protocol is business_day.pytest_runtest_protocol


INNER_CONFTEST = """
import time
from tests.integration import business_day
from tests.integration.business_day import pytest_runtest_protocol  # noqa: F401

LOG = []
NOW = [{now}]


def clock_ms():
    NOW[0] += {step_ms}  # the time each test takes
    return NOW[0] - {step_ms}


def sleep(seconds):
    LOG.append(f"wait {{seconds:.0f}}")
    time.sleep(1.5)  # longer than the tests' own timeout: the wait must not count against it
    NOW[0] += int(seconds * 1000)


business_day.GUARD.clock_ms = clock_ms
business_day.GUARD.sleep = sleep
"""

MARKED = "pytestmark = pytest.mark.one_business_day(seconds=60)"
INNER_TESTS = """
import pytest
from conftest import LOG

{marker}


@pytest.fixture(scope="module")
def day_fixed():
    LOG.append("module fixture")


@pytest.mark.timeout(1)
def test_first(day_fixed):
    LOG.append("first")


@pytest.mark.timeout(1)
def test_second(day_fixed):
    LOG.append("second")


def test_log():
    assert LOG == {expected}
"""


@pytest.mark.parametrize(
    ("marked", "now", "step_s", "expected"),
    [
        # one second before midnight: the module waits first, then runs inside the new day
        (True, "2026-12-06T15:59:59", 0, ["wait 6", "module fixture", "first", "second"]),
        # 100 s before, tests of 35 s: the module (60 s) fits, and its later tests never wait (the
        # per-test budget would put them in the next day, away from the module's fixtures)
        (True, "2026-12-06T15:58:20", 35, ["module fixture", "first", "second"]),
        # a module not marked: each test on its own, within ITEM_SECONDS (180) of midnight
        (False, "2026-12-06T15:57:30", 0, ["wait 155", "module fixture", "first", "second"]),
    ],
)
def test_a_module_waits_once_before_its_fixtures_and_outside_the_tests_timeout(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    marked: bool,
    now: str,
    step_s: int,
    expected: list[str],
) -> None:
    pytester.makeini("[pytest]\n")
    inner = pytester.path / "tests" / "integration"  # no package: `tests` stays the project's
    inner.mkdir(parents=True)
    (inner / "conftest.py").write_text(INNER_CONFTEST.format(now=utc_ms(now), step_ms=step_s * 1000))
    (inner / "test_day_bound.py").write_text(
        INNER_TESTS.format(marker=MARKED if marked else "", expected=expected)
    )
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests/integration")
    result.assert_outcomes(passed=3)


def test_the_month_of_the_lists_follows_the_day_its_module_starts_in() -> None:
    """test_details_identity.py's month, as its module starts on another day than it was
    imported (yesterday here): the days and the traffic both move."""
    from agents.store.memory import MemoryPartitionStore
    from tests.integration import test_details_identity as identity

    now_ms = time.time_ns() // 1_000_000
    try:
        for start_ms in (now_ms - 86_400_000, now_ms):
            identity.begin_day(start_ms)
            store = MemoryPartitionStore()
            asyncio.run(identity.live(store))
            identity.test_every_list_counts_the_number_it_explains_on_the_memory_store(store)
    finally:
        identity.begin_day(time.time_ns() // 1_000_000)
