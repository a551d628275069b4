"""`kefu-pulse worker` that, after applying a batch of kefu.agents, logs STATUS_APPLIED and waits
KEFU_TEST_RAISE_SECONDS before raising the partitions' offsets: a test kills it exactly there,
with the batch's events in Redis and its offsets not. Run as
`python -m tests.integration.slow_status_worker worker -l info`. Nothing else changes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping

from agents.store.status_store import RedisStatusStore
from streams.commands import main as cli

STATUS_APPLIED = "test hook: agent status applied, offsets not raised yet"


def slow_raise(seconds: float) -> None:
    raise_offsets = RedisStatusStore.raise_offsets

    async def slow(
        self: RedisStatusStore, topic: str, offsets: Mapping[int, int], raise_id: str = ""
    ) -> dict[int, int]:
        logging.getLogger(__name__).warning(STATUS_APPLIED)
        await asyncio.sleep(seconds)
        return await raise_offsets(self, topic, offsets, raise_id)

    RedisStatusStore.raise_offsets = slow  # type: ignore[method-assign]


if __name__ == "__main__":
    slow_raise(float(os.environ.get("KEFU_TEST_RAISE_SECONDS", "60")))
    cli.main()
