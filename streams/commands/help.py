"""How `kefu-pulse` introduces itself: our commands first, Faust's after; and reading argv early.

Faust builds the command line (`app.main()`); its root group's help would open with Faust's own
welcome and list `livecheck` beside `demo`. This rewrites only the text, not the commands.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable, Sequence

import click

ABOUT = """kefu-pulse: live customer-service analytics for e-commerce shops.

\b
It reads chat and order events from Kafka and keeps every agent's first response,
reply rate and consult→pay conversion (询单转化率) in Redis, live. It serves them as
Prometheus gauges, a floor display (大屏) and an HTTP API.

\b
On a laptop:               kefu-pulse demo
When something looks off:  kefu-pulse check
"""

# A new user's order. Faust's `worker` is ours too: it runs the stream worker.
OWN_COMMANDS = (
    "demo",
    "worker",
    "check",
    "stats",
    "report",
    "details",
    "notify",
    "simulate",
    "replay",
    "topics",
    "rebuild",
    "repartition",
)
WORKER_HELP = "Run a stream worker (any number share the Kafka partitions)."

# Faust's root options that take a value: their value is not the command's name.
_VALUE_OPTIONS = {"-l", "--loglevel", "-f", "--logfile", "-L", "--loop", "-D", "--datadir", "-W", "--workdir"}
_VALUE_OPTIONS |= {"-A", "--app", "--console-port", "--blocking-timeout"}
LIBRARY_LOGGERS = ("kafka", "aiokafka")


def describe(cli: click.Group) -> None:
    """Give Faust's root group kefu-pulse's introduction and command listing."""
    cli.help = ABOUT

    def format_commands(self: click.Group, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        own: list[tuple[str, str]] = []
        faust: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            text = WORKER_HELP if name == "worker" else command.get_short_help_str(limit=100)
            (own if name in OWN_COMMANDS else faust).append((name, text))
        own.sort(key=lambda row: OWN_COMMANDS.index(row[0]))
        with formatter.section("kefu-pulse commands"):
            formatter.write_dl(own)
        with formatter.section("Faust's own commands"):
            formatter.write_dl(faust)

    cli.format_commands = types.MethodType(format_commands, cli)  # type: ignore[method-assign]


def command_of(argv: Sequence[str]) -> str | None:
    """The command name in `argv` (after Faust's root options), if any."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUE_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def wants_debug(argv: Sequence[str]) -> bool:
    for index, arg in enumerate(argv):
        if arg in ("-l", "--loglevel") and index + 1 < len(argv) and argv[index + 1] == "debug":
            return True
        if arg in ("-ldebug", "--loglevel=debug", "--debug"):
            return True
    return False


def quiet_libraries() -> Callable[[], None]:
    """kafka-python and aiokafka warn on every retry of a metadata request; our commands say
    what went wrong in one line, so their warnings stay below it (shown with `-l debug`).
    Returns a function that gives the loggers their levels back."""
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)

    def restore() -> None:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)

    return restore
