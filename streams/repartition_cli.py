"""`kefu-pulse repartition`: after partitions were added to both input topics, move every
buyer's state to the partition the new count puts it on (agents/store/repartition.py).

It refuses while workers consume, and unless both input topics have the same partition
count and `kafka.partitions` says that count: the workers, `topics create` and this must
agree on it. The whole procedure is in docs/operations.md.
"""

from __future__ import annotations

from collections import Counter

from agents.runtime import Runtime
from agents.store.repartition import Moves, move_buyers
from config.settings import Settings
from streams.rebuild import WorkersRunning, group_members_and_partitions


class PartitionsDisagree(RuntimeError):
    pass


async def repartition(settings: Settings, runtime: Runtime, dry_run: bool) -> Moves:
    topics = [settings.kafka.topics.messages, settings.kafka.topics.orders]
    members, partitions = group_members_and_partitions(settings, topics)
    if members:
        raise WorkersRunning(
            f"{members} worker(s) of group {settings.kafka.group!r} are consuming; stop them first"
        )
    counts = Counter(tp.topic for tp in partitions)
    found = {counts[t] for t in topics}
    if found != {settings.kafka.partitions}:
        raise PartitionsDisagree(
            f"the input topics have {', '.join(f'{t}: {counts[t]}' for t in topics)} partitions and "
            f"kafka.partitions is {settings.kafka.partitions}; give both topics the same count and "
            "set kafka.partitions to it"
        )
    return await move_buyers(runtime.redis, settings.kafka.partitions, dry_run)
