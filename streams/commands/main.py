"""`kefu-pulse`: Faust's own command line plus the commands of interfaces.md, one module each.

`main` loads the settings, masks their secrets in every log line, builds the app and lets each
command module register its command; Faust's `worker` is ours too, checked here before it starts.
"""

from __future__ import annotations

import asyncio
import os
import sys

import msgspec
from faust.cli.faust import cli as faust_cli

from agents.core.compiled import log_core_at_start
from agents.store.connect import connect
from agents.store.native import log_native_at_start
from agents.store.redis_store import RedisStore
from agents.worker import heap
from agents.worker.access import NOBODY, load_access, require_safe_binding
from agents.worker.install import install, install_agent_status, install_binding_notice
from config.redaction import install_log_redaction, settings_secrets
from config.secret import remember_secrets
from config.settings import Settings, WebSettings, environment_secrets, load_settings
from streams.commands import (
    check,
    demo,
    details,
    notify,
    rebuild,
    repartition,
    replay,
    report,
    simulate,
    stats,
    topics,
)
from streams.commands.base import explained, require_redis
from streams.commands.help import command_of, describe, quiet_libraries, wants_debug
from streams.wire.app import create_app
from streams.wire.preflight import require_input_topics, require_kafka, topic_facts

# Each module registers its command (`--help` orders them: streams/commands/help.py).
COMMANDS = (topics, replay, stats, check, simulate, report, details, rebuild, repartition, demo, notify)


def main() -> None:
    argv = sys.argv[1:]
    command, debug = command_of(argv), wants_debug(argv)
    remember_secrets(environment_secrets(os.environ))
    # `check` reports a bad configuration as one of its ✗ lines; the others as a usage error.
    configuration = "✗ configuration: " if command == "check" else "kefu-pulse: invalid configuration: "
    with explained(configuration, debug=debug):
        settings = load_settings()
        remember_secrets(settings_secrets(settings))
        install_log_redaction(settings_secrets(settings))
        if command != "worker" and not debug:
            quiet_libraries()
        access = NOBODY  # only the worker serves the pages, and only its machine has the file
        if command == "worker":  # no tokens, no address other machines can reach
            # Faust's `-b/--web-bind` overrides web.host when it serves: judge the address it binds.
            settings = msgspec.structs.replace(settings, web=bound_web(settings.web, argv))
            require_safe_binding(settings.web)
            access = load_access(settings.web, os.environ)
        heap.configure()  # before the worker's objects exist (agents/worker/heap.py)
        app = create_app(settings)
        # The processes that apply batch after batch apply each one's outboxes while they fetch
        # and fold the next (agents/store/apply_behind.py).
        runtime = install(app, settings, access, apply_behind=command in ("worker", "rebuild"))
        runtime.settle_heap = command in ("worker", "rebuild")
        for module in COMMANDS:
            module.register(app, settings, runtime)
        describe(faust_cli)
        if command == "worker":
            install_binding_notice(app, settings.web)
            app.task(log_core_at_start)  # which core runs: compiled (mypyc) or pure Python, and why
            app.task(log_native_at_start)  # and which outbox encoder: native (Rust) or the reference
            install_agent_status(app, runtime, _start(settings, debug))
    app.main()


def bound_web(web: WebSettings, argv: list[str]) -> WebSettings:
    """`web` with the address `worker -b/--web-bind ADDRESS` makes Faust bind instead of web.host."""
    bind: str | None = None
    for i, arg in enumerate(argv):
        if arg in ("-b", "--web-bind") and i + 1 < len(argv):
            bind = argv[i + 1]
        elif arg.startswith("--web-bind="):
            bind = arg.split("=", 1)[1]
        elif arg.startswith("-b") and not arg.startswith("--") and len(arg) > 2:
            bind = arg[2:]
    return web if not bind else msgspec.structs.replace(web, host=bind)


def _start(settings: Settings, debug: bool) -> bool:
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
    finally:
        restore()


async def _preflight(settings: Settings) -> bool:
    await require_kafka(settings)
    await require_input_topics(settings)
    agents = settings.kafka.topics.agents
    agents_present = (await topic_facts(settings, [agents])).partitions.get(agents) is not None
    store = RedisStore(connect(settings.redis.url))
    try:
        await require_redis(settings, store)
    finally:
        await store.close()
    return agents_present
