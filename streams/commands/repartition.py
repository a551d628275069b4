"""`kefu-pulse repartition`: after partitions were added to both input topics, every buyer's
state moves to the partition the new count puts it on (agents/store/repartition.py).

It refuses while workers consume, and unless both input topics have the same partition
count and `kafka.partitions` says that count: the workers, `topics create` and this must
agree on it. The whole procedure is in docs/operations.md.
"""

from __future__ import annotations

from collections import Counter

from config.settings import Settings
from streams.wire.consumer_group import input_partitions_of_stopped_group


class PartitionsDisagree(RuntimeError):
    pass


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
