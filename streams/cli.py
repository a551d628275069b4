"""`kefu-pulse`: Faust's own command line plus the commands of interfaces.md."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click
import faust
from faust.cli import AppCommand, argument, option
from redis.exceptions import RedisError

from agents.clock import wall_clock_ms
from agents.core.windows import WINDOWS
from agents.runtime import Runtime
from agents.store.errors import access_problem
from agents.stream_agents import install
from config.settings import ConfigError, Settings, load_settings
from streams.app import create_app
from streams.redaction import install_log_redaction, settings_secrets


def main() -> None:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"kefu-pulse: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    install_log_redaction(settings_secrets(settings))
    app = create_app(settings)
    runtime = install(app, settings)
    register_commands(app, settings, runtime)
    app.main()


def _fail(message: str) -> NoReturn:
    print(f"kefu-pulse: {message}", file=sys.stderr)
    raise SystemExit(1)


async def _require_kafka(settings: Settings) -> None:
    """A refused login or TLS handshake as one line, not kafka-python's 30 s bootstrap timeout."""
    from streams.kafka_security import KafkaAccessError, check_access

    try:
        await check_access(settings.kafka)
    except KafkaAccessError as exc:
        _fail(str(exc))


def _redis_failure(exc: RedisError) -> NoReturn:
    _fail(access_problem(exc) or f"Redis is unavailable: {exc}")


def register_commands(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    @app.command(argument("action", type=click.Choice(["create"])))
    async def topics(self: AppCommand, action: str) -> None:
        """Create the four topics with the configured partitions (idempotent)."""
        from streams.topics import create_topics

        await _require_kafka(settings)
        for name, outcome in create_topics(settings).items():
            print(f"{name}: {outcome}")

    @app.command(argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False)))
    async def replay(self: AppCommand, files: tuple[str, ...]) -> None:
        """Produce recorded events (JSON lines) into the input topics."""
        from streams.replay_cli import run_replay

        await _require_kafka(settings)
        raise SystemExit(run_replay([Path(f) for f in files], settings))

    @app.command(
        option("--shop", required=True, help="shop id"),
        option("--window", type=click.Choice(WINDOWS), default=None),
        option("--json", "as_json", is_flag=True, default=False, help="exactly the /api/v1/floor JSON"),
    )
    async def stats(self: AppCommand, shop: str, window: str | None, as_json: bool) -> None:
        """Print the floor-display data from Redis."""
        from streams.stats_cli import run_stats

        try:
            await run_stats(lambda s: runtime.reader.floor(s, wall_clock_ms()), shop, window, as_json)
        except RedisError as exc:
            _redis_failure(exc)
        finally:
            await runtime.close()

    @app.command(
        option("--shops", type=int, default=2, show_default=True),
        option("--agents", type=int, default=5, show_default=True, help="agents per shop"),
        option("--rate", type=float, default=50.0, show_default=True, help="events per second"),
        option("--duration", type=float, default=None, help="seconds (default: until Ctrl-C)"),
        option("--seed", type=int, default=0, show_default=True),
    )
    async def simulate(
        self: AppCommand, shops: int, agents: int, rate: float, duration: float | None, seed: int
    ) -> None:
        """Realistic simulated traffic into the input topics, with a progress display."""
        from streams.simulate import run_simulation
        from streams.traffic import TrafficShape

        await _require_kafka(settings)
        sent = await run_simulation(
            settings, TrafficShape(shops=shops, agents=agents, rate=rate), duration, seed
        )
        print(f"sent {sent} events", file=sys.stderr)

    @app.command()
    async def rebuild(self: AppCommand) -> None:
        """Recompute every window from Kafka's retention (workers stopped)."""
        from streams.consumer_group import WorkersRunning
        from streams.rebuild import rebuild

        try:
            await _require_kafka(settings)
            await rebuild(settings, runtime.store.delete_state, runtime.apply_until_done)
        except WorkersRunning as exc:
            print(f"kefu-pulse rebuild: {exc}", file=sys.stderr)
            raise SystemExit(1) from exc
        except RedisError as exc:
            _redis_failure(exc)
        finally:
            await runtime.close()

    @app.command(option("--dry-run", is_flag=True, default=False, help="count, move nothing"))
    async def repartition(self: AppCommand, dry_run: bool) -> None:
        """After adding input partitions (workers stopped): move buyer states to their new partition."""
        from streams.consumer_group import WorkersRunning
        from streams.repartition_cli import PartitionsDisagree, check_repartition_allowed

        try:
            await _require_kafka(settings)
            check_repartition_allowed(settings)
            moves = await runtime.store.move_buyers(settings.kafka.partitions, dry_run)
        except (WorkersRunning, PartitionsDisagree) as exc:
            print(f"kefu-pulse repartition: {exc}", file=sys.stderr)
            raise SystemExit(1) from exc
        except RedisError as exc:
            _redis_failure(exc)
        finally:
            await runtime.close()
        verb = "would move" if dry_run else "moved"
        print(f"{moves.scanned} buyer states, {verb} {moves.moved}, {moves.conflicts} left (split history)")

    @app.command()
    async def demo(self: AppCommand) -> None:
        """Start a local real stack, a worker and simulated traffic; Ctrl-C stops it all."""
        from streams.demo import run_demo

        raise SystemExit(await run_demo(settings))
