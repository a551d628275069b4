"""Faust's own ceiling on this machine: kefu-pulse's app settings and input topics, and an agent
that only counts the batches `take_events` hands it. Whatever kefu-pulse does per event comes
on top of this, so it tells how much of the gap to the plain-consumer limit is the framework's.

Run by bench/pipeline.py as `python -m bench.faust_ceiling worker -l warn`, with KEFU_CONFIG
naming the topics and BENCH_CEILING_EVENTS how many records to wait for; prints one JSON line.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, cast

import faust

from config.settings import load_settings
from streams.app import create_app, input_topic


def main() -> None:
    wanted = int(os.environ["BENCH_CEILING_EVENTS"])
    settings = load_settings()
    app = create_app(settings)
    counted = {"events": 0}
    started: list[float] = []

    @app.agent(input_topic(app, settings), name="bench.ceiling")
    async def count(stream: faust.StreamT) -> None:
        batches = cast(Any, stream).take_events(
            settings.processing.batch_size, within=settings.processing.batch_within_seconds
        )
        async for events in batches:
            if not started:
                started.append(time.perf_counter())
            counted["events"] += len(events)
            if counted["events"] >= wanted:
                elapsed = time.perf_counter() - started[0]
                print(json.dumps({"faust_noop_events_per_s": round(counted["events"] / elapsed)}), flush=True)
                os._exit(0)  # the measurement is done; a graceful Faust shutdown takes seconds

    app.main()


if __name__ == "__main__":
    main()
