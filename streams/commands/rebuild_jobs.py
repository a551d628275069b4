"""`rebuild --jobs N`: the replay split by partition number over N processes.

A buyer's messages and orders share one partition number (the partition fence holds partition N
of every input topic together: agents/processing/batch.py), so a job takes whole numbers: every
input topic's partition N, `kefu.agents`' too. The parent deletes the state once, then starts
each job as `kefu-pulse rebuild --job-partitions …` (a hidden option: a job deletes nothing and
prints its tally on stdout as `rebuild-job {json}` lines). The parent shows one progress display
for the whole run and ends with one summary line. A job that fails ends the command with its own
sentence and exit code, after the other jobs were stopped; so does Ctrl-C or a parent that is
cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import Progress, TaskID

from config.errors import DeploymentError, KefuError
from config.settings import Settings
from streams.commands.base import SAID_BY
from streams.commands.rebuild_replay import Apply, Rebuilt, Settle, progress_columns, replay
from streams.wire.consumer_group import input_partitions_of_stopped_group

JOB_OPTION = "--job-partitions"
JOB_OPTION_HELP = "internal to --jobs: replay only these partition numbers, deleting nothing"
REFUSAL = "kefu-pulse rebuild: "
_LINE = "rebuild-job "
_LAUNCH = "from streams.commands.main import main; main()"
STOP_WAIT_S = 10.0

JobArgv = Callable[[Sequence[int]], list[str]]


class JobFailed(KefuError, RuntimeError):
    pass


class BadJobPartitions(KefuError, ValueError):
    pass


# --- the job's side -------------------------------------------------------------------------


def parse_job_partitions(text: str) -> set[int]:
    try:
        numbers = {int(part) for part in text.split(",")}
    except ValueError:
        raise BadJobPartitions(f"{JOB_OPTION} takes partition numbers like 0,3; got {text!r}") from None
    if not numbers or min(numbers) < 0:
        raise BadJobPartitions(f"{JOB_OPTION} takes partition numbers like 0,3; got {text!r}")
    return numbers


class JobLines:
    """A job's tally, told to its parent on stdout."""

    def begin(self, total: int) -> None:
        _say({"total": total})

    def advance(self, records: int) -> None:
        _say({"done": records})


def _say(report: dict[str, object]) -> None:
    print(_LINE + json.dumps(report), flush=True)


async def replay_job(settings: Settings, numbers: set[int], apply: Apply, settle: Settle) -> None:
    """One job: partition `numbers` of every input topic, replayed; its result on stdout."""
    partitions = [
        tp for tp in input_partitions_of_stopped_group(settings, agents=True) if tp.partition in numbers
    ]
    rebuilt, _ = await replay(settings, partitions, apply, settle, JobLines())
    _say({"applied": rebuilt.applied, "firsts": rebuilt.firsts})


# --- the parent's side ----------------------------------------------------------------------


def job_shares(numbers: Sequence[int], jobs: int) -> list[list[int]]:
    """Partition numbers dealt round-robin to at most `jobs` jobs (never an empty one)."""
    return [list(numbers[i::jobs]) for i in range(min(jobs, len(numbers)))]


def job_argv(share: Sequence[int]) -> list[str]:
    """The command line of one job: this `kefu-pulse` with the same root options (`-l debug`)."""
    argv = sys.argv[1:]
    root = argv[: argv.index("rebuild")] if "rebuild" in argv else []
    numbers = ",".join(str(n) for n in share)
    # `-P`: the job imports kefu-pulse as installed, never a same-named folder of the working dir.
    return [sys.executable, "-P", "-c", _LAUNCH, *root, "rebuild", JOB_OPTION, numbers]


@dataclass
class JobsTally:
    """The one progress task of the whole run: its total once every job has said its own."""

    progress: Progress
    jobs: int
    task: TaskID = field(init=False)
    totals: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.task = self.progress.add_task("rebuild", total=None)

    def begin(self, job: int, total: int) -> None:
        self.totals[job] = total
        if len(self.totals) == self.jobs:
            self.progress.update(self.task, total=sum(self.totals.values()))

    def advance(self, records: int) -> None:
        self.progress.advance(self.task, records)


@dataclass
class Job:
    number: int
    share: list[int]
    jobs: int
    process: asyncio.subprocess.Process

    def __str__(self) -> str:
        numbers = ", ".join(str(n) for n in self.share)
        return f"rebuild job {self.number + 1} of {self.jobs} (partitions {numbers})"

    async def follow(self, tally: JobsTally, console: Console) -> Rebuilt:
        """The job's reports into `tally` until it exits; its result, or its failure raised."""
        result, last_said = await asyncio.gather(self._reports(tally), self._stderr(console))
        code = await self.process.wait()
        if code != 0:
            raise job_failure(str(self), last_said, code)
        if last_said:
            say(console, last_said)
        if result is None:
            raise JobFailed(f"{self} ended without saying what it applied")
        return result

    async def _reports(self, tally: JobsTally) -> Rebuilt | None:
        assert self.process.stdout is not None
        result = None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if not line.startswith(_LINE):
                continue  # a library's own print
            report = json.loads(line.removeprefix(_LINE))
            if "done" in report:
                tally.advance(int(report["done"]))
            elif "total" in report:
                tally.begin(self.number, int(report["total"]))
            elif "applied" in report:
                result = Rebuilt(int(report["applied"]), [(int(ts), bool(t)) for ts, t in report["firsts"]])
        return result

    async def _stderr(self, console: Console) -> str:
        """The job's stderr shown above the display, all but its last line: if the job fails,
        that line is its sentence, which the whole command then says once."""
        assert self.process.stderr is not None
        held = ""
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if not line:
                continue
            if held:
                say(console, held)
            held = line
        return held


def job_failure(job: str, last_said: str, code: int) -> KefuError:
    """The failed job's sentence as the whole command's, with the job's exit code."""
    exit_code = code if code > 0 else 1  # killed by a signal: the shell would see 128+n
    if last_said.startswith(SAID_BY):
        kind: type[KefuError] = type("JobDeploymentFailed", (DeploymentError,), {"exit_code": exit_code})
        return kind(last_said.removeprefix(SAID_BY))
    kind = type("JobFailed", (JobFailed,), {"exit_code": exit_code})
    if last_said.startswith(REFUSAL):
        return kind(last_said.removeprefix(REFUSAL))
    return kind(f"{job} failed with exit code {code}: {last_said or 'it said nothing'}")


async def run_jobs(
    shares: list[list[int]], argv: JobArgv, tally: JobsTally, console: Console
) -> list[Rebuilt]:
    """Every share in its own process, followed to the end; the first failure stops the others."""
    jobs: list[Job] = []
    tasks: list[asyncio.Task[Rebuilt]] = []
    try:
        for number, share in enumerate(shares):
            process = await asyncio.create_subprocess_exec(
                *argv(share),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            jobs.append(Job(number, share, len(shares), process))
        tasks = [asyncio.ensure_future(job.follow(tally, console)) for job in jobs]
        if not tasks:
            return []
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failures = [t.exception() for t in tasks if t.done() and t.exception() is not None]
        if failures:
            raise failures[0]  # type: ignore[misc]
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
        stop(jobs)


def stop(jobs: Sequence[Job]) -> None:
    """SIGTERM to every job still running, SIGKILL to any still there after STOP_WAIT_S.

    It waits without the event loop: after Ctrl-C, Faust cancels the command and closes the loop
    soon after, and a job must not outlive the command."""
    running = [job.process.pid for job in jobs if job.process.returncode is None]
    for pid in running:
        with contextlib.suppress(ProcessLookupError):  # it has just ended
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    while (running := [pid for pid in running if _running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return True


async def recompute_in_jobs(
    settings: Settings, delete_state: Callable[[], Awaitable[int]], jobs: int, console: Console | None = None
) -> Rebuilt:
    """Delete the state once, then replay it in `jobs` processes (at most one per partition)."""
    numbers = sorted({tp.partition for tp in input_partitions_of_stopped_group(settings, agents=True)})
    return await replay_in_jobs(numbers, delete_state, jobs, console or Console(stderr=True))


async def replay_in_jobs(
    numbers: Sequence[int],
    delete_state: Callable[[], Awaitable[int]],
    jobs: int,
    console: Console,
    argv: JobArgv = job_argv,
) -> Rebuilt:
    """`recompute_in_jobs` once the partition numbers are known; `argv` makes a job's command."""
    shares = job_shares(numbers, jobs)
    if len(shares) < jobs:
        say(
            console,
            f"rebuild: --jobs {jobs} capped at {len(shares)}: "
            f"the input topics have {len(numbers)} partitions",
        )
    deleted = await delete_state()
    say(
        console,
        f"rebuild: deleted {deleted} keys; {_jobs(len(shares))} re-read the input topics from the beginning",
    )
    started = time.monotonic()
    with Progress(*progress_columns(), console=console) as progress:
        results = await run_jobs(shares, argv, JobsTally(progress, len(shares)), console)
    elapsed = time.monotonic() - started
    applied = sum(result.applied for result in results)
    rate = applied / elapsed if elapsed > 0 else 0.0
    say(
        console,
        f"rebuild: applied {applied} records in {elapsed:.1f}s ({rate:,.0f} events/s) "
        f"with {_jobs(len(shares))}",
    )
    return Rebuilt(applied, [first for result in results for first in result.firsts])


def _jobs(count: int) -> str:
    return f"{count} job" if count == 1 else f"{count} jobs"


def say(console: Console, line: str) -> None:
    """One line as it is: never wrapped at a pipe's 80 columns, never styled."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)
