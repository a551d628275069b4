"""`kefu-pulse worker`, made slow where a test needs work in flight: run as
`python -m tests.integration.slow_worker worker -l info`.

- KEFU_TEST_BATCH_SECONDS: every batch waits this long before it is applied, so a rebalance,
  a kill or a second worker lands while a batch is in flight on a worker of any speed;
- KEFU_TEST_OUTBOX_SECONDS: after a partition's commit, its outbox waits this long before it
  is applied, and the worker logs OUTBOX_PENDING first, so a test can kill it exactly there;
- KEFU_TEST_BATCH_FAILS=1: every batch raises, as a bug in processing would;
- KEFU_TEST_BATCH_RECORDS: `processing.batch_size`, which bounds a fetch, so that a small
  dataset still makes many batches.

Nothing else changes: the same CLI, settings, app and processing.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from typing import Any

import msgspec

from agents.processing.batch import BatchProcessor, BatchReport
from agents.store.batches import RedisPartitionStore
from streams.commands import main as cli
from streams.wire.records import Record

OUTBOX_PENDING = "test hook: committed, outbox not applied yet"


class ProcessingBug(RuntimeError):
    pass


def slow_down(batch_seconds: float, outbox_seconds: float, fail: bool = False) -> None:
    process = BatchProcessor.process
    apply_outboxes = RedisPartitionStore._apply

    async def slow_process(self: BatchProcessor, records: Sequence[Record]) -> BatchReport:
        await asyncio.sleep(batch_seconds)
        if fail:
            raise ProcessingBug("test hook: a bug in processing")
        return await process(self, records)

    async def slow_apply(self: RedisPartitionStore, outboxes: Sequence[Any]) -> None:
        if outboxes:
            logging.getLogger(__name__).warning(OUTBOX_PENDING)
            await asyncio.sleep(outbox_seconds)
        await apply_outboxes(self, outboxes)

    if batch_seconds or fail:
        BatchProcessor.process = slow_process  # type: ignore[method-assign]
    if outbox_seconds:
        RedisPartitionStore._apply = slow_apply  # type: ignore[method-assign]


def small_batches(size: int) -> None:
    load = cli.load_settings

    def load_with_small_batches() -> Any:
        settings = load()
        return msgspec.structs.replace(
            settings, processing=msgspec.structs.replace(settings.processing, batch_size=size)
        )

    cli.load_settings = load_with_small_batches  # type: ignore[assignment]


if __name__ == "__main__":
    if records := int(os.environ.get("KEFU_TEST_BATCH_RECORDS", "0")):
        small_batches(records)
    slow_down(
        float(os.environ.get("KEFU_TEST_BATCH_SECONDS", "0")),
        float(os.environ.get("KEFU_TEST_OUTBOX_SECONDS", "0")),
        os.environ.get("KEFU_TEST_BATCH_FAILS") == "1",
    )
    cli.main()
