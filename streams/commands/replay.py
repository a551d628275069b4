"""`kefu-pulse replay FILE…`: recorded events (JSON lines) into the input topics, with a progress
bar and a report of the lines it skipped."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import faust
from faust.cli import AppCommand, argument
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from agents.worker.runtime import Runtime
from config.settings import Settings
from streams.commands.base import Command
from streams.simulation.replay import count_lines
from streams.simulation.replay import replay as produce_lines
from streams.wire.preflight import require_kafka


def register(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    @app.command(
        argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False)),
        base=Command,
    )
    async def replay(self: AppCommand, files: tuple[str, ...]) -> None:
        """Produce recorded events (JSON lines) into the input topics."""
        await require_kafka(settings)
        run_replay([Path(f) for f in files], settings)


def run_replay(paths: list[Path], settings: Settings) -> None:
    console = Console(stderr=True)
    total = count_lines(paths)
    with Progress(
        TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as progress:
        task = progress.add_task("replay", total=total)
        report = produce_lines(paths, settings, progress=lambda n: progress.advance(task, n))
    for name, number, why in report.bad_lines:
        # Plain lines (no wrapping) so they can be grepped and clicked in an editor.
        print(f"{name}:{number}: skipped: {why}", file=sys.stderr)
    print(f"produced {report.produced} events; {len(report.bad_lines)} bad lines skipped", file=sys.stderr)
