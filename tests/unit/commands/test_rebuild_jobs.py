"""`rebuild --jobs N`'s parent without Kafka or Redis: each job is a small Python process that
speaks the jobs' protocol (`rebuild-job {json}` lines), so the deal of partitions, the state
deleted once before any job starts, the one summary, and a failed job or Ctrl-C stopping the
others are checked here; tests/integration/test_rebuild_jobs.py runs the real jobs."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from rich.console import Console

from config.errors import DeploymentError, KefuError
from streams.commands.base import explained
from streams.commands.rebuild_jobs import (
    BadJobPartitions,
    JobArgv,
    job_argv,
    job_shares,
    parse_job_partitions,
    replay_in_jobs,
)
from streams.commands.rebuild_replay import Rebuilt

# A job: refuses to run before the parent deleted the state (the marker file), records its pid,
# reports 100 records per partition; `fail` or `hang` in its partitions' behaviour file change it.
JOB = r"""
import json, os, sys, time
numbers, tmp = sys.argv[1], sys.argv[2]
if not os.path.exists(os.path.join(tmp, "deleted")):
    sys.exit("kefu-pulse rebuild: started before the state was deleted")
# Written beside, then renamed: a reader polling for it never sees it empty.
open(os.path.join(tmp, f".pid-{numbers}"), "w").write(str(os.getpid()))
os.rename(os.path.join(tmp, f".pid-{numbers}"), os.path.join(tmp, f"pid-{numbers}"))
told = os.path.join(tmp, f"do-{numbers}")
behaviour = open(told).read() if os.path.exists(told) else ""
say = lambda report: print("rebuild-job " + json.dumps(report), flush=True)
parts = [int(n) for n in numbers.split(",")]
say({"total": 100 * len(parts)})
if behaviour == "hang":
    time.sleep(60)
if behaviour == "fail":  # once all 3 jobs of that test run: the others must be stopped, not never started
    deadline = time.monotonic() + 10
    while len([n for n in os.listdir(tmp) if n.startswith("pid-")]) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    print("a warning of the job's own", file=sys.stderr)
    print("kefu-pulse rebuild: partition " + numbers + " is on fire", file=sys.stderr)
    sys.exit(3)
if behaviour == "crash":
    raise ValueError("no sentence")
if behaviour == "deployment":
    sys.exit(print("kefu-pulse: Redis is unreachable", file=sys.stderr) or 1)
for _ in parts:
    say({"done": 100})
say({"applied": 100 * len(parts), "firsts": [[1000 + n, n == 0] for n in parts]})
"""


def fake_argv(tmp: Path) -> JobArgv:
    def argv(share: Sequence[int]) -> list[str]:
        return [sys.executable, "-c", JOB, ",".join(str(n) for n in share), str(tmp)]

    return argv


def run(
    tmp: Path, numbers: Sequence[int], jobs: int, behaviours: dict[str, str] | None = None
) -> tuple[Rebuilt, str]:
    for share, behaviour in (behaviours or {}).items():
        (tmp / f"do-{share}").write_text(behaviour)
    out = io.StringIO()
    deletions: list[int] = []

    async def delete_state() -> int:
        deletions.append(1)
        (tmp / "deleted").write_text("")
        return 42

    rebuilt = asyncio.run(replay_in_jobs(numbers, delete_state, jobs, Console(file=out), fake_argv(tmp)))
    assert deletions == [1]
    return rebuilt, out.getvalue()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def pids(tmp: Path) -> list[int]:
    return [int(path.read_text()) for path in tmp.glob("pid-*")]


@pytest.mark.parametrize(
    ("numbers", "jobs", "shares"),
    [
        ([0, 1, 2, 3], 3, [[0, 3], [1], [2]]),
        ([0, 1, 2, 3], 2, [[0, 2], [1, 3]]),
        ([0, 1, 2, 3], 9, [[0], [1], [2], [3]]),
        ([0, 1, 2, 3, 4, 5, 6, 7], 1, [[0, 1, 2, 3, 4, 5, 6, 7]]),
        ([], 3, []),
    ],
)
def test_partition_numbers_are_dealt_whole_each_to_one_job(
    numbers: list[int], jobs: int, shares: list[list[int]]
) -> None:
    assert job_shares(numbers, jobs) == shares
    assert sorted(n for share in shares for n in share) == numbers


def test_job_partitions_are_numbers() -> None:
    assert parse_job_partitions("0,3") == {0, 3}
    for text in ("", "x", "0,,1", "-1"):
        with pytest.raises(BadJobPartitions):
            parse_job_partitions(text)


def test_a_job_is_this_kefu_pulse_with_its_root_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/venv/bin/kefu-pulse", "-l", "debug", "rebuild", "--jobs", "3"])
    argv = job_argv([0, 3])
    assert argv[0] == sys.executable and argv[1] == "-P"
    assert argv[4:] == ["-l", "debug", "rebuild", "--job-partitions", "0,3"]


def test_jobs_add_up_to_one_summary_after_one_deletion(tmp_path: Path) -> None:
    rebuilt, said = run(tmp_path, [0, 1, 2, 3], 3)
    assert rebuilt.applied == 400
    assert sorted(rebuilt.firsts) == [(1000, True), (1001, False), (1002, False), (1003, False)]
    lines = said.splitlines()
    assert lines[0] == "rebuild: deleted 42 keys; 3 jobs re-read the input topics from the beginning"
    summaries = [line for line in lines if line.startswith("rebuild: applied")]
    assert len(summaries) == 1 and summaries[0].endswith("events/s) with 3 jobs"), said
    assert summaries[0].startswith("rebuild: applied 400 records in ")
    assert "capped" not in said
    assert "rebuild-job" not in said


def test_more_jobs_than_partitions_are_capped_and_said(tmp_path: Path) -> None:
    rebuilt, said = run(tmp_path, [0, 1], 5)
    assert rebuilt.applied == 200
    assert "rebuild: --jobs 5 capped at 2: the input topics have 2 partitions" in said.splitlines()
    assert said.rstrip().endswith("with 2 jobs")


def test_a_failed_job_ends_the_run_with_its_sentence_and_exit_code_and_stops_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    with pytest.raises(KefuError) as failed:
        run(tmp_path, [0, 1, 2], 3, {"0": "hang", "1": "fail", "2": "hang"})
    assert time.monotonic() - started < 30  # the hanging jobs were stopped, not awaited
    assert str(failed.value) == "partition 1 is on fire" and failed.value.exit_code == 3
    assert len(pids(tmp_path)) == 3 and not any(alive(pid) for pid in pids(tmp_path))
    with pytest.raises(SystemExit) as ended, explained("kefu-pulse rebuild: "):
        raise failed.value
    assert ended.value.code == 3
    assert capsys.readouterr().err == "kefu-pulse rebuild: partition 1 is on fire\n"


def test_a_jobs_deployment_problem_reads_as_the_commands_own(tmp_path: Path) -> None:
    with pytest.raises(DeploymentError) as failed:
        run(tmp_path, [0, 1], 2, {"1": "deployment"})
    assert str(failed.value) == "Redis is unreachable" and failed.value.exit_code == 1


def test_a_job_that_dies_without_a_sentence_is_named(tmp_path: Path) -> None:
    with pytest.raises(KefuError) as failed:
        run(tmp_path, [0, 1], 2, {"1": "crash"})
    assert str(failed.value).startswith("rebuild job 2 of 2 (partitions 1) failed with exit code 1: ")
    assert "ValueError: no sentence" in str(failed.value)


def test_cancelling_the_run_stops_every_job(tmp_path: Path) -> None:
    """Ctrl-C reaches the parent's command as a cancellation: no job may outlive it."""
    for share in ("0", "1"):
        (tmp_path / f"do-{share}").write_text("hang")
    (tmp_path / "deleted").write_text("")

    async def delete_state() -> int:
        return 0

    async def cancelled() -> None:
        run_task = asyncio.ensure_future(
            replay_in_jobs([0, 1], delete_state, 2, Console(file=io.StringIO()), fake_argv(tmp_path))
        )
        while len(pids(tmp_path)) < 2:
            await asyncio.sleep(0.05)
        run_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run_task

    asyncio.run(cancelled())
    assert len(pids(tmp_path)) == 2 and not any(alive(pid) for pid in pids(tmp_path))
