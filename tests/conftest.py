from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Timing belongs to benchmarks, not tests: no per-example deadline. Derandomized, so that every
# run (CI's too) tries the same examples and a boundary is hit by design, never by luck;
# KEFU_HYPOTHESIS_EXPLORE=1 draws fresh random examples, to look for new failures by hand.
settings.register_profile(
    "kefu",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("KEFU_HYPOTHESIS_EXPLORE") != "1",
    database=None,
)
settings.load_profile("kefu")

# Under CI every tool the suite uses is installed by ./test, and ../shared is laid beside the
# checkout: a test that skips there is not run, so it fails instead of passing quietly.
SKIPS_FAIL = os.environ.get("CI") == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if SKIPS_FAIL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where nothing may be missing: {reason}"


# ./test runs the suite on two pytest-xdist workers (`-n 2 --dist loadgroup`), each integration
# worker on its own stack (tests/integration/harness.py). A worker is given a unit at a time: a
# whole file (its module fixtures are set up once), the files that share a costly session fixture,
# or an xdist_group; the longest units first, so that the short ones even out the end.
INTEGRATION = "tests/integration/"
SHARED = {  # they share the session's `reference` run (tests/integration/conftest.py), 15 s
    f"{INTEGRATION}{name}.py": "reference" for name in ("test_batch_path", "test_exactly_once", "test_faults")
}
# The units of 40 s or more, longest first (seconds in a serial run on the 2-core VM): 520, 180,
# 110, 105, 85, 80, 60, 55, 50, 50, 40, 40. Then the other integration files, then the rest.
FIRST = (
    "reference",
    *(
        f"{INTEGRATION}{name}.py"
        for name in (
            "test_start_up_mistakes_and_check",
            "test_whole_path",
            "test_floor_layout_mocked",
            "test_stack_cycles",
            "test_scale_out",
            "test_report_end_to_end",
            "test_agent_status_end_to_end",
            "test_floor_page",
            "test_repartition",
            "test_assists_and_refunds_end_to_end",
            "test_floor_big_team",
        )
    ),
)


def work_unit(nodeid: str) -> str:
    if nodeid.rfind("@") > nodeid.rfind("]"):  # `--dist loadgroup` appends an xdist_group's name
        return nodeid.rsplit("@", 1)[1]
    path = nodeid.split("::", 1)[0]
    return SHARED.get(path, path)


def rank(unit: str) -> tuple[int, bool]:
    return (FIRST.index(unit) if unit in FIRST else len(FIRST), not unit.startswith(INTEGRATION))


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class LongestFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

        def _assign_work_unit(self, node: Any) -> None:  # the best-ranked unit left goes next
            self.workqueue.move_to_end(min(self.workqueue, key=rank), last=False)
            super()._assign_work_unit(node)

    return LongestFirst(config, log)
