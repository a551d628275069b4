"""`kefu-pulse`: Faust's own command line plus the commands of interfaces.md."""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import click
import faust
from faust.cli import AppCommand, argument, option
from faust.cli.faust import cli as faust_cli
from redis.exceptions import RedisError

from agents.core.calendar import MS_PER_DAY, calendar_for
from agents.core.clock import wall_clock_ms
from agents.core.policy import PolicyBook
from agents.core.report_range import day_text, restored_from_day
from agents.core.windows import WINDOW_DAYS, WINDOWS
from agents.store.connect import connect
from agents.store.errors import STORE_ERRORS, describe_problem
from agents.store.redis_store import RedisStore
from agents.worker.install import install, install_agent_status
from agents.worker.runtime import Runtime
from config.redaction import install_log_redaction, mask_secrets, settings_secrets
from config.secret import remember_secrets
from config.settings import ConfigError, Settings, config_path, environment_secrets, load_settings
from streams.commands.help import command_of, describe, quiet_libraries, wants_debug
from streams.commands.rebuild import Rebuilt
from streams.contract.report import ReportRequestError
from streams.wire.app import create_app
from streams.wire.preflight import StartupError, require_input_topics, require_kafka, topic_facts


def main() -> None:
    argv = sys.argv[1:]
    command, debug = command_of(argv), wants_debug(argv)
    remember_secrets(environment_secrets(os.environ))
    try:
        settings = load_settings()
    except ConfigError as exc:
        mark = "✗ configuration: " if command == "check" else "kefu-pulse: invalid configuration: "
        print(mask_secrets(f"{mark}{exc}"), file=sys.stderr)
        raise SystemExit(2) from exc
    remember_secrets(settings_secrets(settings))
    install_log_redaction(settings_secrets(settings))
    if command != "worker" and not debug:
        quiet_libraries()
    app = create_app(settings)
    runtime = install(app, settings)
    register_commands(app, settings, runtime)
    describe(faust_cli)
    if command == "worker":
        install_agent_status(app, runtime, _start_or_explain(settings, debug))
    app.main()


def _fail(message: str) -> NoReturn:
    print(mask_secrets(f"kefu-pulse: {message}"), file=sys.stderr)
    raise SystemExit(1)


def _start_or_explain(settings: Settings, debug: bool) -> bool:
    """Before Faust starts the worker: Kafka, the input topics and Redis as it will use them;
    whether Kafka has the (v3) agent status topic.

    The loop stays the current one, for Faust to run on (asyncio.run would unset it)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # A broker that has just started answers with retriable errors that aiokafka warns about:
    # the worker's start-up says one sentence or nothing. Its own logs keep the warnings.
    restore = quiet_libraries() if not debug else lambda: None
    try:
        return loop.run_until_complete(_preflight(settings))
    except StartupError as exc:
        if debug:  # the whole chain, down to the library's own error
            print(mask_secrets(traceback.format_exc()), file=sys.stderr, end="")
        _fail(str(exc))
    finally:
        restore()


async def _preflight(settings: Settings) -> bool:
    await require_kafka(settings)
    await require_input_topics(settings)
    agents = settings.kafka.topics.agents
    agents_present = (await topic_facts(settings, [agents])).partitions.get(agents) is not None
    store = RedisStore(connect(settings.redis.url))
    try:
        await _require_redis(settings, store)
    finally:
        await store.close()
    return agents_present


async def _require_redis(settings: Settings, store: RedisStore, timeout_s: float = 5.0) -> None:
    try:
        await asyncio.wait_for(store.ping(), timeout_s)
    except STORE_ERRORS as exc:
        raise StartupError(_redis_problem(settings, exc)) from exc


def _redis_problem(settings: Settings, exc: BaseException) -> str:
    return describe_problem(exc, settings.redis.url)


async def _require_kafka(settings: Settings) -> None:
    """A refused login or TLS handshake as one line, not kafka-python's 30 s bootstrap timeout."""
    try:
        await require_kafka(settings)
    except StartupError as exc:
        _fail(str(exc))


def _redis_failure(settings: Settings, exc: BaseException) -> NoReturn:
    _fail(_redis_problem(settings, exc))


def _describe_shop(policies: PolicyBook, shop: str) -> str:
    policy = policies(shop)
    rule = f"{policy.attribution_rule}/{policy.attribution_window}"
    agents = len(policies.settings.shops[shop].agents)
    return (
        f"{policy.name or 'no name'}, {policy.calendar.zone.key}, alert after "
        f"{policy.alert_threshold_seconds:g} s, after-sale {policy.after_sale_ms // MS_PER_DAY} days, "
        f"attribution {rule}, {agents} agent(s) named"
    )


def _restored_history(settings: Settings, rebuilt: Rebuilt) -> str:
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


def register_commands(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    @app.command(argument("action", type=click.Choice(["create"])))
    async def topics(self: AppCommand, action: str) -> None:
        """Create the four topics with the configured partitions (idempotent)."""
        from streams.wire.topics import RetentionNotSet, create_topics

        await _require_kafka(settings)
        try:
            outcomes = create_topics(settings)
        except RetentionNotSet as exc:
            _fail(f"topics create: {exc}")
        for name, outcome in outcomes.items():
            print(f"{name}: {outcome}")

    @app.command(argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False)))
    async def replay(self: AppCommand, files: tuple[str, ...]) -> None:
        """Produce recorded events (JSON lines) into the input topics."""
        from streams.commands.replay import run_replay

        await _require_kafka(settings)
        raise SystemExit(run_replay([Path(f) for f in files], settings))

    @app.command(
        option("--shop", required=True, help="shop id"),
        option("--window", type=click.Choice(WINDOWS), default=None),
        option("--json", "as_json", is_flag=True, default=False, help="exactly the /api/v1/floor JSON"),
        option("--watch", is_flag=True, default=False, help="refresh in place once a second (Ctrl-C stops)"),
    )
    async def stats(self: AppCommand, shop: str, window: str | None, as_json: bool, watch: bool) -> None:
        """Print the floor-display data from Redis."""
        from streams.render.floor_table import UnknownShop, run_stats

        try:
            await run_stats(
                lambda s: runtime.reader.floor(s, wall_clock_ms()),
                lambda: runtime.reader.shops(wall_clock_ms()),
                shop,
                window,
                as_json,
                watch,
            )
        except UnknownShop as exc:
            _fail(str(exc))
        except STORE_ERRORS as exc:
            _redis_failure(settings, exc)
        finally:
            await runtime.close()

    @app.command(option("--json", "as_json", is_flag=True, default=False, help="the checks as JSON"))
    async def check(self: AppCommand, as_json: bool) -> None:
        """Check config, Kafka, topics, Redis, workers and lag, as ✓/✗ lines."""
        from streams.commands.check import report, run_checks

        try:
            checks = await run_checks(
                settings,
                config_path(),
                lambda shop: _describe_shop(runtime.policies, shop),
                runtime.store,
                lambda: _require_redis(settings, runtime.store),
                WINDOW_DAYS,
            )
        except (Exception, asyncio.CancelledError) as exc:  # a broken check fails, never passes
            _fail(f"check could not finish: {type(exc).__name__}: {exc}")
        finally:
            await runtime.close()
        raise SystemExit(report(checks, as_json))

    @app.command(
        option("--shops", type=int, default=2, show_default=True),
        option("--agents", type=int, default=5, show_default=True, help="agents per shop"),
        option("--rate", type=float, default=50.0, show_default=True, help="events per second"),
        option("--duration", type=float, default=None, help="seconds (default: until Ctrl-C)"),
        option("--seed", type=int, default=0, show_default=True),
        option("--history-days", type=int, default=0, help="first, this many past days of traffic"),
        option("--history-rate", type=float, default=0.1, show_default=True, help="events/s in the past"),
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
        from streams.simulation.simulate import history_start_ms, produce_history, run_simulation
        from streams.simulation.traffic import RATING_SHARE, TrafficShape

        await _require_kafka(settings)
        # v3 traffic too: buyers rate some consultations, agents log in, take breaks, log out.
        shape = TrafficShape(
            shops=shops, agents=agents, rate=rate, rating_share=RATING_SHARE, agent_shifts=True
        )
        if history_days > 0:
            now = wall_clock_ms()
            start = history_start_ms(settings.defaults.timezone, history_days, now)
            past = await produce_history(settings, replace(shape, rate=history_rate), start, now, seed + 1)
            print(
                f"sent {past} past events ({history_days} days; older than 28 days need `rebuild`)",
                file=sys.stderr,
            )
            if duration == 0:
                return
        sent = await run_simulation(settings, shape, duration, seed)
        print(f"sent {sent} events", file=sys.stderr)

    @app.command(
        option("--shop", required=True, help="shop id"),
        option("--from", "first", default=None, help="first business day, YYYY-MM-DD (default: yesterday)"),
        option("--to", "last", default=None, help="last business day, YYYY-MM-DD (default: yesterday)"),
        option("--by", default=None, help="'day': the same report for each day of the range too"),
        option("--format", "fmt", default="table", help="table | json | csv | xlsx | html"),
        option("--output", default=None, help="write to this file (atomically) instead of stdout"),
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
        from streams.commands.report import run_report

        now_ms = wall_clock_ms()
        try:
            await run_report(
                lambda: runtime.reports.request(shop, first, last, by, now_ms),
                lambda report: runtime.reports.previous_team(report, now_ms),
                fmt,
                output,
                runtime.policies(shop).alert_threshold_seconds,
            )
        except ReportRequestError as exc:
            _fail(f"report: {exc}")
        except STORE_ERRORS as exc:
            _redis_failure(settings, exc)
        finally:
            await runtime.close()

    @app.command()
    async def rebuild(self: AppCommand) -> None:
        """Recompute every window from Kafka's retention (workers stopped)."""
        from streams.commands.rebuild import rebuild
        from streams.wire.consumer_group import WorkersRunning

        try:
            await _require_kafka(settings)
            runtime.processor.restore_history = True
            rebuilt = await rebuild(settings, runtime.store.delete_state, runtime.apply_any_until_done)
            print(_restored_history(settings, rebuilt), file=sys.stderr)
        except WorkersRunning as exc:
            print(f"kefu-pulse rebuild: {exc}", file=sys.stderr)
            raise SystemExit(1) from exc
        except RedisError as exc:
            _redis_failure(settings, exc)
        finally:
            await runtime.close()

    @app.command(option("--dry-run", is_flag=True, default=False, help="count, move nothing"))
    async def repartition(self: AppCommand, dry_run: bool) -> None:
        """Move buyer states after adding input partitions (workers stopped)."""
        from streams.commands.repartition import PartitionsDisagree, check_repartition_allowed
        from streams.wire.consumer_group import WorkersRunning

        try:
            await _require_kafka(settings)
            check_repartition_allowed(settings)
            moves = await runtime.store.move_buyers(settings.kafka.partitions, dry_run)
        except (WorkersRunning, PartitionsDisagree) as exc:
            print(f"kefu-pulse repartition: {exc}", file=sys.stderr)
            raise SystemExit(1) from exc
        except RedisError as exc:
            _redis_failure(settings, exc)
        finally:
            await runtime.close()
        verb = "would move" if dry_run else "moved"
        print(f"{moves.scanned} buyer states, {verb} {moves.moved}, {moves.conflicts} left (split history)")

    @app.command()
    async def demo(self: AppCommand) -> None:
        """Run a local real stack, a worker and simulated traffic; Ctrl-C stops all."""
        from streams.commands.demo import run_demo

        raise SystemExit(await run_demo(settings))
