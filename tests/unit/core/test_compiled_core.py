"""The compiled core (agents/core/compiled.py) against the pure one, and the rule that decides.

The differential tests run tests/unit/core/compiled_scenarios.py, and `print_values` below (the
leader's window values), in two processes, one on the compiled build and one with
KEFU_PURE_PYTHON=1, and compare every line. Without a build they skip, except under CI=true (as
every skip, tests/conftest.py): there they must run.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agents.core import compiled
from agents.core.compiled import COMPILED_MODULES, GROUP_LIBRARY, MANIFEST, check_build, extension_path
from config.settings import MAX_RESPONSE_TARGETS

ROOT = Path(__file__).resolve().parents[3]
RECORDS, SEEDS = 20_000, (1, 2)


def _python(module_args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != compiled.PURE_ENV}
    return subprocess.run(
        [sys.executable, *module_args],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )


def _scenario_lines(seed: int, **env: str) -> list[str]:
    args = ["-m", "tests.unit.core.compiled_scenarios", str(RECORDS), str(seed)]
    return _python(args, **env).stdout.splitlines()


def _first_difference(left: list[str], right: list[str]) -> str:
    """Where the two outputs part, with the text around it: what a failure has to show."""
    for number, (a, b) in enumerate(zip(left, right, strict=False)):
        if a != b:
            at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            window = slice(max(at - 80, 0), at + 80)
            return f"line {number}, column {at}:\n compiled: {a[window]}\n pure:     {b[window]}"
    return f"{len(left)} lines against {len(right)}"


def test_the_build_is_in_use_under_ci() -> None:
    """`./test` builds the compiled core first: there the suite must run it, not the fallback."""
    problem = check_build(compiled.build_dir())
    if problem is not None and os.environ.get("CI") != "true":
        pytest.skip(f"no usable compiled build ({problem}); `./install` builds it")
    assert problem is None
    assert compiled.core_status().compiled or os.environ.get(compiled.PURE_ENV)


def _require_a_usable_build() -> None:
    problem = check_build(compiled.build_dir())
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs the compiled build, but it is unusable: {problem}")
        pytest.skip(f"no usable compiled build ({problem}); `./install` builds it")


@pytest.mark.parametrize("seed", SEEDS)
def test_compiled_and_pure_cores_give_identical_results(seed: int) -> None:
    _require_a_usable_build()
    fast = _scenario_lines(seed)
    pure = _scenario_lines(seed, **{compiled.PURE_ENV: "1"})
    assert (fast[0], pure[0]) == ("core True", "core False"), "each side must run the core it names"
    assert len(fast) > 1000, "the scenarios produced almost nothing to compare"
    assert fast[1:] == pure[1:], _first_difference(fast[1:], pure[1:])


# ---- the leader's window values (agents/core/values.py), compiled against pure ---------------------

VALUE_CASES = 4_000
# Magnitudes a summed counter takes: none, a few, an agent's day, a shop's ms or fen over a week.
# All below 2**53, where mypyc's int / int is CPython's (values.py says why that is enough).
MAGNITUDES = (0, 0, 9, 999, 99_999, 10**7, 10**12)


def _counter_vector(rng: random.Random) -> list[int]:
    from agents.core.projection import WIDTH

    return [rng.randint(0, rng.choice(MAGNITUDES)) for _ in range(WIDTH)]


def _targets(rng: random.Random) -> tuple[int, ...]:
    return tuple(rng.sample((5, 10, 15, 30, 60, 120, 300), rng.randint(0, MAX_RESPONSE_TARGETS)))


def print_values(seed: int) -> None:
    """Window and team values of generated vectors (zeros often, so absent ratios too), one line
    each, after a line saying which core ran and where values.py came from."""
    import msgspec

    from agents.core import values

    where = "source" if str(values.__file__).endswith(".py") else "extension"
    print(f"core {compiled.core_status().compiled} values {where}")
    rng = random.Random(seed)
    zeros = [0] * len(_counter_vector(rng))
    for case in range(VALUE_CASES):
        vector, shop = (zeros, zeros) if case == 0 else (_counter_vector(rng), _counter_vector(rng))
        targets = (15, 30, 60) if case % 2 else _targets(rng)
        print(repr(msgspec.structs.asdict(values.window_values(vector, targets))))
        print(repr(msgspec.structs.asdict(values.team_values(vector, shop, targets))))


def _value_lines(seed: int, **env: str) -> list[str]:
    code = f"from tests.unit.core.test_compiled_core import print_values; print_values({seed})"
    return _python(["-c", code], **env).stdout.splitlines()


@pytest.mark.parametrize("seed", SEEDS)
def test_compiled_and_pure_window_values_are_identical(seed: int) -> None:
    _require_a_usable_build()
    fast = _value_lines(seed)
    pure = _value_lines(seed, **{compiled.PURE_ENV: "1"})
    assert (fast[0], pure[0]) == ("core True values extension", "core False values source")
    absent = sum("'reply_ratio': None" in line for line in fast[1:])
    assert len(fast) == 1 + 2 * VALUE_CASES and 0 < absent < VALUE_CASES, "absent and real ratios both"
    assert fast[1:] == pure[1:], _first_difference(fast[1:], pure[1:])


# ---- the leader's status time (agents/core/status_spans.py), compiled against pure -----------------

STATUS_CASES = 3_000


def print_status_figures(seed: int) -> None:
    """Status figures of generated histories over generated spans, one line each, after a line
    saying where status_spans.py came from."""
    from agents.core import status_spans
    from agents.core.status import ChangePoint
    from agents.core.statuses import STATUSES

    where = "source" if str(status_spans.__file__).endswith(".py") else "extension"
    print(f"status_spans {where}")
    rng = random.Random(seed)
    for _ in range(STATUS_CASES):
        # Steps of one grid (a ms, a second, a minute) from one base: ties, overlaps, edges.
        base, step = rng.randint(0, 10**12), rng.choice((1, 1000, 60_000))
        stamps = sorted(base + rng.randint(0, 100) * step for _ in range(rng.randint(0, 9)))
        history = [ChangePoint(ts, rng.choice(STATUSES)) for ts in stamps]
        spans = []
        for _ in range(rng.randint(0, 5)):
            start = rng.randint(-20, 120)
            spans.append((base + start * step, base + rng.randint(start, 140) * step))
        now = rng.choice([*stamps, base + rng.randint(0, 120) * step])
        print(status_spans.span_figures(history, spans, now))


def _status_lines(seed: int, **env: str) -> list[str]:
    code = (
        f"from tests.unit.core.test_compiled_core import print_status_figures; print_status_figures({seed})"
    )
    return _python(["-c", code], **env).stdout.splitlines()


@pytest.mark.parametrize("seed", SEEDS)
def test_compiled_and_pure_status_figures_are_identical(seed: int) -> None:
    _require_a_usable_build()
    fast = _status_lines(seed)
    pure = _status_lines(seed, **{compiled.PURE_ENV: "1"})
    assert (fast[0], pure[0]) == ("status_spans extension", "status_spans source")
    counted = sum(line.replace("(0, 0, 0)", "").strip("[], ") != "" for line in fast[1:])
    assert len(fast) == 1 + STATUS_CASES and counted > STATUS_CASES // 4, "histories that count, and some"
    assert fast[1:] == pure[1:], _first_difference(fast[1:], pure[1:])


# ---- the staleness rule: a build is used only when made from the sources on disk now -------------


def _fake_build(directory: Path) -> dict[str, object]:
    """A build directory with the manifest of the sources on disk now and empty extension files:
    enough for `check_build`, which never loads them."""
    sources = [str(compiled.module_path(name).relative_to(ROOT)) for name in COMPILED_MODULES]
    manifest = {
        "modules": list(COMPILED_MODULES),
        "sources": sources,
        "digest": compiled.sources_digest(sources),
        "mypy": "test",
        "interpreter": compiled.interpreter_tag(),
    }
    for name in (*COMPILED_MODULES, GROUP_LIBRARY):
        path = extension_path(name, directory)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    _write_manifest(directory, manifest)
    return manifest


def _write_manifest(directory: Path, manifest: dict[str, object]) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


def test_a_build_of_the_current_sources_is_used(tmp_path: Path) -> None:
    _fake_build(tmp_path)
    assert check_build(tmp_path) is None


def test_a_build_of_other_sources_is_stale(tmp_path: Path) -> None:
    manifest = _fake_build(tmp_path)
    _write_manifest(tmp_path, {**manifest, "digest": "0" * 64})  # what a source edit after the build gives
    assert "stale" in (check_build(tmp_path) or "")


def test_a_source_edit_changes_the_digest(tmp_path: Path) -> None:
    source = tmp_path / "agents" / "core" / "engine.py"
    source.parent.mkdir(parents=True)
    shutil.copy(compiled.module_path("agents.core.engine"), source)
    before = compiled.sources_digest(["agents/core/engine.py"], tmp_path)
    source.write_text(source.read_text(encoding="utf-8") + "\n# one more line\n", encoding="utf-8")
    assert compiled.sources_digest(["agents/core/engine.py"], tmp_path) != before


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("no manifest", "no compiled build"),
        ("other modules", "other modules"),
        ("other interpreter", "another Python"),
        ("missing extension", "lacks agents.core.engine"),
    ],
)
def test_an_incomplete_or_foreign_build_is_refused(tmp_path: Path, change: str, reason: str) -> None:
    manifest = _fake_build(tmp_path)
    if change == "no manifest":
        (tmp_path / MANIFEST).unlink()
    elif change == "other modules":
        _write_manifest(tmp_path, {**manifest, "modules": ["agents.core.engine"]})
    elif change == "other interpreter":
        _write_manifest(tmp_path, {**manifest, "interpreter": "cpython-399 .so"})
    else:
        extension_path("agents.core.engine", tmp_path).unlink()
    assert reason in (check_build(tmp_path) or "")


def _loaded_core(**env: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import agents.core.engine as e\n"
        "from agents.core.compiled import core_status\n"
        "print(core_status().compiled, e.__file__.endswith('.py'))\n"
    )
    return _python(["-c", code], **env)


def test_a_stale_build_runs_the_pure_modules_and_says_why_once(tmp_path: Path) -> None:
    manifest = _fake_build(tmp_path)
    _write_manifest(tmp_path, {**manifest, "digest": "0" * 64})
    run = _loaded_core(**{compiled.DIR_ENV: str(tmp_path)})
    assert run.stdout.split() == ["False", "True"]
    warnings = [line for line in run.stderr.splitlines() if "pure-Python core" in line]
    assert len(warnings) == 1 and "stale" in warnings[0], run.stderr


def test_the_environment_forces_the_pure_core_silently(tmp_path: Path) -> None:
    _fake_build(tmp_path)  # usable by the rule: only the variable keeps it out
    run = _loaded_core(**{compiled.DIR_ENV: str(tmp_path), compiled.PURE_ENV: "1"})
    assert run.stdout.split() == ["False", "True"]
    assert "pure-Python core" not in run.stderr


def test_the_worker_exports_which_core_it_runs() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from agents.worker.runtime import _worker_metrics
    from config.settings import Settings

    registry = CollectorRegistry()
    _worker_metrics(registry, Settings())
    kind = "compiled" if compiled.core_status().compiled else "pure"
    assert f'kefu_core_info{{kind="{kind}",'.encode() in generate_latest(registry)


def test_what_travels_between_processes_unpickles_whichever_core_runs() -> None:
    """A frozen dataclass compiled by mypyc does not unpickle (its fields cannot be set): such
    classes live in modules that are never compiled, whichever core this process runs."""
    import pickle

    from agents.core.details import RowKey
    from agents.core.engine import Horizon
    from agents.core.policy import PolicyBook
    from config.settings import Settings

    values = [Horizon(1, 2, 3, 4, 5, 6), RowKey("s1:a", 20_000, "b1")]
    assert [pickle.loads(pickle.dumps(value)) for value in values] == values
    policy = PolicyBook(Settings())("s1")  # the report processes get it (report_pool.py)
    assert pickle.loads(pickle.dumps(policy)).retention_days == policy.retention_days
