"""`kefu-pulse report`: the date-range report to the terminal or a file, in the format asked for.

Everything is checked and rendered before a byte is written; a mistake is one sentence."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import faust
from faust.cli import AppCommand, option
from rich.console import Console

from agents.core.clock import wall_clock_ms
from agents.worker.runtime import Runtime
from config.settings import Settings
from streams.commands.base import Command, talking_to_redis
from streams.contract.report import PreviousPeriod, Report, ReportRequestError
from streams.render.output import BINARY_FORMATS, check_format, deliver_bytes, encode_report


def register(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    @app.command(
        option("--shop", required=True, help="shop id"),
        option("--from", "first", default=None, help="first business day, YYYY-MM-DD (default: yesterday)"),
        option("--to", "last", default=None, help="last business day, YYYY-MM-DD (default: yesterday)"),
        option("--by", default=None, help="'day': the same report for each day of the range too"),
        option("--format", "fmt", default="table", help="table | json | csv | xlsx | html"),
        option("--output", default=None, help="write to this file (atomically) instead of stdout"),
        base=Command,
        refusal_prefix="kefu-pulse: report: ",
    )
    async def report(
        self: AppCommand,
        shop: str,
        first: str | None,
        last: str | None,
        by: str | None,
        fmt: str,
        output: str | None,
    ) -> None:
        """The date-range report: per agent, the team, silent orders; for payroll and reviews."""
        now_ms = wall_clock_ms()
        try:
            threshold_seconds = runtime.policies(shop).alert_threshold_seconds
            target = output_target(fmt, output)
            with talking_to_redis(settings):
                asked, by_day = await runtime.reports.request(shop, first, last, by, now_ms)
                previous = await runtime.reports.previous_team(asked, now_ms) if fmt == "html" else None
            deliver(asked, by_day, previous, fmt, target, threshold_seconds)
        finally:
            await runtime.close()


def output_target(fmt: str, output: str | None) -> Path | None:
    """The file to write, or None for stdout; a format or a place that cannot work is refused."""
    check_format(fmt)
    target = Path(output) if output else None
    if target is None and fmt in BINARY_FORMATS and sys.stdout.isatty():
        raise ReportRequestError(f"{fmt} is a binary format: give --output FILE, or redirect stdout")
    if target is not None and not target.resolve().parent.is_dir():
        raise ReportRequestError(f"cannot write {target}: its directory does not exist")
    return target


def deliver(
    report: Report,
    by_day: bool,
    previous: PreviousPeriod | None,
    fmt: str,
    target: Path | None,
    threshold_seconds: float,
) -> None:
    """The report rendered in `fmt`, to the terminal or written whole to `target`."""
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
    deliver_bytes(data, target, f"report: wrote {{target}} ({len(data):,} bytes)")
