"""`kefu-pulse stats`: the floor data from Redis as a table for people, or the API's JSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import click
import faust
from faust.cli import AppCommand, option
from rich.console import Console
from rich.live import Live

from agents.core.clock import wall_clock_ms
from agents.core.windows import WINDOWS
from agents.exposure.floor import FloorReader
from agents.worker.runtime import Runtime
from config.errors import KefuError
from config.settings import Settings
from streams.commands.base import Command, talking_to_redis
from streams.contract.floor import floor_json
from streams.render.floor_table import floor_table


class UnknownShop(KefuError, LookupError):
    pass


def register(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    @app.command(
        option("--shop", required=True, help="shop id"),
        option("--window", type=click.Choice(WINDOWS), default=None),
        option("--json", "as_json", is_flag=True, default=False, help="exactly the /api/v1/floor JSON"),
        option("--watch", is_flag=True, default=False, help="refresh in place once a second (Ctrl-C stops)"),
        base=Command,
    )
    async def stats(self: AppCommand, shop: str, window: str | None, as_json: bool, watch: bool) -> None:
        """Print the floor-display data from Redis."""
        try:
            with talking_to_redis(settings):
                await run_stats(runtime.reader, shop, window, as_json, watch)
        finally:
            await runtime.close()


def unknown_shop_message(shop: str, known: Sequence[str]) -> str:
    if not known:
        return f"unknown shop {shop!r}: no shop is configured and no events were processed yet"
    listed = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
    return f"unknown shop {shop!r}; known shops: {listed}"


async def run_stats(
    reader: FloorReader, shop: str, window: str | None, as_json: bool, watch: bool = False
) -> None:
    known = await reader.shops(wall_clock_ms())
    if shop not in known:
        raise UnknownShop(unknown_shop_message(shop, known))
    floor = await reader.floor(shop, wall_clock_ms())
    if as_json:
        print(json.dumps(floor_json(floor), ensure_ascii=False))
        return
    name = window or "today"
    console = Console()
    if not watch:
        console.print(floor_table(floor, name, console.width))
        return
    with Live(floor_table(floor, name, console.width), console=console, auto_refresh=False) as live:
        while True:  # until Ctrl-C, like `top`
            await asyncio.sleep(1.0)
            floor = await reader.floor(shop, wall_clock_ms())
            live.update(floor_table(floor, name, console.width), refresh=True)
