"""Faust's ceilings on this machine, with kefu-pulse's app settings and input topics:
- `stock`: an agent that only counts the batches `take_events` hands it (Faust's per-record path);
- `batch`: a handler that only counts the whole fetches `route_batches` hands it (the worker's path).
Whatever kefu-pulse does per event comes on top of these.

Run by bench/pipeline.py as `python -m bench.faust_ceiling worker -l warn`, with KEFU_CONFIG
naming the topics, BENCH_CEILING_EVENTS how many records to wait for and BENCH_CEILING_PATH
`stock` or `batch`; prints one JSON line.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import Any, cast

import faust

from config.settings import load_settings
from streams.wire.app import create_app, input_topic
from streams.wire.batch_consumer import route_batches
from streams.wire.records import KafkaRecord


def main() -> None:
    wanted = int(os.environ["BENCH_CEILING_EVENTS"])
    settings = load_settings()
    app = create_app(settings)
    counted = {"events": 0}
    started: list[float] = []
    batch_path = os.environ.get("BENCH_CEILING_PATH", "stock") == "batch"
    name = "faust_batch_ceiling_events_per_s" if batch_path else "faust_noop_events_per_s"

    def count(n: int) -> None:
        if not started:
            started.append(time.perf_counter())
        counted["events"] += n
        if counted["events"] >= wanted:
            elapsed = time.perf_counter() - started[0]
            print(json.dumps({name: round(counted["events"] / elapsed)}), flush=True)
            os._exit(0)  # the measurement is done; a graceful Faust shutdown takes seconds

    if batch_path:

        async def handle(records: Sequence[KafkaRecord]) -> None:
            count(len(records))

        route_batches(app, input_topic(app, settings), handle)
    else:

        @app.agent(input_topic(app, settings), name="bench.ceiling")
        async def agent(stream: faust.StreamT) -> None:
            batches = cast(Any, stream).take_events(
                settings.processing.batch_size,
                within=0.05,  # what the worker used on this path
            )
            async for events in batches:
                count(len(events))

    app.main()


if __name__ == "__main__":
    main()
