"""The replay command's terminal side: a progress bar and a report of bad lines."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from config.settings import Settings
from streams.simulation.replay import count_lines, replay


def run_replay(paths: list[Path], settings: Settings) -> int:
    console = Console(stderr=True)
    total = count_lines(paths)
    with Progress(
        TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as progress:
        task = progress.add_task("replay", total=total)
        report = replay(paths, settings, progress=lambda n: progress.advance(task, n))
    for name, number, why in report.bad_lines:
        # Plain lines (no wrapping) so they can be grepped and clicked in an editor.
        print(f"{name}:{number}: skipped: {why}", file=sys.stderr)
    print(f"produced {report.produced} events; {len(report.bad_lines)} bad lines skipped", file=sys.stderr)
    return 0
