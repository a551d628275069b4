"""The Faust app, built from settings (no module-level app: tests build their own)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import faust

from config.settings import Settings
from streams.wire.batch_consumer import use_batch_transport
from streams.wire.security import faust_credentials


class SpinnerlessWorker(faust.Worker):
    """Faust's worker without its terminal progress spinner.

    At a log level of WARN or above (Faust's default), the spinner sets the root logger to DEBUG so
    that every record spins it: every library's debug call then builds a record (~3 us here, where a
    disabled call costs 0.1) that the handler drops. aiokafka makes some per fetch, on the
    consumer's thread. Small: a worker draining bench's dataset ran as fast either way, within this
    machine's noise. A worker logs to files and collectors, where a spinner shows nothing.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spinner = None

    def _repr_name(self) -> str:
        """Its log lines keep Faust's label (`[^Worker]: Ready`): operators and tests read them."""
        return "Worker"


def create_app(settings: Settings) -> faust.App:
    app_id = settings.kafka.group
    app = faust.App(
        app_id,
        datadir=str(Path(tempfile.gettempdir()) / f"kefu-pulse-{app_id}"),  # Faust's own scratch only
        broker=f"kafka://{settings.kafka.bootstrap}",
        # TLS and SASL for all of Faust's clients; the URL never carries credentials.
        broker_credentials=faust_credentials(settings.kafka.security),
        store="memory://",  # Redis, not Faust tables, holds the state
        autodiscover=False,
        topic_partitions=settings.kafka.partitions,
        topic_allow_declare=True,  # Faust declares its leader-election topic; `topics create` owns ours
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # A crashed worker's partitions move after 10 s instead of Faust's default 60 s.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        # Feed whole batches: big fetches, and a buffer that holds several batches.
        stream_buffer_maxsize=settings.processing.batch_size * 4,
        broker_max_poll_records=settings.processing.batch_size * 2,
        consumer_max_fetch_size=8 * 1024**2,
        web_enabled=True,
        web_bind=settings.web.host,
        web_host=settings.web.host,
        web_port=settings.web.port,
        web_in_thread=False,
        Worker=SpinnerlessWorker,
    )
    use_batch_transport(app)
    return app


def input_topic(app: faust.App, settings: Settings) -> faust.TopicT:
    """One channel over both input topics: they are co-partitioned by `shop:buyer`."""
    names = settings.kafka.topics
    return app.topic(
        names.messages,
        names.orders,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.kafka.partitions,
    )


def agents_topic(app: faust.App, settings: Settings) -> faust.TopicT:
    """`kefu.agents` (v3): keyed by agent, its partition count its own (no co-partitioning)."""
    return app.topic(
        settings.kafka.topics.agents,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )


def output_topic(app: faust.App, name: str) -> faust.TopicT:
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
