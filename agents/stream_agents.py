"""Faust wiring: the batch route, the worker's duties, its HTTP views. Each piece lives elsewhere."""

from __future__ import annotations

import faust

from agents.runtime import Runtime
from agents.worker.duties import install_duties
from agents.worker.sinks import alert_sink, dead_letter_sink
from agents.worker.views import install_views
from config.settings import Settings
from streams.app import input_topic
from streams.batch_consumer import route_batches


def install(app: faust.App, settings: Settings) -> Runtime:
    runtime = Runtime.create(settings, dead_letter_sink(app, settings), alert_sink(app, settings))
    # No agent on the input topics: each fetch goes to the runtime whole (streams/batch_consumer.py).
    route_batches(app, input_topic(app, settings), runtime.apply_until_done)
    install_duties(app, runtime, {settings.kafka.topics.messages, settings.kafka.topics.orders})
    install_views(app, runtime)
    return runtime
