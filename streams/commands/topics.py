"""`kefu-pulse topics create`: the topics with the configured partitions and retention (idempotent)."""

from __future__ import annotations

import click
import faust
from faust.cli import AppCommand, argument

from agents.worker.runtime import Runtime
from config.settings import Settings
from streams.commands.base import Command
from streams.wire.preflight import require_kafka


def register(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    @app.command(
        argument("action", type=click.Choice(["create"])),
        base=Command,
        refusal_prefix="kefu-pulse: topics create: ",
    )
    async def topics(self: AppCommand, action: str) -> None:
        """Create the four topics with the configured partitions (idempotent)."""
        from streams.wire.topics import create_topics

        await require_kafka(settings)
        for name, outcome in create_topics(settings).items():
            print(f"{name}: {outcome}")
