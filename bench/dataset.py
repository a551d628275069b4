"""The simulated dataset every benchmark produces: the same traffic, so their figures compare.

About 85 % messages, 10 % orders and 5 % ratings (v3) once past the warm-up, 5 shops × 12 agents,
thousands of buyers, with a few duplicates and malformed records; event times end a minute before now, so
nothing is rejected as future and everything falls inside `today`/`28d` for a normal run.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping

from kafka import KafkaProducer

from streams.simulation.traffic import RATING_SHARE, TrafficModel, TrafficShape

# No agent shifts: status changes go to a topic of their own, which these benchmarks do not feed.
SHAPE = TrafficShape(
    shops=5, agents=12, rate=600, duplicate_share=0.005, bad_share=0.002, rating_share=RATING_SHARE
)
SEED = 42


def produce_dataset(bootstrap: str, topics: Mapping[str, str], events: int) -> int:
    """Produce `events` records into the `messages`/`orders` topics; returns distinct buyers."""
    start = time.time_ns() // 1_000_000 - int(events / SHAPE.rate * 1000) - 60_000
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        enable_idempotence=False,
        linger_ms=20,
        batch_size=1 << 20,
        max_in_flight_requests_per_connection=1,  # keeps each buyer's records in order
    )
    buyers: set[bytes] = set()
    for record in itertools.islice(TrafficModel(SHAPE, seed=SEED).records(start), events):
        producer.send(topics[record.kind], key=record.key, value=record.value)
        buyers.add(record.key)
    producer.flush()
    producer.close()
    return len(buyers)
