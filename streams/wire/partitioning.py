"""Where Kafka's default partitioner puts a key: murmur2, as events.md requires of producers.

One buyer's messages and orders must share a partition, or their conversion is computed on
two workers that never see each other. A producer on another partitioner (librdkafka's
default is CRC32) splits buyers silently; the processor counts such records as `misrouted`.
"""

from __future__ import annotations

from kafka.partitioner.default import murmur2

MAX_CACHED_KEYS = 200_000  # a bound on memory; a buyer's key repeats for every event it sends


def home_partition(key: bytes, partitions: int) -> int:
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class Partitioner:
    """`home_partition` for one partition count, with the keys seen lately cached (murmur2 in
    Python costs about 4 µs a key)."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._homes: dict[bytes, int] = {}

    def home(self, key: bytes) -> int:
        home = self._homes.get(key)
        if home is None:
            if len(self._homes) >= MAX_CACHED_KEYS:
                self._homes.clear()
            home = self._homes[key] = home_partition(key, self.partitions)
        return home
