"""Faust wiring: the batch route, the worker's duties, its HTTP views. Each piece lives elsewhere."""

from __future__ import annotations

import logging

import faust

from agents.processing.batch import MISROUTED, OUTCOMES
from agents.worker.access import NOBODY, Access, binding_line
from agents.worker.duties import install_duties
from agents.worker.runtime import Runtime
from agents.worker.sinks import alert_sink, dead_letter_sink
from agents.worker.views import install_views
from config.settings import Settings, WebSettings
from streams.wire.app import agents_topic, input_topic
from streams.wire.batch_consumer import route_batches

log = logging.getLogger(__name__)


def install(
    app: faust.App, settings: Settings, access: Access = NOBODY, apply_behind: bool = False
) -> Runtime:
    """`apply_behind`: for the processes that apply batch after batch (the worker, `rebuild`)."""
    runtime = Runtime.create(
        settings, dead_letter_sink(app, settings), alert_sink(app, settings), apply_behind
    )
    # No agent on the input topics: each fetch goes to the runtime whole (streams/wire/batch_consumer.py).
    route_batches(app, input_topic(app, settings), runtime.apply_until_done, runtime.finish_applying)
    # Resumed from Redis and measured for lag; `install_agent_status` adds kefu.agents.
    runtime.consumed_topics.update((settings.kafka.topics.messages, settings.kafka.topics.orders))
    install_duties(app, runtime, runtime.consumed_topics)
    install_views(app, runtime, access)
    return runtime


def install_agent_status(app: faust.App, runtime: Runtime, topic_exists: bool) -> None:
    """Consume kefu.agents (v3 agent status) beside the buyer topics, in the same group, when
    Kafka has it. Without it the worker runs v2 and says once what to do: subscribing a missing
    topic would let a broker with auto-create make it with its own default partitions."""
    name = runtime.settings.kafka.topics.agents
    if not topic_exists:

        @app.task
        async def say_agent_status_is_off() -> None:
            log.warning(
                "topic %s does not exist: v3 agent status (online/away time, logins) is off; "
                "run `kefu-pulse topics create`, then restart the workers",
                name,
            )

        return
    route_batches(app, agents_topic(app, runtime.settings), runtime.apply_status_until_done)
    runtime.consumed_topics.add(name)
    runtime.metrics.start_at_zero({runtime.metrics.events: [(name, o) for o in OUTCOMES if o != MISROUTED]})


def install_binding_notice(app: faust.App, web: WebSettings) -> None:
    """Without an access file, the worker says once at start-up that it serves this machine only."""
    line = binding_line(web)
    if line is None:
        return

    @app.task
    async def say_binding_is_local() -> None:
        log.warning("%s", line)
