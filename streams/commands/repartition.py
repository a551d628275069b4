"""`kefu-pulse repartition`: after partitions were added to both input topics, every buyer's
state moves to the partition the new count puts it on (agents/store/repartition.py).

It refuses while workers consume, and unless both input topics have the same partition
count and `kafka.partitions` says that count: the workers, `topics create` and this must
agree on it. The whole procedure is in docs/operations.md.
"""

from __future__ import annotations

from collections import Counter

import faust
from faust.cli import AppCommand, option

from agents.worker.runtime import Runtime
from config.errors import KefuError
from config.settings import Settings
from streams.commands.base import Command, talking_to_redis
from streams.wire.consumer_group import input_partitions_of_stopped_group
from streams.wire.preflight import require_kafka


class PartitionsDisagree(KefuError, RuntimeError):
    pass


def register(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    @app.command(
        option("--dry-run", is_flag=True, default=False, help="count, move nothing"),
        base=Command,
        refusal_prefix="kefu-pulse repartition: ",
    )
    async def repartition(self: AppCommand, dry_run: bool) -> None:
        """Move buyer states after adding input partitions (workers stopped)."""
        try:
            await require_kafka(settings)
            check_repartition_allowed(settings)
            with talking_to_redis(settings):
                moves = await runtime.store.move_buyers(settings.kafka.partitions, dry_run)
        finally:
            await runtime.close()
        verb = "would move" if dry_run else "moved"
        print(f"{moves.scanned} buyer states, {verb} {moves.moved}, {moves.conflicts} left (split history)")


def check_repartition_allowed(settings: Settings) -> None:
    """Raise WorkersRunning or PartitionsDisagree unless the buyer states may move now."""
    topics = [settings.kafka.topics.messages, settings.kafka.topics.orders]
    counts = Counter(tp.topic for tp in input_partitions_of_stopped_group(settings))
    found = {counts[t] for t in topics}
    if found != {settings.kafka.partitions}:
        raise PartitionsDisagree(
            f"the input topics have {', '.join(f'{t}: {counts[t]}' for t in topics)} partitions and "
            f"kafka.partitions is {settings.kafka.partitions}; give both topics the same count and "
            "set kafka.partitions to it"
        )
