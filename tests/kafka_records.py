"""Simulated traffic as Kafka would hold it: keyed, partitioned by murmur2, offsets per partition."""

from __future__ import annotations

import itertools

from kafka.partitioner.default import murmur2

from streams.simulation.traffic import TrafficModel, TrafficShape
from streams.wire.records import Record

SMALL_TEAMS = TrafficShape(shops=3, agents=6, rate=200)


def simulated(
    n: int,
    now_ms: int,
    partitions: int,
    topics: tuple[str, str] = ("c.messages", "c.orders"),
    shape: TrafficShape = SMALL_TEAMS,
) -> list[Record]:
    """`n` records of three hours before `now_ms`; `topics` are (messages, orders)."""
    model = TrafficModel(shape, seed=11)
    next_offset: dict[tuple[str, int], int] = {}
    records = []
    for sim in itertools.islice(model.records(now_ms - 3 * 3_600_000), n):
        topic = topics[0] if sim.kind == "messages" else topics[1]
        partition = (murmur2(sim.key) & 0x7FFFFFFF) % partitions
        offset = next_offset[(topic, partition)] = next_offset.get((topic, partition), -1) + 1
        records.append(Record(topic, partition, offset, sim.key, sim.value))
    return records
