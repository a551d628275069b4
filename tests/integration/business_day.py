"""No integration test straddles a business day's end.

The stack's workers judge `today`, the 28-day window and a report's range by the wall clock, and so
do the tests that check them: a test that works out its expected `today` before midnight (in the
shop's zone: 16:00 UTC for Asia/Shanghai) and reads the worker's after it compares two different
days. Nothing is wrong with the numbers then; the test just cannot hold. So a test that could
straddle midnight waits until the day has begun, before anything of it is set up:

- a test alone, when midnight is less than ITEM_SECONDS away;
- a module marked `one_business_day(seconds=N)`, at its first test, when midnight is less than
  N seconds away: its module fixtures fix a day (a reference run, data written for "today") that
  every test of it reads, so the whole module must run inside one day. Its later tests do not
  wait (that would put them in the next day, away from their fixtures).

The wait runs in pytest_runtest_protocol, outside pytest-timeout's timer (a hookwrapper further in)
and before the module's fixtures are set up. At most once a session and worker, for ITEM_SECONDS or
a module's N; CI sees it only on a run that crosses midnight.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field

import pytest

from config.calendar import calendar_for

DEFAULT_ZONE = "Asia/Shanghai"  # the default shop policy's (metrics.md), and the tests' own
# The longest single integration test, with its fixtures: a worker's first differential test brings
# up its stack and the reference run (~30 s each) before its own run (~50 s), all inside the budget.
ITEM_SECONDS = 180
MARGIN_SECONDS = 5  # past midnight before a waiting test starts: clocks of two processes differ
MARKER = "one_business_day"


def seconds_to_day_end(now_ms: int, zones: Iterable[str]) -> float:
    """How long until the next business day begins in the earliest of `zones`."""
    ends = []
    for zone in zones:
        calendar = calendar_for(zone)
        ends.append(calendar.day_start_ms(calendar.day(now_ms) + 1))
    return (min(ends) - now_ms) / 1000


def wait_needed(now_ms: int, budget_seconds: float, zones: Iterable[str]) -> float:
    """Seconds to wait so that `budget_seconds` of work stays inside one business day: 0 when the
    day's end is further away than the budget, else until just past it."""
    left = seconds_to_day_end(now_ms, zones)
    return left + MARGIN_SECONDS if left < budget_seconds else 0.0


def marked_budget(marker: pytest.Mark) -> tuple[float, tuple[str, ...]]:
    """`one_business_day(seconds, zones=...)`'s seconds and zones, the seconds also given by place
    and one zone also as a name."""
    seconds = marker.kwargs.get("seconds", marker.args[0] if marker.args else None)
    if not isinstance(seconds, int | float):
        raise TypeError(f"{MARKER} needs its seconds, got {marker}")
    zones = marker.kwargs.get("zones", (DEFAULT_ZONE,))
    return seconds, (zones,) if isinstance(zones, str) else tuple(zones)


@dataclass
class DayGuard:
    clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000
    sleep: Callable[[float], None] = time.sleep
    started: set[str] = field(default_factory=set)  # modules whose first test has begun

    def before(self, item: pytest.Item) -> float:
        """Wait as the item needs (see the module's docstring); the seconds waited."""
        marker = item.get_closest_marker(MARKER)
        module = item.nodeid.split("::", 1)[0]
        if marker is None:
            budget, zones = ITEM_SECONDS, (DEFAULT_ZONE,)
        elif module in self.started:
            return 0.0
        else:
            budget, zones = marked_budget(marker)
        self.started.add(module)
        seconds = wait_needed(self.clock_ms(), budget, zones)
        if seconds > 0:
            sys.__stderr__.write(
                f"\n{item.nodeid}: waiting {seconds:.0f} s for the business day's end to pass "
                f"(the test needs up to {budget} s inside one day: tests/integration/business_day.py)\n"
            )
            self.sleep(seconds)
        return seconds


GUARD = DayGuard()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    if "tests/integration/" in item.nodeid:
        GUARD.before(item)
    yield
