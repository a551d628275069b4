"""`kefu-pulse details`: a drill-down list (明细), every row of it, to the terminal or a file.

It reads Redis directly, as `report` does, and pages through the list itself. Buyers are masked
unless `--reveal-buyers` is given (whoever runs the command can read Redis anyway; the default
keeps an exported sheet safe to pass on)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import faust
import msgspec
from faust.cli import AppCommand, option
from rich.console import Console

from agents.core.clock import wall_clock_ms
from agents.exposure.details import DetailsQuery, DetailsReader
from agents.worker.runtime import Runtime
from config.settings import Settings
from streams.commands.base import Command, talking_to_redis
from streams.contract.details import Details, DetailsRequestError, details_json
from streams.render.output import deliver_bytes

DETAILS_FORMATS = ("table", "json", "csv", "xlsx")


def register(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    @app.command(
        option("--shop", required=True, help="shop id"),
        option("--agent", default=None, help="one agent's list (default: the whole team)"),
        option(
            "--kind",
            required=True,
            help="unreplied | slow | lost | ordered_unpaid | paid | assisted | "
            "silent_orders | refunded | dissatisfied",
        ),
        option("--from", "first", default=None, help="first business day, YYYY-MM-DD (default: yesterday)"),
        option("--to", "last", default=None, help="last business day, YYYY-MM-DD (default: yesterday)"),
        option(
            "--over",
            default=None,
            type=float,
            help="slow: first response over this many seconds (default: the shop's alert_threshold_seconds)",
        ),
        option("--format", "fmt", default="table", help="table | json | csv | xlsx"),
        option("--output", default=None, help="write to this file (atomically) instead of stdout"),
        option("--reveal-buyers", is_flag=True, default=False, help="real buyer ids instead of masked ones"),
        base=Command,
        refusal_prefix="kefu-pulse: details: ",
    )
    async def details(
        self: AppCommand,
        shop: str,
        agent: str | None,
        kind: str,
        first: str | None,
        last: str | None,
        over: float | None,
        fmt: str,
        output: str | None,
        reveal_buyers: bool,
    ) -> None:
        """The rows behind a number of the report (明细): unreplied, slow, lost, paid, …"""
        try:
            target = output_target(fmt, output)
            query = DetailsQuery(shop, kind, first, last, agent, over, reveal_buyers=reveal_buyers)
            with talking_to_redis(settings):
                listed = await DetailsReader(runtime.store, runtime.policies).everything(
                    query, wall_clock_ms()
                )
            deliver(listed, fmt, target)
        finally:
            await runtime.close()


def output_target(fmt: str, output: str | None) -> Path | None:
    if fmt not in DETAILS_FORMATS:
        raise DetailsRequestError(f"format {fmt!r} is not one of {', '.join(DETAILS_FORMATS)}")
    target = Path(output) if output else None
    if target is None and fmt == "xlsx" and sys.stdout.isatty():
        raise DetailsRequestError("xlsx is a binary format: give --output FILE, or redirect stdout")
    if target is not None and not target.resolve().parent.is_dir():
        raise DetailsRequestError(f"cannot write {target}: its directory does not exist")
    return target


def encode_details(listed: Details, fmt: str) -> bytes:
    if fmt == "json":
        return msgspec.json.format(msgspec.json.encode(details_json(listed)), indent=2) + b"\n"
    from streams.render import details_sheets

    if fmt == "csv":
        return details_sheets.details_csv(listed)
    if fmt == "xlsx":
        return details_sheets.details_xlsx(listed)
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(details_sheets.details_table(listed))
    return console.export_text().encode()


def deliver(listed: Details, fmt: str, target: Path | None) -> None:
    if fmt == "table" and target is None:
        from streams.render.details_sheets import details_table

        # A pipe or a file has no width: as wide as the written table, not rich's 80 columns.
        Console(width=None if sys.stdout.isatty() else 200).print(details_table(listed))
        return
    data = encode_details(listed, fmt)
    deliver_bytes(data, target, f"details: wrote {{target}} ({len(listed.rows):,} rows, {len(data):,} bytes)")
