"""`kefu-pulse report`: the date-range report to the terminal or a file, in the format asked for."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.console import Console

from streams.contract.report import PreviousPeriod, Report, ReportRequestError
from streams.render.output import BINARY_FORMATS, check_format, encode_report, write_atomically

FetchReport = Callable[[], Awaitable[tuple[Report, bool]]]  # the report, and whether by day
FetchPrevious = Callable[[Report], Awaitable[PreviousPeriod | None]]


async def run_report(
    fetch: FetchReport,
    previous_team: FetchPrevious,
    fmt: str,
    output: str | None,
    threshold_seconds: float,
) -> None:
    """Everything is checked and rendered before a byte is written; errors are one sentence."""
    check_format(fmt)
    target = Path(output) if output else None
    if target is None and fmt in BINARY_FORMATS and sys.stdout.isatty():
        raise ReportRequestError(f"{fmt} is a binary format: give --output FILE, or redirect stdout")
    if target is not None and not target.resolve().parent.is_dir():
        raise ReportRequestError(f"cannot write {target}: its directory does not exist")
    report, by_day = await fetch()
    previous = await previous_team(report) if fmt == "html" else None
    if fmt == "table" and target is None:
        from streams.render.report_table import report_table

        console = Console()
        for table in report_table(report, by_day=by_day, width=console.width):
            console.print(table)
        return
    width = shutil.get_terminal_size((160, 40)).columns if fmt == "table" else 160
    data = encode_report(
        report, fmt, by_day=by_day, previous=previous, threshold_seconds=threshold_seconds, width=width
    )
    if target is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        write_atomically(target, data)
    except OSError as exc:
        raise ReportRequestError(f"cannot write {target}: {exc.strerror or exc}") from exc
    print(f"report: wrote {target} ({len(data):,} bytes)", file=sys.stderr)
