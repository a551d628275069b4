"""`kefu-pulse rebuild`: recompute every window from Kafka's retention after Redis state was lost.

Workers must be stopped (it refuses while the consumer group has members): it deletes the
kefu-pulse keys, then reads the input topics (the buyer topics, and `kefu.agents` when it
exists) from the beginning up to their current end through the worker's own processors.
Started again, workers resume where it stopped, because they resume from the offsets in Redis.
`--jobs N` replays the partitions in N processes side by side (streams/commands/rebuild_jobs.py);
the reading itself is streams/commands/rebuild_replay.py.
The topics need the reports' retention (`topics create` sets it): what Kafka has deleted cannot
be restored.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

import click
import faust
from faust.cli import AppCommand, option
from rich.console import Console
from rich.progress import Progress, TaskID

from agents.core.clock import wall_clock_ms
from agents.core.report_range import day_text, restored_from_day
from agents.worker.runtime import Runtime
from config.calendar import calendar_for
from config.settings import Settings
from streams.commands.base import Command, via_redis
from streams.commands.rebuild_jobs import (
    JOB_OPTION,
    JOB_OPTION_HELP,
    parse_job_partitions,
    recompute_in_jobs,
    replay_job,
)
from streams.commands.rebuild_replay import Apply, Rebuilt, Settle, progress_columns, replay
from streams.wire.consumer_group import input_partitions_of_stopped_group
from streams.wire.preflight import require_kafka

__all__ = ["Rebuilt", "recompute", "restored_history"]

JOBS_HELP = (
    "processes that replay the input partitions side by side, split by partition number (at most "
    "one per partition); 1 replays them all in this process. Redis is shared by all of them: "
    "more jobs than free cores, or a Redis already at its limit, gain nothing"
)


def register(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    @app.command(
        option("--jobs", type=click.IntRange(min=1), default=1, show_default=True, help=JOBS_HELP),
        option(JOB_OPTION, "job_partitions", default=None, hidden=True, help=JOB_OPTION_HELP),
        base=Command,
        refusal_prefix="kefu-pulse rebuild: ",
    )
    async def rebuild(self: AppCommand, jobs: int, job_partitions: str | None) -> None:
        """Recompute every window from Kafka's retention (workers stopped)."""
        try:
            await require_kafka(settings)
            runtime.replay_history()
            apply = via_redis(settings, runtime.apply_any_until_done)
            settle = via_redis(settings, runtime.store.settle)
            if job_partitions is not None:  # one of a `--jobs` run's processes
                await replay_job(settings, parse_job_partitions(job_partitions), apply, settle)
                return
            delete_state = via_redis(settings, runtime.store.delete_state)
            if jobs == 1:
                rebuilt = await recompute(settings, delete_state, apply, settle)
            else:
                rebuilt = await recompute_in_jobs(settings, delete_state, jobs)
            print(restored_history(settings, rebuilt), file=sys.stderr)
        finally:
            await runtime.close()


async def recompute(
    settings: Settings,
    delete_state: Callable[[], Awaitable[int]],
    apply: Apply,
    settle: Settle,
    console: Console | None = None,
) -> Rebuilt:
    """Delete the state, then `apply` every retained input record in batches."""
    console = console or Console(stderr=True)
    partitions = input_partitions_of_stopped_group(settings, agents=True)
    deleted = await delete_state()
    console.print(f"rebuild: deleted {deleted} keys; re-reading the input topics from the beginning")
    with Progress(*progress_columns(), console=console) as progress:
        rebuilt, elapsed = await replay(settings, partitions, apply, settle, BarTally(progress))
    rate = rebuilt.applied / elapsed if elapsed > 0 else 0.0
    console.print(f"rebuild: applied {rebuilt.applied} records in {elapsed:.1f}s ({rate:,.0f} events/s)")
    return rebuilt


class BarTally:
    """The progress bar of a rebuild in one process."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def begin(self, total: int) -> None:
        self.task = self.progress.add_task("rebuild", total=total)

    def advance(self, records: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, records)


def restored_history(settings: Settings, rebuilt: Rebuilt) -> str:
    """How far back reports can go after a rebuild, in the default time zone."""
    if not rebuilt.firsts:
        return "rebuild: the input topics hold no records: no history to restore"
    defaults = settings.defaults
    calendar = calendar_for(defaults.timezone)
    today = calendar.day(wall_clock_ms())
    firsts = [(calendar.day(ms), truncated) for ms, truncated in rebuilt.firsts]
    first = restored_from_day(firsts, today, defaults.retention_days, defaults.after_sale_days)
    why = (
        "Kafka's retention had deleted older records"
        if any(truncated for _, truncated in firsts)
        else "the oldest records the topics hold"
    )
    return (
        f"rebuild: history restored from {day_text(first)} to today ({defaults.timezone}; "
        f"{why}; retention_days {defaults.retention_days}): reports can cover {day_text(first)} onwards"
    )
