"""A small mutation run: flip each comparison and nudge each integer constant in the pure core
(and the floor's value functions), and in the store's write planning (`agents/store/writes.py`);
flip each comparison and narrow each pattern in the store's Lua scripts. One at a time, and see
whether the tests notice.

    .venv/bin/python -m tests.mutate                 # every mutant, two at a time
    .venv/bin/python -m tests.mutate --only buyer    # files whose path contains "buyer"
    .venv/bin/python -m tests.mutate --suite store   # only the store's mutants (Lua, writes.py)
    .venv/bin/python -m tests.mutate --list          # the mutants, without running them

Not part of CI (minutes for the core, longer for the store). Each mutant runs in a private copy
of the sources, so an interrupted run never leaves a mutated file behind. A mutant is *caught*
when its suite fails (or exceeds the time limit): the core's is `pytest tests/unit`; the store's
also runs the tests that drive the scripts on a real Redis, on a stack of each job's own
(`.stack/mutate<N>`, stopped at the end). Every survivor is printed with its line, to be killed
by a test or listed in `EQUIVALENT` with the reason it cannot change any number.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.mutate_lua import lua_mutations

ROOT = Path(__file__).resolve().parent.parent
CORE, STORE = "core", "store"
# (file, where its mutants stop, suite). The pure core whole (its value functions included) and
# the business calendar it reads from config; the store's write planning and its scripts.
TARGETS: tuple[tuple[Path, str | None, str], ...] = (
    *((path, None, CORE) for path in sorted((ROOT / "agents" / "core").glob("*.py"))),
    (ROOT / "config" / "calendar.py", None, CORE),
    (ROOT / "agents" / "store" / "writes.py", None, STORE),
    *((path, None, STORE) for path in sorted((ROOT / "agents" / "store" / "lua").glob("*.lua"))),
)
# The tests that can see a mutant, those that run the scripts first (`-x` stops at the first
# failure). The store's need Redis: each job's workspace brings up its own stack.
SUITES: dict[str, tuple[str, ...]] = {
    CORE: ("tests/unit",),
    STORE: (
        "tests/integration/test_bucket_fields.py",
        "tests/unit/store",
        "tests/integration/test_scale_edges.py",
        "tests/integration/test_whole_path.py",
    ),
}
COPIED = ("agents", "streams", "config", "tests", "deploy", "pyproject.toml")
FLIPS = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}


@dataclass(frozen=True)
class Mutant:
    path: Path
    line: int
    col: int
    old: str
    new: str
    kind: str  # "flip", "+1", "-1", "pattern" or "named"
    what: str = ""

    @property
    def source_line(self) -> str:
        return self.path.read_text().splitlines()[self.line - 1].strip()

    @property
    def equivalence(self) -> str | None:
        return EQUIVALENT.get((str(self.path.relative_to(ROOT)), self.source_line, self.describe()))

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def describe(self) -> str:
        return self.what or f"{self.old} -> {self.new}"

    @property
    def suite(self) -> str:
        return STORE if self.path.suffix == ".lua" or self.path.parent.name == "store" else CORE

    def apply(self, source: str) -> str:
        lines = source.splitlines(keepends=True)
        text = lines[self.line - 1]
        assert text[self.col : self.col + len(self.old)] == self.old, (self.where, self.old)
        lines[self.line - 1] = text[: self.col] + self.new + text[self.col + len(self.old) :]
        return "".join(lines)


# Meaningful mutants, beyond the mechanical ones: (file, old, new, what).
NAMED: tuple[tuple[str, str, str, str], ...] = (
    (
        "agents/core/policy.py",
        "after_sale_ms=after_sale_days * MS_PER_DAY",
        "after_sale_ms=(after_sale_days - 1) * MS_PER_DAY",
        "after_sale_days one day shorter",
    ),
    (
        "agents/core/engine.py",
        "oldest = horizon.order_horizon_ms if type(event) is Order else horizon.cutoff_ms",
        "oldest = horizon.cutoff_ms",
        "late orders lose the after-sale look-back",
    ),
    (
        "agents/core/buyer.py",
        "state.waits[event.to_agent] = wait_start if current is None else min(current, wait_start)",
        "state.waits[event.to_agent] = wait_start if current is None else current",
        "a transfer onto an open wait keeps the receiver's later start",
    ),
    (
        "agents/core/buyer.py",
        "if consultation.agent == agent and consultation.first_reply is None and consultation.start <= ts:",
        "if consultation.agent == agent and consultation.first_reply is None and consultation.start < ts:",
        "a reply in the consultation's start millisecond no longer counts",
    ),
    (
        "agents/core/projection.py",
        'pick = max if policy.attribution_rule == "last" else min',
        'pick = min if policy.attribution_rule == "last" else min',
        "rule `last` picks the first inquiry",
    ),
    (
        "agents/core/projection.py",
        "for_payment = qualifying_inquiries(order.paid, inquiries, policy)",
        "for_payment = at_creation",
        "judge `paid` judges the payment at creation (no 催付 credit)",
    ),
    (
        "agents/core/projection.py",
        "return Credit(ordered, paid, [q for q in for_payment if q.agent != credited_agent])",
        "return Credit(ordered, paid, [q for q in for_payment if q is not paid[0]])",
        "the credited agent's own other inquiries count as assists",
    ),
    (
        "agents/core/buyer_state.py",
        "return min(self.refunded_fen, self.amount_fen)",
        "return self.refunded_fen",
        "partial refunds are not capped at the order's amount",
    ),
    (
        "agents/core/buyer.py",
        "samples.append(WaitSample(agent, wait_start, clock.elapsed(wait_start, ts)))",
        "samples.append(WaitSample(agent, wait_start, ts - wait_start))",
        "waits ignore the service clock",
    ),
    (
        "agents/core/alerts.py",
        "out[(WAITING, floor.shop, row.agent)] = (open_now and wait > threshold, wait, threshold)",
        "out[(WAITING, floor.shop, row.agent)] = (wait > threshold, wait, threshold)",
        "a wait alerts outside service hours",
    ),
    (
        "agents/core/values.py",
        "return numerator / denominator if denominator else None",
        "return numerator / denominator if denominator else 0.0",
        "an empty-denominator ratio is 0 instead of absent",
    ),
)

# Mutants that cannot change any number, with the reason (each checked by hand),
# keyed by (file, the mutated line as written, the change) so that they survive edits elsewhere.
EQUIVALENT: dict[tuple[str, str, str], str] = {
    (
        "agents/core/buyer.py",
        "if state.seen and min(state.seen.values()) < horizon_ms:",
        "< -> <=",
    ): "a guard before a rebuild that keeps ts >= horizon_ms: at the edge it rebuilds to the same dict",
    ("agents/core/buyer.py", "amount_fen: int = 0", "0 -> 1"): (
        "the decoder requires an amount for created and paid, so an order that counts always has one"
    ),
    ("agents/core/buyer.py", "last_message_ts: int = 0", "0 -> 1"): (
        "only ever compared with event times, which are positive epoch milliseconds"
    ),
    (
        "agents/core/buyer.py",
        "return max(t for t in (order.created, order.paid, order.cancelled, order.refunded, -1) "
        "if t is not None)",
        "1 -> 2",
    ): ("a sentinel never chosen: every stored order has a time (each status, refunds too, sets one)"),
    (
        "agents/core/buyer.py",
        "return max(t for t in (order.created, order.paid, order.cancelled, order.refunded, -1) "
        "if t is not None)",
        "1 -> 0",
    ): ("a sentinel never chosen: every stored order has a time (each status, refunds too, sets one)"),
    ("agents/core/projection.py", 'if len(qualifying) < 2 or policy.attribution_rule == "all":', "2 -> 1"): (
        "a shortcut: max or min of one inquiry is that inquiry"
    ),
    (
        "agents/core/service_clock.py",
        "if len(self._hours) > 4096:  # a bound on memory: a few dozen days are ever asked for",
        "> -> >=",
    ): ("a cache bound: clearing one entry earlier recomputes the same hours"),
    (
        "agents/core/service_clock.py",
        "if len(self._hours) > 4096:  # a bound on memory: a few dozen days are ever asked for",
        "4096 -> 4097",
    ): ("a cache bound: clearing later or earlier recomputes the same hours"),
    (
        "agents/core/service_clock.py",
        "if len(self._hours) > 4096:  # a bound on memory: a few dozen days are ever asked for",
        "4096 -> 4095",
    ): ("a cache bound: clearing later or earlier recomputes the same hours"),
    ("agents/core/service_clock.py", "if end_ms <= start_ms:", "<= -> <"): (
        "at end == start the loop below adds nothing either: 0 both ways"
    ),
    (
        "agents/core/service_clock.py",
        "for day in range(self.calendar.day(start_ms), self.calendar.day(end_ms) + 1):",
        "1 -> 2",
    ): ("the extra day opens after end_ms, so its overlap is empty and skipped"),
    ("agents/core/service_clock.py", "if high > low:", "> -> >="): ("an empty overlap adds 0 either way"),
    **{
        ("agents/core/windows.py", 'return [BucketRead("s", first_minute, bit, lo % 60, hi % 60)]', change): (
            "unreachable: no rolling window (5m, 1h) fits inside one minute"
        )
        for change in ("60 -> 61", "60 -> 59")
    },
    **{
        ("agents/core/windows.py", "if hi % 60 == 59:", change): (
            "the other branch then reads seconds 0..59 of that minute: the same sum as the minute bucket"
        )
        for change in ("60 -> 59", "59 -> 60")
    },
    ("agents/core/values.py", "return round(fen / 100, 2)", "2 -> 3"): (
        "whole fen over 100 has two decimals at most: rounding to three changes nothing"
    ),
    (
        "agents/store/lua/touch_index.lua",
        "if newest == nil or score > newest then newest = score end",
        "> -> >=",
    ): "an equal score is the same newest either way",
    **{
        ("agents/store/lua/commit_partition.lua", line, change): (
            "an input check's edge that only a malformed call reaches: the worker always sends at least "
            "one offset, 1 + offsets + buyer keys, buyer keys after the offset keys, and positive TTLs "
            "(the bad-input tests cover one malformed call per script, not each edge)"
        )
        for line, change in (
            (
                "check(type(p) == 'table' and is_integer(p[1]) and p[1] >= 0 and #KEYS > p[1], "
                "'no offset count')",
                ">= -> >",
            ),
            (
                "check(type(p) == 'table' and is_integer(p[1]) and p[1] >= 0 and #KEYS > p[1], "
                "'no offset count')",
                "> -> >=",
            ),
            ("check(is_integer(p[4]) and p[4] > 0, 'offset TTL')", "> -> >="),
            (
                "check(type(s) == 'table' and is_integer(s[1]) and s[1] > 1 + n and KEYS[s[1]] ~= nil, "
                "'buyer state key')",
                "> -> >=",
            ),
            ("check(is_integer(s[3]) and s[3] > 0, 'buyer state TTL')", "> -> >="),
        )
    },
    ("config/calendar.py", "@lru_cache(maxsize=64)", "64 -> 65"): "a cache size: the same calendars",
    ("config/calendar.py", "@lru_cache(maxsize=64)", "64 -> 63"): "a cache size: the same calendars",
}


def _mechanical(path: Path, stop_at: str | None) -> Iterator[Mutant]:
    source = path.read_text()
    docstring_lines = _docstring_lines(source)
    last_line = source[: source.index(stop_at)].count("\n") if stop_at else source.count("\n") + 1
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        line, col = token.start
        if line > last_line:
            break
        if line in docstring_lines:
            continue
        if token.type == tokenize.OP and token.string in FLIPS:
            yield Mutant(path, line, col, token.string, FLIPS[token.string], "flip")
        elif token.type == tokenize.NUMBER and token.string.isdigit():
            value = int(token.string)
            yield Mutant(path, line, col, token.string, str(value + 1), "+1")
            if value > 0:
                yield Mutant(path, line, col, token.string, str(value - 1), "-1")


def _docstring_lines(source: str) -> set[int]:
    """Lines of string tokens that stand alone as statements (docstrings hold no numbers to test)."""
    lines: set[int] = set()
    previous = tokenize.NEWLINE
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.STRING and previous in (tokenize.NEWLINE, tokenize.INDENT, tokenize.NL):
            lines.update(range(token.start[0], token.end[0] + 1))
        if token.type not in (tokenize.COMMENT,):
            previous = token.type
    return lines


def _named() -> Iterator[Mutant]:
    for relative, old, new, what in NAMED:
        path = ROOT / relative
        for number, text in enumerate(path.read_text().splitlines(), start=1):
            col = text.find(old)
            if col >= 0:
                yield Mutant(path, number, col, old, new, "named", what)
                break
        else:
            raise SystemExit(f"named mutant {what!r}: {old!r} is no longer in {relative}; update NAMED")


def _lua(path: Path) -> Iterator[Mutant]:
    for m in lua_mutations(path):
        yield Mutant(path, m.line, m.col, m.old, m.new, m.kind)


def mutants(only: str | None, suite: str | None = None) -> list[Mutant]:
    found = [
        m
        for path, stop_at, _ in TARGETS
        for m in (_lua(path) if path.suffix == ".lua" else _mechanical(path, stop_at))
    ] + list(_named())
    return [m for m in found if (only is None or only in str(m.path)) and (suite is None or m.suite == suite)]


@dataclass(frozen=True)
class Workspace:
    """A private copy of the sources, with a stack name of its own for the store's suite."""

    path: Path
    stack: str

    def environment(self) -> dict[str, str]:
        return {
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": str(self.path),
            "PATH": "/usr/bin:/bin",
            "KEFU_TEST_STACK": self.stack,
            "KEFU_STACK_DIR": str(ROOT / ".stack" / self.stack),
            "KEFU_STACK_CACHE": str(ROOT / ".stack" / "cache"),
        }

    def stop_stack(self) -> None:
        subprocess.run(
            [str(self.path / "deploy" / "local" / "stack"), "down", "--prefix", self.stack],
            env=self.environment(),
            capture_output=True,
            check=False,
        )


def _workspace(number: int) -> Workspace:
    workspace = Path(tempfile.mkdtemp(prefix="kefu-mutant-"))
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, workspace / name, ignore=shutil.ignore_patterns("__pycache__", ".stack"))
        else:
            shutil.copy2(source, workspace / name)
    return Workspace(workspace, f"mutate{number}")


def _pytest(workspace: Workspace, suite: str, timeout: float) -> str:
    """'caught', 'survived' or 'timeout' (a hang counts as caught: the suite noticed)."""
    command = [sys.executable, "-m", "pytest", *SUITES[suite], "-x", "-q", "-p", "no:cacheprovider"]
    try:
        done = subprocess.run(
            command,
            cwd=workspace.path,
            env=workspace.environment(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "timeout"
    return "survived" if done.returncode == 0 else "caught"


def _run_one(mutant: Mutant, pool: list[Workspace], timeout: float) -> tuple[Mutant, str]:
    workspace = pool.pop()
    try:
        target = workspace.path / mutant.path.relative_to(ROOT)
        original = target.read_text()
        target.write_text(mutant.apply(original))
        try:
            return mutant, _pytest(workspace, mutant.suite, timeout)
        finally:
            target.write_text(original)
    finally:
        pool.append(workspace)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help="mutate only files whose path contains this")
    parser.add_argument("--kind", choices=["flip", "+1", "-1", "pattern", "named"], action="append")
    parser.add_argument("--suite", choices=sorted(SUITES), help="only the mutants this suite judges")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=240.0)
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    args = parser.parse_args(argv)
    selected = [m for m in mutants(args.only, args.suite) if not args.kind or m.kind in args.kind]
    if args.list:
        for mutant in selected:
            print(f"{mutant.where}  [{mutant.suite} {mutant.kind}] {mutant.describe()}")
        return 0
    pool = [_workspace(number) for number in range(args.jobs)]
    started = time.monotonic()
    results: list[tuple[Mutant, str]] = []
    try:
        for suite in sorted({m.suite for m in selected}):
            if _pytest(pool[0], suite, args.timeout) != "survived":
                raise SystemExit(f"the {suite} suite fails without any mutant: fix it first")
        with ThreadPoolExecutor(args.jobs) as executor:
            for mutant, outcome in executor.map(lambda m: _run_one(m, pool, args.timeout), selected):
                results.append((mutant, outcome))
                mark = {"caught": ".", "timeout": "T", "survived": "S"}[outcome]
                print(mark, end="", flush=True)
    finally:
        for workspace in pool:
            workspace.stop_stack()
            shutil.rmtree(workspace.path, ignore_errors=True)
    print()
    return _report(results, time.monotonic() - started)


def _report(results: list[tuple[Mutant, str]], seconds: float) -> int:
    survivors = [m for m, outcome in results if outcome == "survived"]
    unexplained = [m for m in survivors if m.equivalence is None]
    for suite in sorted(SUITES):
        for kind in ("flip", "+1", "-1", "pattern", "named"):
            of_kind = [outcome for m, outcome in results if m.kind == kind and m.suite == suite]
            if of_kind:
                caught = sum(outcome != "survived" for outcome in of_kind)
                print(f"{suite:>5} {kind:>7}: {caught}/{len(of_kind)} caught")
    caught = len(results) - len(survivors)
    print(f" total: {caught}/{len(results)} caught ({caught / max(len(results), 1):.1%}) in {seconds:.0f} s")
    for mutant in survivors:
        reason = mutant.equivalence
        label = f"equivalent: {reason}" if reason else "SURVIVED"
        print(f"  {label:<10} {mutant.where}  [{mutant.kind}] {mutant.describe()}")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
