"""`kefu-pulse simulate`: simulated shop traffic into the input topics, with progress; first, if
asked, some days of past traffic (which `rebuild` then restores beyond the live windows)."""

from __future__ import annotations

import sys
from dataclasses import replace

import click
import faust
from faust.cli import AppCommand, option

from agents.core.clock import wall_clock_ms
from agents.worker.runtime import Runtime
from config.settings import Settings
from streams.commands.base import Command
from streams.simulation.simulate import history_start_ms, produce_history, run_simulation
from streams.simulation.traffic import RATING_SHARE, TrafficShape
from streams.wire.preflight import require_kafka

# Zero and negative rates divided by zero, or ran the simulated clock backwards (as fast as
# Kafka took it); a usage error names the option instead.
POSITIVE = click.FloatRange(min=0, min_open=True, max=1_000_000)


def register(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    @app.command(
        option("--shops", type=click.IntRange(min=1), default=2, show_default=True),
        option("--agents", type=click.IntRange(min=1), default=5, show_default=True, help="agents per shop"),
        option("--rate", type=POSITIVE, default=50.0, show_default=True, help="events per second"),
        option("--duration", type=POSITIVE, default=None, help="seconds (default: until Ctrl-C)"),
        option("--seed", type=int, default=0, show_default=True),
        option(
            "--history-days",
            type=click.IntRange(min=0),
            default=0,
            help="first, this many past days of traffic",
        ),
        option("--history-rate", type=POSITIVE, default=0.1, show_default=True, help="events/s in the past"),
        base=Command,
    )
    async def simulate(
        self: AppCommand,
        shops: int,
        agents: int,
        rate: float,
        duration: float | None,
        seed: int,
        history_days: int,
        history_rate: float,
    ) -> None:
        """Simulated shop traffic into the input topics, with progress."""
        await require_kafka(settings)
        # v3 traffic too: buyers rate some consultations, agents log in, take breaks, log out.
        shape = TrafficShape(
            shops=shops, agents=agents, rate=rate, rating_share=RATING_SHARE, agent_shifts=True
        )
        if history_days > 0:
            await _simulate_history(settings, replace(shape, rate=history_rate), history_days, seed + 1)
            if duration == 0:
                return
        sent = await run_simulation(settings, shape, duration, seed)
        print(f"sent {sent} events", file=sys.stderr)


async def _simulate_history(settings: Settings, shape: TrafficShape, days: int, seed: int) -> None:
    now = wall_clock_ms()
    start = history_start_ms(settings.defaults.timezone, days, now)
    past = await produce_history(settings, shape, start, now, seed)
    print(f"sent {past} past events ({days} days; older than 28 days need `rebuild`)", file=sys.stderr)
